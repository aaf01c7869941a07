"""Learning-rate schedules are checked before training: settings torch accepts but cannot
run, factories that fail, rates that go negative, a OneCycleLR shorter than the run, a
plateau schedule without validation data — each a ValueError naming lr_schedule."""

from __future__ import annotations

import pytest
import torch

import ppl_vae as pv
from ppl_vae.training import optim

S = torch.optim.lr_scheduler
X = torch.bernoulli(torch.full((12, 64), 0.5), generator=torch.Generator().manual_seed(0))


def _fit(schedule, steps=5, **kw):
    model = pv.build("vae", latent_dim=2, decoder={"hidden": [8]}, guide={"hidden": [8]})
    return pv.fit(model, X, steps=steps, progress=False, lr_schedule=schedule, **kw)


@pytest.mark.parametrize("schedule, words", [
    ({"kind": "StepLR", "step_size": 0}, ["lr_schedule StepLR step_size=0", "integer >= 1"]),
    ({"kind": "StepLR", "step_size": -3}, ["step_size=-3", "integer >= 1"]),
    ({"kind": "StepLR", "step_size": 3, "gamma": -0.5}, ["gamma=-0.5", "finite number > 0"]),
    ({"kind": "StepLR", "step_size": 3, "gamma": float("nan")}, ["gamma=nan", "> 0"]),
    ({"kind": "StepLR", "step_size": 3, "gamma": float("inf")}, ["gamma=inf", "> 0"]),
    ({"kind": "StepLR", "step_size": 3, "gamma": "abc"}, ["gamma='abc'", "> 0"]),
    ({"kind": "ExponentialLR", "gamma": 0}, ["ExponentialLR gamma=0", "> 0"]),
    ({"kind": "LRScheduler"}, ["kind='LRScheduler'", "abstract", "StepLR"]),
    ({"kind": "StepLR", "step_size": 3, "bogus": 1}, ["lr_schedule could not build", "bogus"]),
    (lambda o: S.LRScheduler(o), ["lr_schedule could not build", "NotImplementedError"]),
    (lambda o: S.StepLR(o, step_size=0), ["step_size=0"]),
    (lambda o: S.LambdaLR(o, lambda s: 1.0 / (1 - s)), ["lr_schedule fails at step 1",
                                                          "ZeroDivisionError"]),
    (lambda o: S.LambdaLR(o, lambda s: -s), ["fails at step 1", "rate became -0.001"]),
])
def test_bad_schedules_are_refused_before_training(schedule, words):
    with pytest.raises(ValueError) as err:
        _fit(schedule)
    for word in words:
        assert word in str(err.value), str(err.value)


def test_schedules_that_run_are_unchanged():
    h = _fit({"kind": "StepLR", "step_size": 2, "gamma": 0.5}).history
    assert h.lr.tolist() == [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4]
    exact = _fit({"kind": "OneCycleLR", "max_lr": 0.01, "total_steps": 5}).history
    assert len(exact) == 5  # a OneCycleLR exactly as long as the run is fine


def _scheduler(factory, **options):
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3)
    return factory(opt, **options)


def test_one_cycle_shorter_than_the_run_names_the_fix():
    scheduler = _scheduler(S.OneCycleLR, max_lr=0.01, total_steps=100)
    optim.check_scheduler(scheduler, steps=100)
    with pytest.raises(ValueError, match=r"total_steps=100 is shorter than the run "
                                         r"\(steps=1000\).*pass total_steps=1000"):
        optim.check_scheduler(scheduler, steps=1000)


def test_plateau_without_validation_data_is_refused():
    scheduler = _scheduler(S.ReduceLROnPlateau)
    optim.check_scheduler(scheduler, validation=True)
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau steps on the validation bound.*"
                                         r"pass x_val= \(ppl-vae train: --val-fraction\)"):
        optim.check_scheduler(scheduler, validation=False)
    edited = _scheduler(S.ReduceLROnPlateau)
    edited.factor = float("nan")  # torch checks factor < 1 only when it is built
    with pytest.raises(ValueError, match="ReduceLROnPlateau factor=nan is invalid"):
        optim.check_scheduler(edited)


def test_build_schedule_with_the_runs_length_checks_it_all():
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3)
    factory = optim.parse_schedule({"kind": "OneCycleLR", "max_lr": 0.01, "total_steps": 10})
    with pytest.raises(ValueError, match="total_steps=10 is shorter than the run"):
        optim.build_schedule(factory, opt, num_data=10, batch_size=5, steps=200)
    user = lambda o: S.LambdaLR(o, lambda s: 1.0 - s / 4)  # negative from step 5
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3)
    optim.build_schedule(user, opt, num_data=10, batch_size=5, steps=4)
    with pytest.raises(ValueError, match="fails at step 5.*rate became -0.00025"):
        optim.build_schedule(user, opt, num_data=10, batch_size=5, steps=50)
    assert opt.param_groups[0]["lr"] == 1e-3  # the dry run stepped a stand-in optimizer
    plateau = optim.parse_schedule({"kind": "ReduceLROnPlateau"})
    with pytest.raises(ValueError, match="no validation data"):
        optim.build_schedule(plateau, opt, num_data=10, batch_size=5, validation=False)


def test_numpy_optimizer_options_are_accepted():
    import numpy as np

    parsed = optim.parse_optimizer({"kind": "adamw", "weight_decay": np.float64(0.01),
                                    "betas": np.array([0.9, 0.99])})
    assert parsed["options"] == {"weight_decay": 0.01, "betas": (0.9, 0.99)}
    assert type(parsed["options"]["weight_decay"]) is float

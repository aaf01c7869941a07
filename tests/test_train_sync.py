"""pv.fit's sync_every: deferred host reads of the loss and gradient norm change when rows,
callbacks and checkpoints are produced, never what they hold."""

import math

import pandas as pd
import pytest
import torch

import ppl_vae as pv
from ppl_vae import checkpoint as ckpt
from ppl_vae.cli import parser
from ppl_vae.cli import train as cli_train

SMALL = {"latent_dim": 2, "decoder": {"hidden": [16]}, "guide": {"hidden": [16]}}


def same_numbers(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    cols = [c for c in a.columns if c != "time"]
    return list(a.columns) == list(b.columns) and a[cols].equals(b[cols])


def same_parameters(a, b) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


class Recorder:
    """Every callback event, in order (rows without their ``time``)."""

    def __init__(self):
        self.events = []

    def on_step(self, row):
        self.events.append(("step", {k: v for k, v in row.items() if k != "time"}))

    def on_validation(self, step, metrics, model):
        self.events.append(("val", step, dict(metrics)))

    def on_checkpoint(self, step, path):
        self.events.append(("ckpt", step))


def _fit(name, data, sync_every, **kw):
    if name == "vae":
        model, x, x_val = pv.build("vae", **SMALL), data["digits"].x_train, data["digits"].x_test[:100]
        base = {"batch_size": 64, "lr": 3e-3}
    else:  # an enumerated discrete latent (TraceEnum_ELBO)
        model, x, x_val = pv.build("gmm", data_dim=4, num_components=3), data["linear"].x_train, \
            data["linear"].x_test
        base = {"batch_size": 50, "lr": 1e-2}
    return pv.fit(model, x, steps=60, seed=2, progress=False, x_val=x_val, eval_every=25,
                  sync_every=sync_every, **{**base, **kw})


@pytest.mark.parametrize("name", ["vae", "gmm"])
@pytest.mark.parametrize("options", [{}, {"clip_norm": 50.0, "val_iwae": 5}])
def test_sync_every_changes_no_number(name, options, digits, linear):
    data = {"digits": digits, "linear": linear}
    runs = {k: _fit(name, data, k, **options) for k in (1, 7, 50)}
    for k in (7, 50):
        assert same_numbers(runs[k].history, runs[1].history), k
        assert same_parameters(runs[k].model, runs[1].model), k
    h = runs[1].history
    assert len(h) == 60 and h.val_elbo.notna().sum() == 2
    assert h.grad_norm.notna().sum() == (60 if options else 6)


def test_callbacks_and_checkpoints_see_the_same_events_in_the_same_order(digits, tmp_path):
    def run(sync_every):
        rec = Recorder()
        result = pv.fit(
            pv.build("vae", **SMALL), digits.x_train, steps=40, batch_size=64, seed=1,
            x_val=digits.x_test[:100], eval_every=10, early_stopping={"patience": 2, "min_delta": 1e9},
            lr_schedule=lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0),
            checkpoint=tmp_path / f"ck{sync_every}.pt", checkpoint_every=4, sync_every=sync_every,
            callbacks=[rec], progress=False,
        )
        return rec.events, result, ckpt.read(tmp_path / f"ck{sync_every}.pt")["training"]

    events, result, saved = run(1)
    assert result.stopped_at == 30 and ("ckpt", 28) in events and ("val", 30) in [e[:2] for e in events]
    for k in (7, 50):
        other, res, other_saved = run(k)
        assert other == events, k
        assert same_numbers(res.history, result.history) and same_parameters(res.model, result.model)
        assert other_saved["step"] == saved["step"] == 30
        assert same_numbers(*(pd.DataFrame(s["rows"], columns=s["columns"]) for s in (other_saved, saved)))


@pytest.mark.parametrize("sync_every", [1, 10])
@pytest.mark.parametrize("then", ["nan", "raise"])
def test_a_non_finite_loss_names_its_own_step_and_keeps_the_last_good_checkpoint(
    sync_every, then, digits, tmp_path
):
    model = pv.build("vae", **SMALL)
    forward, calls = model.decoder.forward, []

    def poisoned(z):  # NaN from the 11th step on; with then="raise" step 12 fails outright
        calls.append(1)
        if then == "raise" and len(calls) > 11:
            raise RuntimeError("broken by the NaN parameters")
        out = forward(z)
        return out * float("nan") if len(calls) > 10 else out

    model.decoder.forward = poisoned
    path, rec = tmp_path / "ck.pt", Recorder()
    with pytest.raises(pv.TrainingError, match=r"loss became nan at step 11: .*step 8") as err:
        pv.fit(model, digits.x_train, steps=30, batch_size=64, progress=False, checkpoint=path,
               checkpoint_every=4, sync_every=sync_every, callbacks=[rec])
    assert err.value.step == 11 and err.value.last_saved == 8
    assert [e[1]["step"] for e in rec.events if e[0] == "step"] == list(range(1, 11))
    kept = ckpt.read(path)
    assert kept["training"]["step"] == 8 and len(kept["training"]["rows"]) == 8
    assert all(torch.isfinite(v).all() for v in kept["state_dict"].values())
    if sync_every == 1:  # the bad step never updated the parameters
        assert all(torch.isfinite(p).all() for p in model.parameters())


def test_resume_with_deferred_reads_equals_an_uninterrupted_run(digits, tmp_path):
    def run(steps, **kw):
        return pv.fit(
            pv.build("vae", **SMALL), digits.x_train, steps=steps, batch_size=64, lr=3e-3, seed=4,
            lr_schedule=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.7),
            x_val=digits.x_test[:100], eval_every=6, kl_warmup=8, clip_norm=5e4,
            progress=False, **kw,
        )

    full = run(50)
    path = tmp_path / "ck.pt"
    run(23, checkpoint=path, checkpoint_every=5, sync_every=10)
    assert ckpt.read(path)["training"]["step"] == 23
    resumed = run(50, checkpoint=path, resume=True, sync_every=10)
    assert same_numbers(resumed.history, full.history)
    assert same_parameters(resumed.model, full.model)


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "10", math.nan])
def test_bad_sync_every_is_refused_with_the_fix(value, digits):
    with pytest.raises(ValueError, match=r"sync_every=.* is invalid: pass a number of steps >= 1"):
        pv.fit(pv.build("vae", **SMALL), digits.x_train, steps=1, sync_every=value, progress=False)


def test_sync_every_defaults_and_the_command_line(digits, monkeypatch):
    from ppl_vae.training import readback

    reads = []
    host_values = readback.host_values
    monkeypatch.setattr(readback, "host_values", lambda v: reads.append(len(v)) or host_values(v))
    result = pv.fit(pv.build("vae", **SMALL), digits.x_train, steps=3, progress=False)
    assert len(result.history) == 3 and [r for r in reads if r] == [2, 2, 2]  # every step
    reads.clear()
    pv.fit(pv.build("vae", **SMALL), digits.x_train, steps=7, sync_every=3, progress=False)
    assert [r for r in reads if r] == [6, 6, 2]  # (loss, grad norm) of 3, 3 and 1 steps
    assert readback.default_sync_every(None) == readback.default_sync_every("cpu") == 1
    assert readback.default_sync_every(torch.device("cuda", 0)) == readback.SYNC_EVERY_ACCELERATOR
    assert readback.default_sync_every("mps") == readback.SYNC_EVERY_ACCELERATOR
    args = parser().parse_args(["train", "--sync-every", "25"])
    assert cli_train.training_options(args, {})["sync_every"] == 25
    table = cli_train.training_options(parser().parse_args(["train"]), {"sync_every": 5})
    assert table["sync_every"] == 5
    default = cli_train.training_options(parser().parse_args(["train"]), {})
    default.pop("val_fraction")
    assert pv.training.FitConfig(**default).sync_every is None  # pv.fit's own default

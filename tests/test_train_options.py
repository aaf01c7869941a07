"""pv.fit options: objectives, warm-up, optimisers, schedules, clipping, validation,
early stopping, callbacks and loggers, honest resume, divergence."""

import copy
import math
import warnings

import pandas as pd
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO

import ppl_vae as pv
from ppl_vae import _seed
from ppl_vae import checkpoint as ckpt
from ppl_vae import math as pv_math
from ppl_vae.infer import _trace
from ppl_vae.infer._program import program, structure
from ppl_vae.training import bounds

SMALL = {"latent_dim": 2, "decoder": {"hidden": [16]}, "guide": {"hidden": [16]}}


def small_vae(**kw):
    return pv.build("vae", **{**SMALL, **kw})


def same_numbers(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    cols = [c for c in a.columns if c != "time"]
    return list(a.columns) == list(b.columns) and a[cols].equals(b[cols])


# -- objectives ---------------------------------------------------------------------


def test_iwae_with_one_particle_is_the_elbo(digits):
    model = small_vae()
    model.initialize(digits.x_train, seed=0)
    x = torch.as_tensor(digits.x_train[:64])
    idx, n = torch.arange(64), 64
    iwae = bounds.Bound(bounds.parse({"kind": "iwae", "num_samples": 1}, 1), model)
    with _seed.seeded(3):
        a = iwae(model, x, None, idx, n, step=0)
    with _seed.seeded(3):
        b = Trace_ELBO().differentiable_loss(model.model, model.guide, x, None, idx=idx, num_data=n)
    assert torch.allclose(a, b, rtol=1e-6), (a, b)


def _linear_gaussian(d=3, seed=0):
    """A raw Pyro pair: z ~ N(0, 1), x | z ~ N(w z + b, s² I), and the exact posterior guide."""
    g = torch.Generator().manual_seed(seed)
    w, b, s = torch.randn(d, generator=g), torch.randn(d, generator=g), 0.7
    x = (w * torch.randn(40, 1, generator=g) + b + s * torch.randn(40, d, generator=g))

    def model(x, y=None):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z.unsqueeze(-1) * w + b, s).to_event(1), obs=x)

    prec = 1.0 + (w @ w) / s**2  # posterior precision of z given x

    def guide(x, y=None):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(((x - b) @ w) / s**2 / prec, prec**-0.5))

    cov = torch.outer(w, w) + s**2 * torch.eye(d)
    exact = dist.MultivariateNormal(b, covariance_matrix=cov).log_prob(x)
    return model, guide, x, exact


@pytest.mark.parametrize("k, alpha", [(1, 0.0), (5, 0.0), (50, 0.0), (5, 0.5), (5, 2.0)])
def test_bounds_equal_log_px_with_the_exact_posterior(k, alpha):
    # With q = p(z|x) every importance weight equals p(x), so every bound is log p(x).
    model, guide, x, exact = _linear_gaussian()
    with _seed.seeded(0):
        bound = pv.training.renyi_bound(model, guide, x, num_particles=k, alpha=alpha)
    assert torch.allclose(bound, exact, atol=1e-4), (bound - exact).abs().max()


def test_iwae_bound_rises_with_k_for_an_inexact_guide():
    model, _, x, exact = _linear_gaussian()

    def guide(x, y=None):  # the prior as proposal: a poor guide
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(0.0, 1.0))

    with _seed.seeded(0):
        l1, l10, l100 = (pv.training.renyi_bound(model, guide, x, num_particles=k).mean()
                         for k in (1, 10, 100))
    assert l1 < l10 < l100 < exact.mean() + 0.05


@pytest.mark.parametrize("alpha", [1 - 1e-12, 1 + 1e-12, 1 - 1e-7, 1 + 1e-6])
def test_renyi_bound_near_alpha_one_is_the_elbo(alpha):
    # L_α → ELBO as α → 1, and |L_α − ELBO| ≈ |1 − α|·Var(log w)/2 (second-order expansion
    # of log-mean-exp): the old direct form returned 0 or noise for |1 − α| ≤ 1e-12.
    model, _, x, _ = _linear_gaussian()

    def guide(x, y=None):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(0.3, 0.8))

    prog = program(model, guide)
    with _seed.seeded(0):
        lw, _, _ = _trace.log_weights(prog, x, None, structure(prog, x), num_particles=20,
                                      vectorize=True)  # [K, N]
    with _seed.seeded(0):
        bound = pv.training.renyi_bound(model, guide, x, num_particles=20, alpha=alpha)
    elbo = lw.mean(0)
    second_order = (1 - alpha) * lw.var(0, unbiased=False) / 2
    assert torch.allclose(bound, elbo + second_order, atol=1e-4, rtol=0), (bound - elbo)


def test_renyi_training_near_alpha_one_trains_on_the_elbo(digits):
    # The loss history of α = 1 − 1e-12 is the ELBO's (≈ 44 nats), not −0.0.
    x = digits.x_train[:256]
    kw = {"steps": 5, "batch_size": 64, "progress": False, "seed": 0}
    renyi = pv.fit(small_vae(), x, bound={"kind": "renyi", "alpha": 1 - 1e-12}, **kw)
    elbo = pv.fit(small_vae(), x, **kw)
    assert renyi.history.loss.abs().min() > 10
    assert abs(renyi.history.loss.iloc[0] - elbo.history.loss.iloc[0]) < 5


def test_renyi_mean_matches_the_direct_form_away_from_one():
    torch.manual_seed(0)
    lw = torch.randn(30, 4, dtype=torch.float64) * 5 - 100
    for alpha in (-2.0, 0.0, 0.5, 0.9, 3.0):
        s = 1 - alpha
        direct = (torch.logsumexp(s * lw, 0) - math.log(30)) / s
        assert torch.allclose(pv_math.renyi_mean(lw, alpha), direct, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    "build, kwargs, fragment",
    [
        (lambda: pv.build("gmm", data_dim=64, num_components=3), {"bound": "iwae"},
         "enumerates a discrete latent"),
        (lambda: pv.build("gmm", data_dim=64, num_components=3), {"kl_warmup": 5},
         "no KL term to warm up"),
        (lambda: pv.build("tcvae", **SMALL), {"bound": "renyi"}, "objective adds terms or penalties"),
        (lambda: small_vae(beta=4.0), {"bound": "iwae"}, "beta=4"),
        (lambda: small_vae(), {"bound": "iwae", "kl_warmup": 5}, "kl_warmup=5"),
    ],
)
def test_objectives_that_do_not_apply_are_refused(build, kwargs, fragment, digits):
    with pytest.raises(ValueError, match="use bound='elbo'|pass kl_warmup=0") as err:
        pv.fit(build(), digits.x_train, steps=1, progress=False, **kwargs)
    assert fragment in str(err.value)


def test_objective_is_the_deprecated_name_of_bound(digits):
    kw = {"steps": 3, "batch_size": 64, "progress": False, "seed": 0}
    with pytest.warns(DeprecationWarning, match="now called 'bound'"):
        old = pv.fit(small_vae(), digits.x_train, objective={"kind": "iwae", "num_particles": 3}, **kw)
    new = pv.fit(small_vae(), digits.x_train, bound={"kind": "iwae", "num_samples": 3}, **kw)
    assert same_numbers(old.history, new.history)


def test_iwae_and_renyi_train(digits):
    for bound in ("iwae", {"kind": "renyi", "alpha": 0.5, "num_samples": 3}):
        result = pv.fit(small_vae(), digits.x_train, steps=20, batch_size=64, lr=3e-3,
                        bound=bound, progress=False)
        h = result.history.loss
        assert h.tail(5).mean() < h.head(5).mean()


@pytest.mark.slow
def test_iwae_training_beats_elbo_training_on_the_test_iwae_bound(digits):
    # benchmarks/iwae_vs_elbo_digits.py, 3,000 steps, seeds 0-2: test L_500 -16.94
    # (IWAE, K = 5) against -17.33 (ELBO), L_5 -17.45 against -17.59. Pinned conservatively.
    bounds = {}
    for name, bound in (("elbo", "elbo"), ("iwae", {"kind": "iwae", "num_samples": 5})):
        model = pv.build("vae", latent_dim=8, decoder={"hidden": [128]}, guide={"hidden": [128]})
        pv.fit(model, digits.x_train, steps=3000, lr=1e-3, seed=0, bound=bound,
               progress=False)
        bounds[name] = float(pv.infer.log_likelihood(model, digits.x_test, num_samples=50,
                                                     seed=1).log_px.mean())
    assert bounds["iwae"] > bounds["elbo"] + 0.1, bounds


def test_kl_warmup_scales_the_kl_like_the_models_own_beta(digits):
    model = small_vae()
    model.initialize(digits.x_train, seed=0)
    x, idx = torch.as_tensor(digits.x_train[:64]), torch.arange(64)
    warm = bounds.Bound(bounds.parse("elbo", 1), model, kl_warmup=10)
    with _seed.seeded(1):
        a = warm(model, x, None, idx, 64, step=5)  # beta_t = 0.5
    half = copy.deepcopy(model)
    half.objective.weights["kl"] = 0.5  # a beta-VAE with beta = 0.5
    with _seed.seeded(1):
        b = Trace_ELBO().differentiable_loss(half.model, half.guide, x, None, idx=idx, num_data=64)
    assert torch.allclose(a, b, rtol=1e-6)
    result = pv.fit(small_vae(), digits.x_train, steps=12, kl_warmup=10, progress=False)
    assert result.history.kl_weight.tolist() == [i / 10 for i in range(10)] + [1.0, 1.0]


# -- optimisers, schedules, clipping --------------------------------------------------


@pytest.mark.parametrize("optimizer", ["adamw", "clipped_adam", {"kind": "adamw", "weight_decay": 0.1},
                                       torch.optim.SGD])
def test_optimizers_train(optimizer, digits):
    result = pv.fit(small_vae(), digits.x_train, steps=3, optimizer=optimizer, progress=False)
    assert result.history.loss.notna().all() and len(result.history) == 3


def test_scheduler_factory_and_iwae_paper_schedule(digits):
    result = pv.fit(
        small_vae(), digits.x_train, steps=6, lr=0.01, progress=False,
        lr_schedule=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
    )
    assert result.history.lr.tolist() == [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025]
    # 1,000 points in batches of 100: a pass is 10 steps; stages last 1, 3, 9, ... passes.
    assert pv.training.iwae_paper_boundaries(1000, 100) == [10, 40, 130, 400, 1210, 3640, 10930]
    x = digits.x_train[:1000]
    result = pv.fit(small_vae(), x, steps=42, batch_size=100, lr=1e-3, lr_schedule="iwae_paper",
                    progress=False)
    lr = result.history.lr.to_numpy()
    assert lr[9] == 1e-3 and math.isclose(lr[10], 1e-3 * 10 ** (-1 / 7))
    assert math.isclose(lr[40], 1e-3 * 10 ** (-2 / 7))


def test_clip_norm_bounds_the_update_and_grad_norm_is_logged(digits):
    model = small_vae()
    model.initialize(digits.x_train, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    result = pv.fit(model, digits.x_train, steps=1, optimizer=torch.optim.SGD, lr=1.0,
                    clip_norm=1e-3, progress=False, resume=False)
    # fit re-initialises with seed 0, the same initial weights
    moved = torch.sqrt(sum(((p - q) ** 2).sum() for p, q in zip(model.parameters(), before)))
    assert result.history.grad_norm.iloc[0] > 1.0
    assert moved <= 1e-3 * (1 + 1e-4)


# -- validation, early stopping, callbacks ----------------------------------------------


def test_validation_keep_best_and_early_stopping(digits, tmp_path):
    path = tmp_path / "ck.pt"
    result = pv.fit(small_vae(), digits.x_train, steps=100, x_val=digits.x_test[:100],
                    eval_every=5, val_iwae=10, early_stopping={"patience": 2, "min_delta": 1e9},
                    checkpoint=path, progress=False)
    h = result.history
    assert result.stopped_at == 15 and len(h) == 15 and result.best_step == 5
    assert h.val_elbo.notna().tolist() == [(s % 5 == 0) for s in h.step]
    assert (h.val_iwae.dropna() >= h.val_elbo.dropna() - 0.5).all()
    best = pv.load(tmp_path / "ck.best.pt")  # the keep-best checkpoint holds step 5
    for p, q in zip(best.parameters(), result.model.parameters()):
        assert torch.equal(p, q)  # the returned model is the best one


def test_callbacks_are_called_and_csv_streams_the_history(digits, tmp_path):
    calls = []

    class Recorder:
        def on_start(self, model, history): calls.append("start")
        def on_step(self, row): calls.append("step")
        def on_validation(self, step, metrics, model): calls.append(("val", step, sorted(metrics)))
        def on_checkpoint(self, step, path): calls.append(("ckpt", step))
        def on_end(self, history): calls.append("end")

    csv_path = tmp_path / "h.csv"
    result = pv.fit(small_vae(), digits.x_train, steps=6, x_val=digits.x_test[:50], eval_every=3,
                    checkpoint=tmp_path / "ck.pt", checkpoint_every=4, progress=False,
                    callbacks=[Recorder(), pv.training.CSVLogger(csv_path)])
    assert calls[0] == "start" and calls[-1] == "end" and calls.count("step") == 6
    assert ("val", 3, ["val_elbo"]) in calls and ("ckpt", 4) in calls and ("ckpt", 6) in calls
    streamed = pd.read_csv(csv_path)
    assert streamed.loss.tolist() == pytest.approx(result.history.loss.tolist(), rel=1e-12)
    with pytest.raises(ValueError, match="callbacks contains 3"):
        pv.fit(small_vae(), digits.x_train, steps=1, callbacks=[3], progress=False)


class _Meddler:
    """A callback that writes into what it is given and draws random numbers."""

    def on_start(self, model, history):
        history.append({"step": -1})
        torch.rand(3)

    def on_step(self, row):
        row["loss"] = -1.0
        torch.rand(5)

    def on_validation(self, step, metrics, model):
        metrics["val_elbo"] = 0.0
        torch.randn(7)

    def on_end(self, history):
        history["loss"] = 0.0


def test_callbacks_observe_they_never_change_the_run(digits):
    kw = {"steps": 8, "batch_size": 64, "x_val": digits.x_test[:50], "eval_every": 4, "seed": 3,
              "progress": False}
    plain = pv.fit(small_vae(), digits.x_train, **kw)
    meddled = pv.fit(small_vae(), digits.x_train, callbacks=[_Meddler()], **kw)
    assert same_numbers(meddled.history, plain.history)
    assert (meddled.history.loss > 0).all()


def test_a_failing_callback_leaves_every_row_so_far_in_history_csv(digits, tmp_path):
    class Fails:
        def on_step(self, row):
            if row["step"] == 30:
                raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        pv.fit(small_vae(), digits.x_train, steps=50, callbacks=[Fails()], log_dir=tmp_path,
               progress=False)
    written = pd.read_csv(tmp_path / "history.csv")  # read at once: nothing left in a buffer
    assert written.step.tolist() == list(range(1, 31))


def test_streamed_history_has_the_returned_columns_resumed_or_not(digits, tmp_path):
    kw = {"batch_size": 64, "seed": 2, "x_val": digits.x_test[:50], "eval_every": 5, "val_iwae": 3,
              "progress": False}
    full = pv.fit(small_vae(), digits.x_train, steps=12, log_dir=tmp_path / "full", **kw)
    path = tmp_path / "ck.pt"
    pv.fit(small_vae(), digits.x_train, steps=7, checkpoint=path, checkpoint_every=5,
           log_dir=tmp_path / "cut", **kw)
    pv.fit(small_vae(), digits.x_train, steps=12, checkpoint=path, resume=True,
           log_dir=tmp_path / "resumed", **kw)
    texts = {}
    for name in ("full", "resumed"):
        lines = (tmp_path / name / "history.csv").read_text().splitlines()
        assert lines[0].split(",") == list(full.history.columns)
        time_col = lines[0].split(",").index("time")
        texts[name] = [[c for i, c in enumerate(line.split(",")) if i != time_col]
                       for line in lines]
    assert texts["resumed"] == texts["full"]
    streamed = pd.read_csv(tmp_path / "full" / "history.csv")
    assert streamed.val_elbo.notna().sum() == 2 and streamed.val_iwae.notna().sum() == 2


def test_tensorboard_event_file_reads_back(digits, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (ppl_vae[tensorboard])")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    pv.fit(small_vae(), digits.x_train, steps=4, x_val=digits.x_test[:50], eval_every=2,
           log_dir=tmp_path, progress=False)
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/lr", "train/grad_norm", "validation/val_elbo"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    assert "samples" in tags["images"]
    assert (tmp_path / "history.csv").exists()


# -- resume ----------------------------------------------------------------------------


def test_resume_with_schedule_and_early_stopping_is_bit_identical(digits, tmp_path):
    x_val = digits.x_test[:100]

    def run(steps, **kw):
        return pv.fit(
            small_vae(), digits.x_train, steps=steps, batch_size=64, lr=3e-3, seed=4,
            lr_schedule=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.7),
            x_val=x_val, eval_every=5, val_iwae=5, early_stopping={"patience": 3, "min_delta": 1.0},
            kl_warmup=8, clip_norm=5e4, progress=False, **kw,
        )

    full = run(60)
    assert full.stopped_at is not None and full.stopped_at > 12  # early stopping acted after the cut
    path = tmp_path / "ck.pt"
    run(12, checkpoint=path, checkpoint_every=5)
    resumed = run(60, checkpoint=path, resume=True)
    assert same_numbers(resumed.history, full.history)
    assert resumed.stopped_at == full.stopped_at and resumed.best_step == full.best_step
    for p, q in zip(resumed.model.parameters(), full.model.parameters()):
        assert torch.equal(p, q)
    again = run(60, checkpoint=path, resume=True)  # a finished, early-stopped run stays finished
    assert same_numbers(again.history, full.history)


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"lr": 1e-2}, "lr: checkpoint 0.001, now 0.01"),
        ({"seed": 9}, "seed: checkpoint 1, now 9"),
        ({"batch_size": 32}, "batch_size: checkpoint 64, now 32"),
        ({"optimizer": "adamw"}, "optimizer: checkpoint"),
        ({"lr_schedule": "iwae_paper"}, "lr_schedule: checkpoint None, now 'iwae_paper'"),
        ({"x": "other"}, "data: checkpoint"),
    ],
)
def test_resume_refuses_changed_options(change, fragment, digits, tmp_path):
    path = tmp_path / "ck.pt"
    base = {"steps": 10, "batch_size": 64, "seed": 1, "progress": False, "checkpoint": path}
    pv.fit(small_vae(), digits.x_train, **base)
    x = digits.x_train[::-1].copy() if change.pop("x", None) else digits.x_train
    with pytest.raises(ValueError, match="resume='override'") as err:
        pv.fit(small_vae(), x, **{**base, "steps": 20, **change}, resume=True)
    assert fragment in str(err.value)


def test_resume_refuses_a_changed_lambda_schedule(digits, tmp_path):
    # LambdaLR's settings do not show its lambda: the digest of its rates does.
    path = tmp_path / "ck.pt"
    kw = {"batch_size": 64, "seed": 1, "progress": False, "checkpoint": path}
    halve = lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 ** (s // 5))
    third = lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.3 ** (s // 5))
    pv.fit(small_vae(), digits.x_train, steps=6, lr_schedule=halve, **kw)
    with pytest.raises(ValueError, match="lr_trajectory: checkpoint"):
        pv.fit(small_vae(), digits.x_train, steps=12, lr_schedule=third, resume=True, **kw)
    again = pv.fit(small_vae(), digits.x_train, steps=12, lr_schedule=halve, resume=True, **kw)
    assert len(again.history) == 12


def test_resume_override_and_steps_below_the_checkpoint(digits, tmp_path):
    path = tmp_path / "ck.pt"
    base = {"batch_size": 64, "seed": 1, "progress": False, "checkpoint": path}
    pv.fit(small_vae(), digits.x_train, steps=10, **base)
    with pytest.raises(ValueError, match="steps=5 is below the checkpoint's step 10"):
        pv.fit(small_vae(), digits.x_train, steps=5, resume=True, **base)
    with pytest.warns(UserWarning, match="lr: checkpoint 0.001, now 0.0005"):
        result = pv.fit(small_vae(), digits.x_train, steps=14, lr=5e-4, resume="override", **base)
    assert result.history.lr.tolist() == [1e-3] * 10 + [5e-4] * 4
    assert ckpt.read(path)["training"]["overrides"][0]["step"] == 10
    with pytest.raises(ValueError, match="resume='yes' is invalid"):
        pv.fit(small_vae(), digits.x_train, steps=14, resume="yes", **base)


def test_stale_temporary_files_are_removed(digits, tmp_path):
    path = tmp_path / "ck.pt"
    stale = tmp_path / "ck.pt.x1y2z3.tmp"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / "other.pt.abc.tmp"
    other.write_bytes(b"not ours")
    pv.fit(small_vae(), digits.x_train, steps=2, checkpoint=path, progress=False)
    assert not stale.exists() and other.exists()


# -- divergence ------------------------------------------------------------------------


@pytest.mark.parametrize("build_kw, fit_kw", [({}, {"lr": 1e4}), ({"beta": 1e30}, {})])
def test_divergence_is_reported(build_kw, fit_kw, digits):
    with pytest.warns(pv.DivergenceWarning, match="training diverged"):
        result = pv.fit(small_vae(**build_kw), digits.x_train, steps=40, batch_size=64,
                        progress=False, **fit_kw)
    assert result.diverged and result.history.diverged.iloc[-1]


def test_ordinary_training_is_not_flagged(digits):
    with warnings.catch_warnings():
        warnings.simplefilter("error", pv.DivergenceWarning)
        result = pv.fit(small_vae(), digits.x_train, steps=40, lr=3e-3, progress=False)
    assert not result.diverged and not result.history.diverged.any()


# -- bad values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"bound": "vi"}, "bound='vi' is not recognised"),
        ({"bound": {"kind": "renyi", "alpha": 1}}, "alpha=1 is invalid"),
        ({"bound": {"kind": "iwae", "K": 5}}, "bound key 'K' is not recognised"),
        ({"bound": "iwae", "objective": "iwae"}, "keep bound"),
        ({"steps_": 5}, "unknown training option 'steps_'"),
        ({"optimizer": "sgd"}, "optimizer='sgd' is not recognised"),
        ({"optimizer": {"kind": "adam", "betaz": 1}}, "betaz"),
        ({"lr_schedule": 3}, "lr_schedule=3 is invalid"),
        ({"lr_schedule": {"kind": "Nope"}}, "kind='Nope' is not a torch.optim.lr_scheduler"),
        ({"clip_norm": 0}, "clip_norm=0 is invalid"),
        ({"kl_warmup": -1}, "kl_warmup=-1 is invalid"),
        ({"eval_every": 0}, "eval_every=0 is invalid"),
        ({"early_stopping": 3}, "early_stopping needs validation data"),
        ({"early_stopping": "soon"}, "early_stopping='soon' is invalid"),
        ({"val_iwae": 0}, "val_iwae=0 is invalid"),
    ],
)
def test_bad_new_options(kwargs, fragment, digits):
    if "early_stopping" in kwargs and kwargs["early_stopping"] == "soon":
        kwargs = {**kwargs, "x_val": digits.x_test[:10]}
    with pytest.raises(ValueError) as err:
        pv.fit(small_vae(), digits.x_train, steps=1, progress=False, **kwargs)
    assert fragment in str(err.value)


def test_a_kill_during_a_checkpoint_write_leaves_a_temporary_that_the_next_start_removes(tmp_path):
    import os
    import subprocess
    import sys

    path = tmp_path / "ck.pt"
    script = f"""
import os, signal, torch, ppl_vae as pv
real = torch.save
calls = []
def dying_save(obj, f, *a, **k):
    calls.append(1)
    if len(calls) == 2:  # the second checkpoint: half written, then SIGKILL
        f.write(b"partial")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real(obj, f, *a, **k)
torch.save = dying_save
data = pv.data.load("digits", binarize=True)
model = pv.build("vae", latent_dim=2, decoder={{"hidden": [8]}}, guide={{"hidden": [8]}})
pv.fit(model, data.x_train, steps=10, checkpoint={str(path)!r}, checkpoint_every=5, progress=False)
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120,
                         check=False)
    assert run.returncode == -9, run.stderr.decode()[-500:]
    assert list(tmp_path.glob("ck.pt.*.tmp"))  # the killed write left its temporary
    assert ckpt.read(path)["training"]["step"] == 5  # the last complete checkpoint is intact
    digits = pv.data.load("digits", binarize=True)
    model = pv.build("vae", latent_dim=2, decoder={"hidden": [8]}, guide={"hidden": [8]})
    pv.fit(model, digits.x_train, steps=10, checkpoint=path, checkpoint_every=5, resume=True,
           progress=False)
    assert not list(tmp_path.glob("*.tmp")) and ckpt.read(path)["training"]["step"] == 10


def test_fit_checks_the_checkpoint_path_and_an_edited_training_state(digits, tmp_path):
    with pytest.raises(ValueError, match="checkpoint="):
        pv.fit(small_vae(), digits.x_train, steps=1, checkpoint=tmp_path, progress=False)
    with pytest.raises(ValueError, match="checkpoint=5 is invalid"):
        pv.fit(small_vae(), digits.x_train, steps=1, checkpoint=5, progress=False)
    path = tmp_path / "ck.pt"
    pv.fit(small_vae(), digits.x_train, steps=3, checkpoint=path, progress=False)
    saved = torch.load(path, weights_only=True)
    saved["training"]["rng"] = torch.zeros(3, dtype=torch.uint8)  # an RNG state of another size
    torch.save(saved, path)
    with pytest.raises(ValueError, match="rng"):
        pv.fit(small_vae(), digits.x_train, steps=6, checkpoint=path, resume=True, progress=False)


def test_a_log_dir_that_is_a_file_and_a_callback_attribute_that_is_not_callable(digits, tmp_path):
    afile = tmp_path / "f.txt"
    afile.write_text("x")
    for bad in (afile, afile / "sub"):
        with pytest.raises(ValueError, match="is a file, not a folder"):
            pv.fit(small_vae(), digits.x_train, steps=1, log_dir=bad, progress=False)
    assert afile.read_text() == "x"

    class Odd:
        on_step = 3

        def on_end(self, history):
            pass

    with pytest.raises(ValueError, match="on_step is int, not a method"):
        pv.fit(small_vae(), digits.x_train, steps=1, callbacks=[Odd()], progress=False)

    class OnlyOdd:  # its one callback attribute is not a method: named, not "none of them"
        on_step = 5

    for given in (OnlyOdd(), [OnlyOdd()]):
        with pytest.raises(ValueError, match="OnlyOdd whose on_step is int, not a method"):
            pv.fit(small_vae(), digits.x_train, steps=1, callbacks=given, progress=False)
    with pytest.raises(ValueError, match="callbacks='abc' is text: pass a list"):
        pv.fit(small_vae(), digits.x_train, steps=1, callbacks="abc", progress=False)

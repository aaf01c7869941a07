"""``pv.fit``: stochastic variational inference with minibatches.

The loss is Pyro's ``Trace_ELBO`` (``TraceEnum_ELBO`` when the model
enumerates a discrete latent) through ``differentiable_loss``, or the IWAE /
Rényi bound (:mod:`ppl_vae.training.objectives`), optimised with a torch
optimiser over the model's own ``nn.Module`` parameters — so no global
parameter store is involved and two models never share weights. Schedules,
gradient clipping, KL warm-up, validation with early stopping, callbacks and
checkpoints with an honest resume are options; with the defaults the loop is
the plain Adam + ELBO loop, number for number.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyro
import torch
from tqdm.auto import tqdm

from ppl_vae import _checks, _device, _seed
from ppl_vae import checkpoint as ckpt
from ppl_vae.training import batches, objectives, optim, readback
from ppl_vae.training import callbacks as cbs
from ppl_vae.training import resume as resume_mod


class TrainingError(RuntimeError):
    """Training stopped (e.g. a non-finite loss); the message says where and what to try.

    ``step``, ``value``, ``checkpoint`` and ``last_saved`` (the step of the last good
    checkpoint, or None) let a front end word its own remedy.
    """

    def __init__(self, message, *, step=None, value=None, checkpoint=None, last_saved=None):
        super().__init__(message)
        self.step, self.value = step, value
        self.checkpoint, self.last_saved = checkpoint, last_saved


class DivergenceWarning(RuntimeWarning):
    """The training loss grew by an order of magnitude or more over its start."""


# A loss is flagged as diverged when it exceeds its first value by more than
# GROWTH·max(|first|, 1) nats, or exceeds ABSURD nats per data dimension.
GROWTH = 10.0
ABSURD = 1e6
# The global gradient norm costs ~3 % of a small model's step, so without clipping it
# is measured on every 10th step (the first included); clipping measures it anyway.
GRAD_NORM_EVERY = 10
BASE_COLUMNS = ["step", "loss", "time", "lr", "grad_norm", "beta", "diverged"]


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained ``model`` and its ``history``.

    ``history`` has one row per step: ``step``, ``loss`` (the negative training
    objective, nats per datapoint), ``time`` (seconds since the start), ``lr``,
    ``grad_norm`` (before clipping; every step with ``clip_norm``, else steps
    1, 11, 21, ... and NaN between), ``beta`` (the KL weight in force, warm-up
    included), ``diverged`` (that step's loss is far above its start), and with
    ``x_val`` the validation bounds ``val_elbo`` (``val_iwae``) on validation
    steps (NaN elsewhere). ``best_step`` is the step of the best validation
    value, ``stopped_at`` the step where early stopping ended the run (or None).
    """

    model: torch.nn.Module
    history: pd.DataFrame
    best_step: int | None = None
    stopped_at: int | None = None

    @property
    def final_loss(self) -> float:
        tail = self.history["loss"].tail(max(1, len(self.history) // 20))
        return float(tail.mean())

    @property
    def diverged(self) -> bool:
        """Whether the final loss (mean of the last 5 % of steps) is far above its start."""
        if self.history.empty:
            return False
        first = float(self.history["loss"].iloc[0])
        dim = getattr(self.model, "data_dim", 1) or 1
        return _is_diverged(self.final_loss, first, dim)


def _is_diverged(value: float, first: float, data_dim: int) -> bool:
    return value - first > GROWTH * max(abs(first), 1.0) or abs(value) > ABSURD * data_dim


_loss_fn = objectives.elbo_loss  # the default objective's Pyro loss (tests use it directly)


def _validation_metrics(model, x_val, y_val, *, val_iwae, seed) -> dict:
    from ppl_vae import infer

    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = {"val_elbo": float(infer.elbo(model, x_val, y_val, num_particles=1, seed=seed).mean())}
        if val_iwae:
            est = infer.log_likelihood(model, x_val, y_val, num_samples=val_iwae, seed=seed)
            out["val_iwae"] = float(est.log_px.mean())
    model.train(was_training)
    return out


def fit(
    model,
    x,
    y=None,
    *,
    steps: int = 2000,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    checkpoint=None,
    resume: bool | str = False,
    checkpoint_every: int = 200,
    num_particles: int = 1,
    validate: bool = False,
    objective="elbo",
    optimizer="adam",
    lr_schedule=None,
    clip_norm: float | None = None,
    kl_warmup: int = 0,
    x_val=None,
    y_val=None,
    eval_every: int = 200,
    val_iwae: int | None = None,
    early_stopping=None,
    callbacks=(),
    log_dir=None,
    device=None,
    binarize: bool | str = False,
    sync_every: int | None = None,
) -> FitResult:
    """Train ``model`` on ``x`` (and labels ``y``) by SVI.

    Parameters
    ----------
    model
        A ppl_vae model (``pv.build``).
    x : array [N, D], or a lazily indexed dataset
        Training data; checked against the model (dimension, support, finiteness).
        An object with ``len(x)`` and ``x[indices] -> array [B, D]`` (e.g.
        ``pv.data.SpriteGrid``: dSprites' 737,280 images rendered on demand) is
        streamed: each minibatch is fetched, checked and moved when it is needed
        (amortized guides only).
    y : array [N] of int, optional
        Labels, for class-structured models.
    steps, batch_size, lr
        Optimiser steps (in total, a resumed run included), minibatch size, base
        learning rate.
    seed : int
        Seeds minibatch order and all sampling: the same seed gives the same
        history, bit for bit, on the same machine.
    progress : bool
        Show a tqdm bar with the running objective.
    checkpoint : path, optional
        Written atomically every ``checkpoint_every`` steps and at the end; stale
        temporary files of an interrupted write (``<name>.*.tmp``) are removed at
        the start. With ``x_val`` the best model so far is also kept at
        ``<stem>.best.pt``.
    resume : False, True or "override"
        ``True`` continues from ``checkpoint`` (if it exists) up to ``steps``: every
        option that decides the numbers (seed, lr, batch size, objective, optimizer,
        schedule, clipping, warm-up, validation settings, the training and
        validation data) must equal the checkpoint's, else a ValueError names
        both values. ``"override"`` continues with the options given now (a
        warning lists the changes; optimizer moments are kept when the
        optimizer is unchanged, the schedule restarts when lr or schedule
        changed). ``steps`` below the checkpoint's step is always an error.
    checkpoint_every : int
        Steps between checkpoints.
    num_particles : int
        ELBO particles per step (and K of a string ``"iwae"``/``"renyi"`` objective
        when above 1).
    validate : bool
        Pyro's distribution argument checks during training. Off by default:
        the data are validated up front, and the checks cost about half of a
        step of a small model.
    objective : "elbo", "iwae", "renyi" or dict
        The bound maximised; ``{"kind": "iwae", "num_particles": K}`` is the
        IWAE bound of order K (Burda et al., 2016; K = 5 for the bare string),
        ``{"kind": "renyi", "alpha": a}`` the Rényi bound of order a. IWAE and
        Rényi are refused for enumerated models, penalties and β ≠ 1.
    optimizer : "adam", "adamw", "clipped_adam", dict or torch optimizer class
        ``{"kind": "adamw", "weight_decay": 0.01}`` passes options; a class is
        called as ``cls(params, lr=lr)``.
    lr_schedule : None, "iwae_paper" or callable
        A factory ``lambda opt: torch.optim.lr_scheduler.X(opt, ...)``; its
        ``step()`` runs after every optimiser step (``ReduceLROnPlateau`` steps
        on each validation with the monitored bound). ``"iwae_paper"``: the rate
        is divided by 10^(1/7) after 3^i passes over the data, i = 0..6
        (:func:`ppl_vae.training.iwae_paper_boundaries`).
    clip_norm : float, optional
        Clip the global gradient norm to this value (``grad_norm`` is logged before).
    kl_warmup : int
        Steps over which the KL weight rises linearly from 0 to the model's β.
    x_val, y_val : array, optional
        Validation data: ``val_elbo`` every ``eval_every`` steps (and ``val_iwae``
        with ``val_iwae=K`` samples), the best model kept.
    eval_every : int
        Steps between validations (at multiples of it).
    val_iwae : int, optional
        Also log the IWAE bound of order K on the validation data (and monitor
        it for early stopping instead of ``val_elbo``).
    early_stopping : None, int or dict
        Patience: stop after this many validations without improvement
        (``{"patience": 5, "min_delta": 0.1}``); the returned model then holds the
        best validated weights.
    callbacks : sequence
        Objects with any of ``on_start``, ``on_step``, ``on_validation``,
        ``on_checkpoint``, ``on_end`` (:mod:`ppl_vae.training.callbacks`).
    log_dir : path, optional
        Stream ``history.csv`` there, and TensorBoard events when the
        ``tensorboard`` package is installed (``ppl_vae[tensorboard]``).
    device : str or torch.device, optional
        Where to train: ``None`` (where the model is), ``"auto"`` (CUDA when
        available), ``"cpu"``, ``"cuda[:N]"``. The model and the data are moved
        there once, before the first step.
    binarize : False or "dynamic"
        ``"dynamic"``: ``x`` holds grey levels in [0, 1] and every minibatch is a
        fresh Bernoulli draw of them (dynamic binarization, as in Burda et al.,
        2016), from the run's seeded stream (so resuming stays bit-identical).
    sync_every : int, optional
        Steps between reads of the loss and gradient norm back to the host (each
        read waits for the device's queue). ``None``: 1 on the CPU, 50 on a GPU
        (CUDA, MPS). Between reads they stay on the device, and the history rows,
        the non-finite check, the ``diverged`` flag, ``on_step`` callbacks and the
        progress bar catch up at the next read — every ``sync_every`` steps, before
        each validation and checkpoint, and at the end; the numbers, the rows and
        their order are those of ``sync_every=1``. A non-finite loss still raises
        naming its own (first) step and keeps the last good checkpoint; with
        ``sync_every=1`` it stops before that step's update, above 1 the model in
        memory may have taken it and up to ``sync_every - 1`` further steps
        (irrelevant, as training stops). ``time`` is taken per step when the step
        has been queued, which on a GPU may run ahead of the computation. An
        ``on_step`` callback that looks at the model itself (not the row) sees it as
        it is at the read, up to ``sync_every - 1`` steps later.
    """
    steps = _checks.positive_int("steps", steps)
    batch_size = _checks.positive_int("batch_size", batch_size)
    lr = _checks.positive_float("lr", lr)
    num_particles = _checks.positive_int("num_particles", num_particles)
    checkpoint_every = _checks.positive_int("checkpoint_every", checkpoint_every)
    eval_every = _checks.positive_int("eval_every", eval_every)
    seed = _checks.seed("seed", seed)
    resume = resume_mod.check_mode(resume)
    kl_warmup = _checks.positive_int("kl_warmup", kl_warmup, minimum=0,
                                     fix="pass a number of steps >= 0 (0: no warm-up)")
    if clip_norm is not None:
        clip_norm = _checks.positive_float("clip_norm", clip_norm, fix="pass a number > 0 or None")
    if val_iwae is not None:
        val_iwae = _checks.positive_int("val_iwae", val_iwae, fix="pass a number of samples K >= 1 or None")
    if sync_every is not None:
        sync_every = _checks.positive_int("sync_every", sync_every,
                                          fix="pass a number of steps >= 1 or None (automatic)")
    parsed_objective = objectives.parse(objective, num_particles)
    objectives.check_applicable(parsed_objective, model, kl_warmup=kl_warmup)
    parsed_optimizer = optim.parse_optimizer(optimizer)
    lr_schedule = optim.parse_schedule(lr_schedule)
    monitor = "val_iwae" if val_iwae else "val_elbo"
    stopping = optim.parse_early_stopping(early_stopping, monitor=monitor)
    callbacks = cbs.check(callbacks)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path> to resume from")
    if model.requires_labels and y is None:
        raise ValueError("y=None, but this model needs class labels: pass y=<labels [N]>")
    if binarize not in (False, "dynamic"):
        raise ValueError(f"binarize={binarize!r} is invalid: pass False or 'dynamic'")
    dev = _device.resolve(device)
    if dev is not None:
        model.to(dev)
    if sync_every is None:
        sync_every = readback.default_sync_every(_device.of(model)[0])
    source = batches.is_source(x)
    if source:
        x, y = batches.streamed(model, x, y, binarize)
    else:
        x, y = batches.grey_levels(model, x, y) if binarize == "dynamic" else model.check_data(x, y)
    n = len(x)
    data_device = x.device if torch.is_tensor(x) else _device.of(model)[0]
    if x_val is not None:
        if not getattr(getattr(model, "q", None), "amortized", True):
            raise ValueError(
                "x_val given, but the model's guide is local (free parameters per training "
                "point) and cannot score new data: use guide={'kind': 'amortized'} or drop x_val"
            )
        x_val, y_val = model.check_data(x_val, y_val, name="x_val")
    elif stopping is not None or val_iwae:
        what = "early_stopping" if stopping is not None else "val_iwae"
        raise ValueError(f"{what} needs validation data: pass x_val=<array [M, D]>")
    if checkpoint is not None:
        ckpt.clean_stale(checkpoint)
        ckpt.clean_stale(_best_path(checkpoint))
    if log_dir is not None:
        callbacks = [*cbs.loggers(log_dir, model, seed), *callbacks]  # rows logged first

    objective_fn = objectives.Objective(parsed_objective, model, kl_warmup=kl_warmup)
    base_beta = float(getattr(model, "kl_weight", 1.0))
    # Every option that decides the numbers of the run; compared on resume.
    options = {
        "seed": seed, "lr": lr, "batch_size": batch_size,
        "objective": parsed_objective, "optimizer": optim.describe_optimizer(parsed_optimizer),
        "clip_norm": clip_norm, "kl_warmup": kl_warmup,
        "data": batches.fingerprint(x, y) if source else resume_mod.fingerprint(x, y),
        "validation": resume_mod.fingerprint(x_val, y_val),
        "eval_every": eval_every if x_val is not None else None, "val_iwae": val_iwae,
        "early_stopping": stopping, "binarize": binarize,
    }

    rows: list[dict] = []
    start, rng_state, saved_training, diff = 0, None, None, {}
    if resume and checkpoint is not None and ckpt.Path(checkpoint).exists():
        saved = ckpt.read(checkpoint)
        if saved["spec"] != model.spec:
            raise ValueError(
                f"checkpoint={str(checkpoint)!r} holds a different model spec: "
                "resume with the model it was written for, or pass resume=False"
            )
        saved_training = saved.get("training") or {}
        start = int(saved_training.get("step", 0))
        if steps < start:
            raise ValueError(
                f"steps={steps} is below the checkpoint's step {start} ({str(checkpoint)!r}): "
                f"pass steps>={start} to continue it, or resume=False to train afresh"
            )
        model.load_state_dict(saved["state_dict"])
        rows = [dict(zip(saved_training["columns"], r)) for r in saved_training.get("rows", [])]  # re-keyed below
        rng_state = saved_training.get("rng")
    else:
        model.initialize(batches.batch(x, torch.arange(min(n, batch_size)), source, False, model)
                         if source else x, y, seed=seed)

    opt = optim.build_optimizer(parsed_optimizer, model.parameters(), lr)
    scheduler = optim.build_schedule(lr_schedule, opt, num_data=n, batch_size=batch_size)
    options["lr_schedule"] = optim.describe_schedule(lr_schedule, scheduler)
    best = {"value": -math.inf, "step": None, "state": None, "bad": 0, "stopped": None}
    if saved_training is not None:
        saved_options = dict(saved_training.get("options") or {})
        if "seed" in saved_training:
            saved_options.setdefault("seed", saved_training["seed"])
        diff = resume_mod.check(saved_options, options, resume=resume, checkpoint=checkpoint)
        if saved_training.get("optimizer") is not None and resume_mod.keeps_state(diff, "optimizer"):
            opt.load_state_dict(saved_training["optimizer"])
            for group in opt.param_groups:  # an overridden lr replaces the saved one
                if "lr" in diff:
                    group["lr"] = group["initial_lr"] = lr
        saved_schedule = saved_training.get("scheduler")
        if scheduler is not None and saved_schedule is not None and resume_mod.keeps_state(diff, "schedule"):
            scheduler.load_state_dict(saved_schedule)
        if saved_training.get("best") is not None and "validation" not in diff:
            best.update(saved_training["best"])
        if diff and stopping is not None and "early_stopping" in diff:
            best["stopped"] = None

    last_saved = start if start else None

    def save_checkpoint(step_done: int):
        nonlocal last_saved
        if checkpoint is None:
            return
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            return
        training = {
            "step": step_done,
            "optimizer": opt.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "columns": columns,
            "rows": [[r.get(c, math.nan) for c in columns] for r in rows],
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "seed": seed,
            "options": resume_mod.plain(options),
            "best": best if x_val is not None else None,
            "overrides": (list(saved_training.get("overrides", [])) if saved_training else [])
            + ([{"step": start, "changed": resume_mod.plain(diff)}] if diff else []),
        }
        ckpt.write_atomic(ckpt.payload(model, training), checkpoint)
        last_saved = step_done
        cbs.dispatch(callbacks, "on_checkpoint", step_done, Path(checkpoint))

    columns = list(BASE_COLUMNS)
    if x_val is not None:
        columns += ["val_elbo"] + (["val_iwae"] if val_iwae else [])
    # every row has every column (NaN where a step has no value), restored rows included,
    # so the returned history, callbacks and history.csv agree, resumed or not
    rows = [{c: r.get(c, math.nan) for c in columns} for r in rows]
    t0 = time.perf_counter() - (rows[-1]["time"] if rows else 0.0)
    first = rows[0]["loss"] if rows else None
    running = None
    data_dim = model.data_dim
    params = [p for p in model.parameters()]
    pending: list[tuple] = []  # (step, lr, time, loss, grad_norm) of steps not yet read back

    def sync():
        """Read the pending losses and norms back at once, then build their rows in order."""
        nonlocal first, running
        read = readback.host_values([v for entry in pending for v in entry[3:]])
        for (step, current_lr, elapsed, _, _), value, grad_norm in zip(pending, read[::2], read[1::2]):
            value /= n
            if not math.isfinite(value):
                pending.clear()
                bar.close()
                raise _non_finite(value, step, lr, checkpoint, last_saved)
            if first is None:
                first = value
            row = dict.fromkeys(columns, math.nan)
            row |= {
                "step": step + 1, "loss": value, "time": elapsed,
                "lr": current_lr, "grad_norm": grad_norm,
                "beta": base_beta * objectives.warmup_factor(step, kl_warmup),
                "diverged": _is_diverged(value, first, data_dim),
            }
            if x_val is not None and (step + 1) % eval_every == 0:  # always the last one pending
                metrics = _validation_metrics(model, x_val, y_val, val_iwae=val_iwae, seed=seed)
                row.update(metrics)
                _track_best(best, metrics[monitor], step + 1, model, stopping)
                if scheduler is not None and optim.is_plateau(scheduler):
                    scheduler.step(-metrics[monitor])
                if checkpoint is not None and best["step"] == step + 1:
                    ckpt.write_atomic(ckpt.payload(model), _best_path(checkpoint))
                cbs.dispatch(callbacks, "on_validation", step + 1, metrics, model)
            rows.append(row)
            cbs.dispatch(callbacks, "on_step", row)
            running = value if running is None else 0.95 * running + 0.05 * value
            bar.update(1)
            if progress and (step % 10 == 0 or step + 1 == steps):
                bar.set_postfix(objective=f"{-running:.2f}")
        pending.clear()

    def _loop():
        with _seed.seeded(seed), pyro.validation_enabled(validate):
            if rng_state is not None:
                torch.set_rng_state(rng_state)
                cuda_state = (saved_training or {}).get("cuda_rng")
                if cuda_state is not None and torch.cuda.is_available():
                    torch.cuda.set_rng_state_all(cuda_state)
            for step in range(start, steps):
                if best["stopped"] is not None:
                    break
                try:
                    idx = batches.batch_indices(n, batch_size, step, seed, data_device)
                    yb = None if y is None else y[idx]
                    xb = batches.batch(x, idx, source, binarize, model)
                    current_lr = opt.param_groups[0]["lr"]
                    loss = objective_fn(model, xb, yb, idx, n, step)
                    value = loss.item() if sync_every == 1 else loss.detach()
                    if sync_every == 1 and not math.isfinite(value):  # stop before the bad update
                        pending.append((step, current_lr, math.nan, value, math.nan))
                        sync()  # raises
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if clip_norm is None:
                        grad_norm = readback.grad_norm(params) if step % GRAD_NORM_EVERY == 0 else math.nan
                    else:
                        grad_norm = torch.nn.utils.clip_grad_norm_(params, clip_norm)
                    opt.step()
                    if scheduler is not None and not optim.is_plateau(scheduler):
                        scheduler.step()
                except BaseException:
                    sync()  # a non-finite loss pending from an earlier step is the first failure
                    raise
                pending.append((step, current_lr, time.perf_counter() - t0, value, grad_norm))
                validating = x_val is not None and (step + 1) % eval_every == 0
                saving = (step + 1) % checkpoint_every == 0
                if validating or saving or (step + 1) % sync_every == 0:
                    sync()
                if saving or best["stopped"] is not None:
                    save_checkpoint(step + 1)
            sync()
            done = rows[-1]["step"] if rows else 0
            if done > start:
                save_checkpoint(done)

    def _finish() -> FitResult:
        bar.close()
        model.eval()
        if stopping is not None and best["stopped"] is not None and best["state"] is not None:
            model.load_state_dict(best["state"])
        history = pd.DataFrame(rows, columns=columns)
        result = FitResult(model=model, history=history, best_step=best["step"],
                           stopped_at=best["stopped"])
        if result.diverged:
            warnings.warn(
                f"training diverged: the final loss {result.final_loss:.4g} nats per datapoint is "
                f"far above its start ({history['loss'].iloc[0]:.4g}); try a lower lr "
                f"(lr={lr:g} now), clip_norm=, or a smaller beta",
                DivergenceWarning,
                stacklevel=3,
            )
        cbs.dispatch(callbacks, "on_end", history)
        return result

    model.train()
    bar = tqdm(total=steps, initial=start, disable=not progress, desc="fit", unit="step")
    try:
        cbs.dispatch(callbacks, "on_start", model, rows)
        _loop()
        return _finish()
    finally:
        bar.close()
        cbs.close(callbacks)


def _track_best(best: dict, value: float, step: int, model, stopping) -> None:
    delta = stopping["min_delta"] if stopping else 0.0
    if value > best["value"] + delta or best["step"] is None:
        best.update(value=value, step=step, bad=0, state=copy.deepcopy(model.state_dict()))
    else:
        best["bad"] += 1
        if stopping is not None and best["bad"] >= stopping["patience"]:
            best["stopped"] = step


def _best_path(checkpoint) -> Path:
    path = Path(checkpoint)
    return path.with_name(f"{path.stem}.best{path.suffix or '.pt'}")


def _non_finite(value, step, lr, checkpoint, last_saved) -> TrainingError:
    where = (
        f"the last good checkpoint (step {last_saved}) is at {checkpoint}"
        if last_saved
        else "no checkpoint was written (pass checkpoint= to keep one)"
    )
    return TrainingError(
        f"loss became {value} at step {step + 1}: training stopped. Try a lower "
        f"learning rate (lr={lr:g} now), a larger batch_size, or a likelihood "
        f"with a larger scale; {where}",
        step=step + 1, value=value, checkpoint=checkpoint, last_saved=last_saved,
    )

"""``pv.fit``: stochastic variational inference with minibatches and Adam.

The loss is Pyro's ``Trace_ELBO`` (``TraceEnum_ELBO`` when the model
enumerates a discrete latent) through ``differentiable_loss``, optimised with
``torch.optim.Adam`` over the model's own ``nn.Module`` parameters — so no
global parameter store is involved and two models never share weights.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import pandas as pd
import pyro
import torch
from pyro.infer import Trace_ELBO, TraceEnum_ELBO
from tqdm.auto import tqdm

from ppl_vae import _checks, _seed
from ppl_vae import checkpoint as ckpt


class TrainingError(RuntimeError):
    """Training stopped (e.g. a non-finite loss); the message says where and what to try."""


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained ``model`` and its ``history``.

    ``history`` has one row per step: ``step``, ``loss`` (the negative training
    objective, nats per datapoint) and ``time`` (seconds since the start).
    """

    model: torch.nn.Module
    history: pd.DataFrame

    @property
    def final_loss(self) -> float:
        tail = self.history["loss"].tail(max(1, len(self.history) // 20))
        return float(tail.mean())


def _batch_indices(n: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Rows of step ``step``: epochs are seeded permutations, so resuming needs only ``step``."""
    if batch_size >= n:
        return torch.arange(n)
    per_epoch = n // batch_size
    epoch, pos = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=_seed.generator(seed * 7919 + epoch))
    return perm[pos * batch_size : (pos + 1) * batch_size]


def _loss_fn(model, num_particles: int):
    nesting = getattr(model, "max_plate_nesting", 1)
    if getattr(model, "enumerate", False):
        return TraceEnum_ELBO(num_particles=num_particles, max_plate_nesting=nesting)
    return Trace_ELBO(num_particles=num_particles, max_plate_nesting=nesting)


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
    resume: bool = False,
    checkpoint_every: int = 200,
    num_particles: int = 1,
    validate: bool = False,
) -> FitResult:
    """Train ``model`` on ``x`` (and labels ``y``) by SVI.

    Parameters
    ----------
    model
        A ppl_vae model (``pv.build``).
    x : array [N, D]
        Training data; checked against the model (dimension, support, finiteness).
    y : array [N] of int, optional
        Labels, for class-structured models.
    steps, batch_size, lr
        Optimiser steps, minibatch size, Adam learning rate.
    seed : int
        Seeds minibatch order and all sampling: the same seed gives the same
        history, bit for bit, on the same machine.
    progress : bool
        Show a tqdm bar with the running ELBO.
    checkpoint : path, optional
        Written atomically every ``checkpoint_every`` steps and at the end.
    resume : bool
        Continue from ``checkpoint`` (if it exists) up to ``steps`` in total.
    checkpoint_every : int
        Steps between checkpoints.
    num_particles : int
        ELBO particles per step.
    validate : bool
        Pyro's distribution argument checks during training. Off by default:
        the data are validated up front, and the checks cost about half of a
        step of a small model.
    """
    steps = _checks.positive_int("steps", steps)
    batch_size = _checks.positive_int("batch_size", batch_size)
    lr = _checks.positive_float("lr", lr)
    num_particles = _checks.positive_int("num_particles", num_particles)
    checkpoint_every = _checks.positive_int("checkpoint_every", checkpoint_every)
    seed = _checks.seed("seed", seed)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path> to resume from")
    if getattr(model, "num_classes", None) and y is None and getattr(model, "requires_labels", False):
        raise ValueError("y=None, but this model needs class labels: pass y=<labels [N]>")
    x, y = model.check_data(x, y)
    n = x.shape[0]

    rows: list[dict] = []
    start = 0
    rng_state = None
    opt_state = None
    if resume and checkpoint is not None and ckpt.Path(checkpoint).exists():
        saved = ckpt.read(checkpoint)
        if saved["spec"] != model.spec:
            raise ValueError(
                f"checkpoint={str(checkpoint)!r} holds a different model spec: "
                "resume with the model it was written for, or pass resume=False"
            )
        model.load_state_dict(saved["state_dict"])
        training = saved.get("training") or {}
        start = int(training.get("step", 0))
        rows = [dict(zip(training["columns"], r)) for r in training.get("rows", [])]
        rng_state = training.get("rng")
        opt_state = training.get("optimizer")
    else:
        model.initialize(x, y, seed=seed)

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    if opt_state is not None:
        optimizer.load_state_dict(opt_state)
    loss_fn = _loss_fn(model, num_particles)
    last_saved = start if start else None

    def save_checkpoint(step_done: int):
        nonlocal last_saved
        if checkpoint is None:
            return
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            return
        training = {
            "step": step_done,
            "optimizer": optimizer.state_dict(),
            "columns": ["step", "loss", "time"],
            "rows": [[r["step"], r["loss"], r["time"]] for r in rows],
            "rng": torch.get_rng_state(),
            "seed": seed,
        }
        ckpt.write_atomic(ckpt.payload(model, training), checkpoint)
        last_saved = step_done

    t0 = time.perf_counter() - (rows[-1]["time"] if rows else 0.0)
    model.train()
    bar = tqdm(total=steps, initial=start, disable=not progress, desc="fit", unit="step")
    with _seed.seeded(seed), pyro.validation_enabled(validate):
        if rng_state is not None:
            torch.set_rng_state(rng_state)
        running = None
        for step in range(start, steps):
            idx = _batch_indices(n, batch_size, step, seed)
            yb = None if y is None else y[idx]
            loss = loss_fn.differentiable_loss(
                model.model, model.guide, x[idx], yb, idx=idx, num_data=n
            )
            value = loss.item() / n
            if not math.isfinite(value):
                where = (
                    f"the last good checkpoint (step {last_saved}) is at {checkpoint}"
                    if last_saved
                    else "no checkpoint was written (pass checkpoint= to keep one)"
                )
                bar.close()
                raise TrainingError(
                    f"loss became {value} at step {step + 1}: training stopped. Try a lower "
                    f"learning rate (lr={lr:g} now), a larger batch_size, or a likelihood "
                    f"with a larger scale; {where}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            rows.append({"step": step + 1, "loss": value, "time": time.perf_counter() - t0})
            running = value if running is None else 0.95 * running + 0.05 * value
            bar.update(1)
            if progress and (step % 10 == 0 or step + 1 == steps):
                bar.set_postfix(elbo=f"{-running:.2f}")
            if (step + 1) % checkpoint_every == 0:
                save_checkpoint(step + 1)
        if steps > start:
            save_checkpoint(steps)
    bar.close()
    model.eval()
    history = pd.DataFrame(rows, columns=["step", "loss", "time"])
    return FitResult(model=model, history=history)

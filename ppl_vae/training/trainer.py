"""``Trainer``: one SVI run as separate steps — prepare, resume, step, validate,
checkpoint — over a :class:`~ppl_vae.training.config.FitConfig`.

The hot loop (:meth:`Trainer.step`) does only the step: draw the batch, compute the
bound, backpropagate, update; the loss stays on the device until the history reads
it back (:mod:`ppl_vae.training.history`). Everything else (validation, keep-best,
early stopping, checkpoints, callbacks) happens at a read.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pyro
import torch
from tqdm.auto import tqdm

from ppl_vae import _checks, _device, _seed
from ppl_vae import checkpoint as ckpt
from ppl_vae.infer import importance
from ppl_vae.training import auxiliary, batches, bounds, optim, readback
from ppl_vae.training import callbacks as cbs
from ppl_vae.training import resume as resume_mod
from ppl_vae.training.config import FitConfig
from ppl_vae.training.history import FitResult, History, Pending, columns_for, restore

# The global gradient norm costs ~3 % of a small model's step, so without clipping it
# is measured on every 10th step (the first included); clipping measures it anyway.
GRAD_NORM_EVERY = 10


class TrainingError(RuntimeError):
    """Training stopped (e.g. a non-finite loss); the message says where and what to try.

    ``step``, ``value``, ``checkpoint`` and ``last_saved`` (the step of the last good
    checkpoint, or None) let a front end word its own remedy.

    Examples
    --------
    >>> from ppl_vae import TrainingError
    >>> err = TrainingError("loss is nan at step 3: lower lr", step=3, value=float("nan"))
    >>> err.step, err.last_saved, isinstance(err, RuntimeError)
    (3, None, True)
    """

    def __init__(self, message, *, step=None, value=None, checkpoint=None, last_saved=None):
        super().__init__(message)
        self.step, self.value = step, value
        self.checkpoint, self.last_saved = checkpoint, last_saved


@dataclass
class Best:
    """The best validation so far (keep-best and early stopping)."""

    value: float = -math.inf
    step: int | None = None
    state: dict | None = None
    bad: int = 0
    stopped: int | None = None

    def update(self, value: float, step: int, model, stopping: dict | None) -> None:
        delta = stopping["min_delta"] if stopping else 0.0
        if value > self.value + delta or self.step is None:
            self.value, self.step, self.bad = value, step, 0
            self.state = copy.deepcopy(model.state_dict())
        else:
            self.bad += 1
            if stopping is not None and self.bad >= stopping["patience"]:
                self.stopped = step


@dataclass
class Data:
    """The run's checked data: training rows (or a streamed source), labels, validation."""

    x: object
    y: torch.Tensor | None
    x_val: torch.Tensor | None
    y_val: torch.Tensor | None
    source: bool  # streamed batch by batch (len(x) and x[indices])
    x_unlabelled: torch.Tensor | None = None  # rows whose label is missing (y = -1; M2)
    identity: str | None = None  # fingerprint of the data as given, for the resume check

    @property
    def n(self) -> int:
        """All training rows, labelled and unlabelled."""
        return len(self.x) + (0 if self.x_unlabelled is None else len(self.x_unlabelled))


class Trainer:
    """A run of ``model`` under ``config``; :meth:`run` is ``pv.fit``'s body.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> from ppl_vae.training import FitConfig, Trainer
    >>> model = pv.build("vae", data_dim=6, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((16, 6), 0.5))
    >>> trainer = Trainer(model, FitConfig(steps=3, progress=False))
    >>> _ = trainer.prepare(x)
    >>> trainer.resume(False)                              # a fresh run
    >>> result = trainer.run()
    >>> len(result.history), result.history["step"].tolist()
    (3, [1, 2, 3])
    """

    def __init__(self, model, config: FitConfig, *, checkpoint=None, callbacks=(),
                 log_dir=None, device=None):
        self.model, self.config = model, config
        self.checkpoint = None if checkpoint is None else ckpt.check_checkpoint_path(checkpoint)
        self.callbacks = cbs.check(callbacks)
        bounds.check_applicable(config.bound_spec, model, kl_warmup=config.kl_warmup)
        dev = _device.resolve(device)
        if dev is not None:
            model.to(dev)
        self.sync_every = config.sync_every or readback.default_sync_every(_device.of(model)[0])
        self.log_dir = None if log_dir is None else cbs.check_log_dir(log_dir)
        self.bound = bounds.Bound(config.bound_spec, model, kl_warmup=config.kl_warmup)
        self.best = Best()
        self.start, self.last_saved, self.saved_training, self.diff = 0, None, None, {}

    # -- set-up -----------------------------------------------------------------------
    def prepare(self, x, y=None, x_val=None, y_val=None) -> Data:
        """Check the data against the model and move it to the model's device."""
        model, cfg = self.model, self.config
        if model.requires_labels and y is None:
            raise ValueError("y=None, but this model needs class labels: pass y=<labels [N]>")
        source = batches.is_source(x)
        x_unlabelled, identity = None, None
        if model.partial_labels and y is not None and not source:
            x, y, x_unlabelled, identity = _split_labelled(model, x, y)
        elif source:
            x, y = batches.streamed(model, x, y, cfg.binarize)
        elif cfg.binarize == "dynamic":
            x, y = batches.grey_levels(model, x, y)
        else:
            x, y = model.check_data(x, y)
        if x_val is not None:
            if not model.amortized:
                raise ValueError(
                    "x_val given, but the model's guide is local (free parameters per training "
                    "point) and cannot score new data: use an amortized guide (an encoder; "
                    "guide={'kind': 'amortized'} in a spec) or drop x_val"
                )
            x_val, y_val = model.check_data(x_val, y_val, name="x_val")
            if cfg.val_iwae:
                importance.check_budget("val_iwae", cfg.val_iwae, x_val)
        elif y_val is not None:
            raise ValueError("y_val given without x_val: pass x_val= with it, or drop y_val")
        elif cfg.stopping is not None or cfg.val_iwae:
            what = "early_stopping" if cfg.stopping is not None else "val_iwae"
            raise ValueError(f"{what} needs validation data: pass x_val=<array [M, D]>")
        self.data = Data(x, y, x_val, y_val, source, x_unlabelled, identity)
        check_step_budget(cfg, self.data.n, model.data_dim)
        self.data_device = x.device if torch.is_tensor(x) else _device.of(model)[0]
        if self.checkpoint is not None:
            ckpt.clean_stale(self.checkpoint)
            ckpt.clean_stale(best_path(self.checkpoint))
        if self.log_dir is not None:  # the run's own loggers first: they record every row
            self.callbacks = [*cbs.loggers(self.log_dir, model, cfg.seed), *self.callbacks]
        return self.data

    def options(self) -> dict:
        """Every option that decides the numbers of the run; compared on resume.

        The stored key of the bound is ``"objective"`` (its name when the format was
        fixed), so checkpoints of every version compare alike.
        """
        cfg, data = self.config, self.data
        return {
            "seed": cfg.seed, "lr": cfg.lr, "batch_size": cfg.batch_size,
            "objective": cfg.bound_spec,
            "optimizer": optim.describe_optimizer(cfg.optimizer_spec),
            "clip_norm": cfg.clip_norm, "kl_warmup": cfg.kl_warmup,
            "data": data.identity or (batches.fingerprint(data.x, data.y) if data.source
                                      else resume_mod.fingerprint(data.x, data.y)),
            "validation": resume_mod.fingerprint(data.x_val, data.y_val),
            "eval_every": cfg.eval_every if data.x_val is not None else None,
            "val_iwae": cfg.val_iwae, "early_stopping": cfg.stopping, "binarize": cfg.binarize,
        }

    def build(self, rows: list[dict]) -> None:
        """The optimiser, the schedule and the history (``rows`` restored, or none)."""
        cfg = self.config
        self.aux = auxiliary.AuxiliarySteps(self.model)  # parts with optimisers of their own
        self.params = auxiliary.model_parameters(self.model)
        self.opt = optim.build_optimizer(cfg.optimizer_spec, self.params, cfg.lr)
        self.scheduler = optim.build_schedule(cfg.schedule, self.opt, num_data=self.data.n,
                                              batch_size=cfg.batch_size, steps=cfg.steps,
                                              validation=self.data.x_val is not None)
        self.plateau = self.scheduler is not None and optim.is_plateau(self.scheduler)
        self.kl_weight = float(self.model.kl_weight)
        columns = columns_for(self.data.x_val is not None, bool(cfg.val_iwae))
        self.history = History(columns, rows, num_data=self.data.n,
                               data_dim=self.model.data_dim)

    def resume(self, mode) -> None:
        """Continue from the checkpoint (when ``mode`` and the file exist), else initialise."""
        model, cfg, data = self.model, self.config, self.data
        options = self.options()
        if not (mode and self.checkpoint is not None and self.checkpoint.exists()):
            first = (batches.batch(data.x, torch.arange(min(data.n, cfg.batch_size)), True, False,
                                   model) if data.source else data.x)
            model.initialize(first, data.y, seed=cfg.seed)
            self.build([])
            self.options_now = options | self._schedule_description()
            return
        saved = ckpt.read(self.checkpoint)
        spec, state = ckpt.contents(self.checkpoint, saved, fix=resume_mod.RESUME_FIX)
        if spec != model.spec:
            raise ValueError(
                f"checkpoint={str(self.checkpoint)!r} holds a different model spec: "
                "resume with the model it was written for, or pass resume=False"
            )
        resume_mod.check_saved_training(
            saved.get("training"), self.checkpoint, params=auxiliary.model_parameters(model),
            weights=state,
            auxiliary=[part.auxiliary_parameters() for part in model.auxiliary_parts])
        training = self.saved_training = saved.get("training") or {}
        self.start = int(training.get("step", 0))
        if cfg.steps < self.start:
            raise ValueError(
                f"steps={cfg.steps} is below the checkpoint's step {self.start} "
                f"({str(self.checkpoint)!r}): pass steps>={self.start} to continue it, "
                "or resume=False to train afresh"
            )
        ckpt.load_weights(model, state, self.checkpoint, fix=resume_mod.RESUME_FIX)
        columns = columns_for(data.x_val is not None, bool(cfg.val_iwae))
        self.build(restore(training.get("columns", []), training.get("rows", []), columns))
        self.options_now = options | self._schedule_description()
        self._restore_state(training, mode)
        self.last_saved = self.start or None

    def _schedule_description(self) -> dict:
        """The schedule's class and settings, and (for a factory) a digest of its rates;
        a checkpoint without the digest (an earlier version) is compared on the rest."""
        cfg = self.config
        out = {"lr_schedule": optim.describe_schedule(cfg.schedule, self.scheduler)}
        digest = optim.rate_digest(cfg.schedule, self.opt)
        return out | ({"lr_trajectory": digest} if digest is not None else {})

    def _restore_state(self, training: dict, mode) -> None:
        """Optimiser, schedule and best-so-far from the checkpoint, where they still apply."""
        saved_options = resume_mod.upgrade(dict(training.get("options") or {}))
        if "seed" in training:
            saved_options.setdefault("seed", training["seed"])
        diff = self.diff = resume_mod.check(saved_options, self.options_now, resume=mode,
                                            checkpoint=self.checkpoint)
        if training.get("auxiliary") is not None:  # their settings are in the spec, unchanged
            for opt, state in zip(self.aux.optimizers, training["auxiliary"]):
                resume_mod.load_state(opt, state, self.checkpoint, "auxiliary")
        if training.get("optimizer") is not None and resume_mod.keeps_state(diff, "optimizer"):
            resume_mod.load_state(self.opt, training["optimizer"], self.checkpoint, "optimizer")
            for group in self.opt.param_groups:  # an overridden lr replaces the saved one
                if "lr" in diff:
                    group["lr"] = group["initial_lr"] = self.config.lr
        schedule = training.get("scheduler")
        if self.scheduler is not None and schedule is not None and resume_mod.keeps_state(diff, "schedule"):
            resume_mod.load_state(self.scheduler, schedule, self.checkpoint, "scheduler")
        if training.get("best") is not None and "validation" not in diff:
            self.best = Best(**training["best"])
        if diff and self.config.stopping is not None and "early_stopping" in diff:
            self.best.stopped = None

    # -- the loop ---------------------------------------------------------------------
    def step(self, step: int) -> None:
        """One optimisation step (0-based ``step``); its loss is read back later."""
        cfg, data = self.config, self.data
        lr = self.opt.param_groups[0]["lr"]
        loss = self._batch_loss(data.x, data.y, step, cfg.seed)
        if data.x_unlabelled is not None:  # M2: a batch of unlabelled rows beside it
            loss = loss + self._batch_loss(data.x_unlabelled, None, step, cfg.seed ^ 1)
        value = loss.item() if self.sync_every == 1 else loss.detach()
        if self.sync_every == 1 and not math.isfinite(value):  # stop before the bad update
            self.history.pending.append(self._pending(step, lr, math.nan, value, math.nan))
            self.read_back()  # raises
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip_norm is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.clip_norm)
        elif step % GRAD_NORM_EVERY == 0:
            grad_norm = readback.grad_norm(self.params)
        else:
            grad_norm = math.nan
        self.opt.step()
        self.aux.step(self.model, data.x, data.y, step=step, batch_size=cfg.batch_size,
                      seed=cfg.seed, source=data.source, binarize=cfg.binarize,
                      device=self.data_device)
        if self.scheduler is not None and not self.plateau:
            self.scheduler.step()
        self.history.pending.append(
            self._pending(step, lr, time.perf_counter() - self.t0, value, grad_norm))

    def _batch_loss(self, x, y, step: int, seed: int) -> torch.Tensor:
        """Minus the bound on step ``step``'s batch of ``x``, scaled to all of ``x``'s rows."""
        cfg = self.config
        idx = batches.batch_indices(len(x), cfg.batch_size, step, seed, self.data_device)
        yb = None if y is None else y[idx]
        xb = batches.batch(x, idx, self.data.source, cfg.binarize, self.model)
        return self.bound(self.model, xb, yb, idx, len(x), step)

    def _pending(self, step, lr, elapsed, value, grad_norm) -> Pending:
        weight = self.kl_weight * bounds.warmup_factor(step, self.config.kl_warmup)
        return Pending(step, lr, elapsed, value, grad_norm, weight)

    def read_back(self) -> None:
        """Turn the pending steps into rows: the non-finite check, validation at a
        validation step, callbacks and the progress bar."""
        cfg, history = self.config, self.history
        for p, loss, grad_norm in history.read_back():
            if not math.isfinite(loss):
                self.bar.close()
                raise non_finite(loss, p.step, cfg.lr, self.checkpoint, self.last_saved)
            row = history.row(p, loss, grad_norm)
            if self.data.x_val is not None and (p.step + 1) % cfg.eval_every == 0:
                row |= self.validate(p.step + 1)
            history.rows.append(row)
            cbs.dispatch(self.callbacks, "on_step", row)
            self.running = loss if self.running is None else 0.95 * self.running + 0.05 * loss
            self.bar.update(1)
            if cfg.progress and (p.step % 10 == 0 or p.step + 1 == cfg.steps):
                self.bar.set_postfix(loss=f"{self.running:.2f}")

    def validate(self, step: int) -> dict:
        """Validation bounds at ``step``; keep-best, early stopping, plateau schedules."""
        cfg, data = self.config, self.data
        metrics = validation_metrics(self.model, data.x_val, data.y_val, val_iwae=cfg.val_iwae,
                                     seed=cfg.seed)
        self.best.update(metrics[cfg.monitor], step, self.model, cfg.stopping)
        if self.plateau:
            self.scheduler.step(-metrics[cfg.monitor])
        if self.checkpoint is not None and self.best.step == step:
            ckpt.write_atomic(ckpt.payload(self.model), best_path(self.checkpoint))
        cbs.dispatch(self.callbacks, "on_validation", step, metrics, self.model)
        return metrics

    def save(self, step: int) -> None:
        """Write the checkpoint at ``step`` (not when a parameter is non-finite)."""
        if self.checkpoint is None:
            return
        if not all(torch.isfinite(p).all() for p in self.params):
            return
        overrides = list((self.saved_training or {}).get("overrides", []))
        if self.diff:
            overrides.append({"step": self.start, "changed": resume_mod.plain(self.diff)})
        training = {
            "step": step,
            "optimizer": self.opt.state_dict(),
            "auxiliary": self.aux.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            **self.history.saved(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "seed": self.config.seed,
            "options": resume_mod.plain(self.options_now),
            "best": asdict(self.best) if self.data.x_val is not None else None,
            "overrides": overrides,
        }
        ckpt.write_atomic(ckpt.payload(self.model, training), self.checkpoint)
        self.last_saved = step
        cbs.dispatch(self.callbacks, "on_checkpoint", step, self.checkpoint)

    def _loop(self) -> None:
        cfg = self.config
        every, validating = self.sync_every, self.data.x_val is not None
        for step in range(self.start, cfg.steps):
            if self.best.stopped is not None:
                break
            try:
                self.step(step)
            except BaseException:
                self.read_back()  # a non-finite loss pending from an earlier step comes first
                raise
            done = step + 1
            saving = done % cfg.checkpoint_every == 0
            if saving or done % every == 0 or (validating and done % cfg.eval_every == 0):
                self.read_back()
            if saving or self.best.stopped is not None:
                self.save(done)
        self.read_back()
        done = self.history.rows[-1]["step"] if self.history.rows else 0
        if done > self.start:
            self.save(done)

    def run(self) -> FitResult:
        """Train to ``config.steps`` and return the model and its history."""
        cfg, model = self.config, self.model
        model.train()
        self.running = None
        self.bar = progress_bar(cfg.steps, self.start, cfg.progress)
        try:
            cbs.dispatch(self.callbacks, "on_start", model, self.history.rows)
            self.t0 = time.perf_counter() - (self.history.rows[-1]["time"]
                                             if self.history.rows else 0.0)
            with _seed.seeded(cfg.seed), pyro.validation_enabled(cfg.validate):
                self._restore_rng()
                self._loop()
            return self._finish()
        finally:
            self.bar.close()
            cbs.close(self.callbacks)

    def _restore_rng(self) -> None:
        training = self.saved_training or {}
        if training.get("rng") is not None:
            torch.set_rng_state(training["rng"])
            if training.get("cuda_rng") is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(training["cuda_rng"])

    def _finish(self) -> FitResult:
        self.bar.close()
        self.model.eval()
        best = self.best
        if self.config.stopping is not None and best.stopped is not None and best.state is not None:
            self.model.load_state_dict(best.state)
        history = self.history.frame()
        result = FitResult(model=self.model, history=history, best_step=best.step,
                           stopped_at=best.stopped, data_dim=self.model.data_dim)
        result.warn_if_diverged(self.config.lr)
        cbs.dispatch(self.callbacks, "on_end", history)
        return result


def progress_bar(total: int, initial: int, enabled: bool):
    """A tqdm bar; ``disable=None`` is tqdm's own rule: shown on a terminal and in a
    notebook, nothing written when the output is a log file or a pipe."""
    return tqdm(total=total, initial=initial, disable=None if enabled else True, desc="fit",
                unit="step")


def _split_labelled(model, x, y):
    """``(x_labelled, y_labelled, x_unlabelled, identity)`` for labels with missing
    entries (``-1``): each part checked by the model, ``None`` for an empty part."""
    rows = _checks.data_tensor("x", x)
    labels = _checks.label_tensor("y", y, n=len(rows))
    if bool((labels < -1).any()):
        raise ValueError(f"y contains label {int(labels[labels < -1][0])}: pass class labels, "
                         "and -1 for a row whose label is missing")
    identity = resume_mod.fingerprint(rows, labels)
    known = labels >= 0
    if not bool(known.any()):
        return (*model.check_data(rows, None), None, identity)
    x_l, y_l = model.check_data(rows[known], labels[known])
    x_u = model.check_data(rows[~known])[0] if bool((~known).any()) else None
    return x_l, y_l, x_u, identity


def check_step_budget(config: FitConfig, num_rows: int, data_dim: int) -> None:
    """Refuse a bound whose particles for one batch could not fit the memory budget
    (K draws of a batch of ``[rows, data_dim]`` values and their log-densities), before
    the first step: Pyro would otherwise loop or allocate without end."""
    spec = config.bound_spec
    name = "num_particles" if spec["kind"] == "elbo" else f"bound {spec['kind']!r} num_samples"
    rows = min(config.batch_size or num_rows, num_rows)
    _checks.within_budget(
        f"{name}={spec['num_samples']} for batches of {rows} row(s) of {data_dim} values",
        importance.pass_bytes(spec["num_samples"], rows, max(1, data_dim), 4),
        _checks.memory_budget(), f"pass a smaller {name.split()[-1]} or batch_size", option=False)


def validation_metrics(model, x_val, y_val, *, val_iwae, seed) -> dict:
    """``val_elbo`` (one particle) and, with ``val_iwae = K``, the IWAE bound of order K."""
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


def best_path(checkpoint) -> Path:
    path = Path(checkpoint)
    return path.with_name(f"{path.stem}.best{path.suffix or '.pt'}")


def non_finite(value, step, lr, checkpoint, last_saved) -> TrainingError:
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

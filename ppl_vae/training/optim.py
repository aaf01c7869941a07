"""Optimisers, learning-rate schedules and early stopping for :func:`ppl_vae.fit`.

Each option is parsed once into a plain, comparable description (stored in
checkpoints so that a resumed run can check it is continuing the same run) and
turned into torch objects by a small builder.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import warnings

import numpy as np
import pyro.optim.clipped_adam
import torch
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from ppl_vae import _checks

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    # Pyro's ClippedAdam clamps every gradient element to ±clip_norm before the
    # Adam update and decays the rate by ``lrd`` per step.
    "clipped_adam": pyro.optim.clipped_adam.ClippedAdam,
}
NAMED_SCHEDULES = ("iwae_paper",)


def _class_name(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def parse_optimizer(optimizer) -> dict:
    """``"adam"``, ``"adamw"``, ``"clipped_adam"``, ``{"kind": ..., **options}`` or a
    ``torch.optim.Optimizer`` subclass -> ``{"kind": ..., "options": {...}}``."""
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return {"kind": _class_name(optimizer), "options": {}, "cls": optimizer}
    table = {"kind": optimizer} if isinstance(optimizer, str) else optimizer
    if not isinstance(table, dict) or "kind" not in table:
        raise ValueError(
            f"optimizer={optimizer!r} is invalid: pass one of {', '.join(OPTIMIZERS)}, "
            "a dict such as {'kind': 'adamw', 'weight_decay': 0.01}, or a torch.optim.Optimizer class"
        )
    kind = _checks.one_of("optimizer", table["kind"], tuple(OPTIMIZERS))
    options = {k: _plain_option(v) for k, v in table.items() if k != "kind"}
    for key, value in options.items():
        if key == "lr":
            raise ValueError("optimizer={'lr': ...} is invalid: pass the rate as fit(lr=...)")
        if isinstance(value, bool) or not isinstance(value, (numbers.Real, list, tuple)):
            raise ValueError(
                f"optimizer option {key}={value!r} is invalid: pass a number (or a tuple of numbers)"
            )
    return {"kind": kind, "options": options, "cls": OPTIMIZERS[kind]}


def _plain_option(value):
    """A numpy number as a float/int and a numpy array as a tuple (as torch wants betas)."""
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else tuple(value.tolist())
    return value.item() if isinstance(value, np.generic) else value


def describe_optimizer(parsed: dict) -> dict:
    """The comparable part of a parsed optimizer (no class objects)."""
    return {"kind": parsed["kind"], "options": dict(parsed["options"])}


def build_optimizer(parsed: dict, params, lr: float) -> torch.optim.Optimizer:
    try:
        return parsed["cls"](params, lr=lr, **parsed["options"])
    except TypeError as err:
        raise ValueError(
            f"optimizer={describe_optimizer(parsed)!r} is invalid: {err}; "
            f"pass only options that {parsed['cls'].__name__} accepts"
        ) from None


class StagedRate:
    """Multiplier of the base rate that drops by ``factor`` at each of ``boundaries`` (in steps).

    A callable object (not a lambda) so that ``LambdaLR`` can store it in its state.
    """

    def __init__(self, boundaries: list[int], factor: float):
        self.boundaries = [int(b) for b in boundaries]
        self.factor = float(factor)

    def __call__(self, step: int) -> float:
        stage = sum(step >= b for b in self.boundaries)
        return self.factor**stage


def iwae_paper_boundaries(num_data: int, batch_size: int) -> list[int]:
    """Steps at which the IWAE paper's protocol lowers the rate.

    Burda, Grosse & Salakhutdinov (2016), sec. 5: 3^i passes over the data at
    rate lr·10^(-i/7) for i = 0..7 (3,280 passes in all). A pass is
    ``num_data // batch_size`` steps here (the minibatch order drops the last
    partial batch), at least one.

    Examples
    --------
    >>> from ppl_vae.training import iwae_paper_boundaries
    >>> iwae_paper_boundaries(num_data=100, batch_size=50)  # a pass is 2 steps
    [2, 8, 26, 80, 242, 728, 2186]
    """
    per_pass = max(1, num_data // batch_size) if batch_size < num_data else 1
    passes = 0
    bounds = []
    for i in range(7):  # the rate drops after stages 0..6; stage 7 runs to the end
        passes += 3**i
        bounds.append(passes * per_pass)
    return bounds


def _scheduler_factory(table: dict):
    """``{"kind": "StepLR", "step_size": 1000, "gamma": 0.5}`` -> a factory (spec/TOML form)."""
    options = {k: v for k, v in table.items() if k != "kind"}
    cls = getattr(torch.optim.lr_scheduler, str(table["kind"]), None)
    if not (isinstance(cls, type) and hasattr(cls, "state_dict")):
        raise ValueError(
            f"lr_schedule kind={table['kind']!r} is not a torch.optim.lr_scheduler class: pass "
            "e.g. {'kind': 'StepLR', 'step_size': 1000, 'gamma': 0.5} or 'iwae_paper'"
        )
    if cls.get_lr is LRScheduler.get_lr and not issubclass(cls, ReduceLROnPlateau):
        raise ValueError(
            f"lr_schedule kind={table['kind']!r} is an abstract base class (it defines no "
            "rate): pass a concrete schedule such as 'StepLR', 'ExponentialLR' or 'OneCycleLR'"
        )

    def factory(optimizer):
        return cls(optimizer, **options)

    return factory


def parse_schedule(lr_schedule) -> object:
    """``None``, a named schedule, a ``{"kind": <torch scheduler class>, ...}`` table, or
    a callable ``optimizer -> scheduler``."""
    if lr_schedule is None or callable(lr_schedule):
        return lr_schedule
    if isinstance(lr_schedule, str):
        return _checks.one_of("lr_schedule", lr_schedule, NAMED_SCHEDULES)
    if isinstance(lr_schedule, dict) and "kind" in lr_schedule:
        if lr_schedule["kind"] in NAMED_SCHEDULES and len(lr_schedule) == 1:
            return lr_schedule["kind"]
        return _scheduler_factory(lr_schedule)
    raise ValueError(
        f"lr_schedule={lr_schedule!r} is invalid: pass None, 'iwae_paper', or a factory "
        "such as lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1000, gamma=0.5)"
    )


def build_schedule(lr_schedule, optimizer, *, num_data: int, batch_size: int,
                   steps: int | None = None, validation: bool | None = None):
    """The scheduler on ``optimizer``, checked before training starts.

    A schedule that cannot be built, whose settings are invalid (a step size below 1,
    a decay factor that is not a finite number > 0, a ``OneCycleLR`` shorter than
    ``steps``, ...), that fails or gives a non-finite or negative rate within its first
    ``min(steps, DRY_STEPS)`` steps (one step without ``steps``; run on a stand-in
    optimizer), or a ``ReduceLROnPlateau``
    without validation data (``validation=False``: it would never step) is a
    ValueError naming ``lr_schedule``. ``steps=None`` skips the length check of a
    ``OneCycleLR``, ``validation=None`` the plateau check.
    """
    if lr_schedule is None:
        return None
    if lr_schedule == "iwae_paper":
        rate = StagedRate(iwae_paper_boundaries(num_data, batch_size), 10 ** (-1 / 7))
        return torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    scheduler = _built(lr_schedule, optimizer)
    check_scheduler(scheduler, steps=steps, validation=validation)
    _dry_run(lr_schedule, optimizer, steps)
    return scheduler


def _built(lr_schedule, optimizer):
    """``lr_schedule(optimizer)``; any error it raises (user code) as a ValueError."""
    try:
        scheduler = lr_schedule(optimizer)
    except Exception as err:  # a factory is user code: any failure is bad input
        raise ValueError(
            f"lr_schedule could not build a scheduler ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:160] if str(err) else ''}): fix its settings, e.g. "
            "{'kind': 'StepLR', 'step_size': 1000, 'gamma': 0.5}"
        ) from err
    if not hasattr(scheduler, "step") or not hasattr(scheduler, "state_dict"):
        raise ValueError(
            f"lr_schedule returned {type(scheduler).__name__}, not a scheduler: the factory "
            "must return a torch.optim.lr_scheduler object built on the optimizer it is given"
        )
    return scheduler


#: Steps of the stand-in run of a schedule before training (cheap: no model involved);
#: one step when the run's length is not given (a schedule may be exactly that short).
DRY_STEPS = 100
#: Settings of torch's schedulers that must be integers >= 1 / finite numbers > 0.
_COUNTS = ("step_size", "T_max", "T_0", "total_steps", "step_size_up", "total_iters")
_POSITIVE = ("gamma", "factor", "T_mult")


def check_scheduler(scheduler, *, steps: int | None = None, validation: bool | None = None):
    """Refuse a built scheduler whose settings torch accepts but cannot run (see
    :func:`build_schedule`); a ValueError names ``lr_schedule``, the setting and the fix."""
    name = f"lr_schedule {type(scheduler).__name__}"
    for key in _COUNTS:
        if key in vars(scheduler):
            _checks.positive_int(f"{name} {key}", vars(scheduler)[key])
    for key in _POSITIVE:
        if key in vars(scheduler):
            _checks.positive_float(f"{name} {key}", vars(scheduler)[key])
    total = vars(scheduler).get("total_steps")
    if isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR) and steps and total < steps:
        raise ValueError(
            f"{name} total_steps={total} is shorter than the run (steps={steps}): torch "
            f"would stop at step {total + 1}; pass total_steps={steps} (or more)"
        )
    if is_plateau(scheduler) and validation is False:
        raise ValueError(
            f"{name} steps on the validation bound, but no validation data are given, so the "
            "rate would never change: pass x_val= (ppl-vae train: --val-fraction) or use "
            "another schedule"
        )


def _dry_run(lr_schedule, optimizer, steps: int | None) -> None:
    """Build the schedule again on a one-parameter copy of ``optimizer`` and step it."""
    stand_in = type(optimizer)([torch.zeros(1, requires_grad=True)], **optimizer.defaults)
    scheduler = lr_schedule(stand_in)
    if is_plateau(scheduler):
        return
    step = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for step in range(1, min(steps, DRY_STEPS) + 1 if steps else 2):
                stand_in.step()
                scheduler.step()
                rate = stand_in.param_groups[0]["lr"]
                if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not (
                    math.isfinite(rate) and rate >= 0
                ):
                    raise ValueError(f"the rate became {rate!r}")
    except Exception as err:  # the schedule's own code failed: bad input
        raise ValueError(
            f"lr_schedule fails at step {step} ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:160] if str(err) else ''}): fix its settings (a step "
            "size >= 1, a decay factor that is a finite number > 0)"
        ) from err


#: Steps of the stand-in run whose rates identify a schedule factory on resume (the
#: same for every run, so that continuing to more steps compares alike; ~0.1 s).
TRAJECTORY_STEPS = 10_000


def rate_digest(lr_schedule, optimizer) -> str | None:
    """A digest of the rates a schedule factory gives over its first
    ``TRAJECTORY_STEPS`` steps (on a stand-in optimizer; a schedule that stops earlier,
    like a short ``OneCycleLR``, up to where it stops): two factories of one class whose
    code differs (a changed ``LambdaLR`` lambda) differ here, which their settings do
    not show. ``None`` for no schedule, a named one, or ``ReduceLROnPlateau`` (its
    rates follow the validation values)."""
    if lr_schedule is None or isinstance(lr_schedule, str):
        return None
    stand_in = type(optimizer)([torch.zeros(1, requires_grad=True)], **optimizer.defaults)
    scheduler = lr_schedule(stand_in)
    if is_plateau(scheduler):
        return None
    digest = hashlib.blake2b(digest_size=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in range(TRAJECTORY_STEPS):
            digest.update(repr([g["lr"] for g in stand_in.param_groups]).encode())
            try:
                scheduler.step()
            except Exception:  # noqa: BLE001 - the schedule ends here; its end is part of it
                digest.update(f"end at {step}".encode())
                break
    return digest.hexdigest()


def describe_schedule(lr_schedule, scheduler) -> object:
    """A comparable description: the name, or the scheduler class and its scalar settings."""
    if lr_schedule is None or isinstance(lr_schedule, str):
        return lr_schedule
    state = scheduler.state_dict()
    settings = {
        k: v
        for k, v in sorted(state.items())
        if not k.startswith("_") and k not in ("last_epoch", "verbose", "best", "num_bad_epochs",
                                               "cooldown_counter", "last_epoch")
        and isinstance(v, (bool, int, float, str))
    }
    return {"class": _class_name(type(scheduler)), **settings}


def is_plateau(scheduler) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def parse_early_stopping(early_stopping, *, monitor: str) -> dict | None:
    """``None``, a patience (int, in validations) or ``{"patience", "min_delta"}``."""
    if early_stopping is None:
        return None
    table = (
        {"patience": early_stopping}
        if isinstance(early_stopping, numbers.Integral) and not isinstance(early_stopping, bool)
        else early_stopping
    )
    if not isinstance(table, dict) or set(table) - {"patience", "min_delta"}:
        raise ValueError(
            f"early_stopping={early_stopping!r} is invalid: pass None, a patience such as 5 "
            "(validations without improvement), or {'patience': 5, 'min_delta': 0.1}"
        )
    patience = _checks.positive_int("early_stopping patience", table.get("patience", 5))
    min_delta = table.get("min_delta", 0.0)
    if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real) or not (
        math.isfinite(min_delta) and min_delta >= 0
    ):
        raise ValueError(f"early_stopping min_delta={min_delta!r} is invalid: pass a number >= 0")
    return {"patience": patience, "min_delta": float(min_delta), "monitor": monitor}

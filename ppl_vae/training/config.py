"""``FitConfig``: every option of :func:`ppl_vae.fit`, its default and its check, once.

The keyword arguments of ``pv.fit``, a spec's or a file's ``[training]`` table,
the ``ppl-vae train`` flags and the resume check all read this one dataclass, so a
default lives in one place (with its reason beside it) and a bad value is refused
by one check, naming the option. ``FitConfig.from_dict`` / ``to_dict`` round-trip
through JSON and TOML (a callable schedule or an optimizer class cannot be written
to a file: ``to_dict`` refuses it).

>>> from ppl_vae.training import FitConfig
>>> cfg = FitConfig(steps=500, bound={"kind": "iwae", "num_samples": 5})
>>> cfg.bound_spec["num_samples"], cfg.steps
(5, 500)
>>> FitConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

from ppl_vae import _checks
from ppl_vae.training import bounds, optim


@dataclass(frozen=True)
class FitConfig:
    """The options of a training run (``pv.fit(model, x, **options)``).

    Examples
    --------
    >>> from ppl_vae.training import FitConfig
    >>> cfg = FitConfig(steps=500, bound={"kind": "iwae", "num_samples": 5})
    >>> cfg.bound_spec["kind"], cfg.bound_spec["num_samples"], cfg.steps
    ('iwae', 5, 500)
    >>> FitConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> cfg.replace(lr=1e-4).lr
    0.0001
    """

    steps: int = 2000  # optimiser steps in total, a resumed run included
    batch_size: int = 128  # a usual VAE minibatch; the whole set when it has fewer rows
    lr: float = 1e-3  # Adam's rate in Kingma & Welling (2014)'s and most VAE code
    seed: int = 0  # minibatch order and every draw: same seed, same history
    bound: object = "elbo"  # "elbo" | "iwae" | "renyi" | {"kind", "num_samples", "alpha"}
    num_particles: int = 1  # ELBO particles per step (Trace_ELBO's num_particles)
    optimizer: object = "adam"  # name, {"kind": name, **options} or a torch optimizer class
    lr_schedule: object = None  # None, "iwae_paper", a table, or lambda opt: scheduler
    clip_norm: float | None = None  # global gradient-norm clipping; None: off
    kl_warmup: int = 0  # steps of linear KL warm-up from 0 to the model's weight
    eval_every: int = 200  # steps between validations (with x_val)
    val_iwae: int | None = None  # K of the validation IWAE bound; None: ELBO only
    early_stopping: object = None  # patience, or {"patience", "min_delta"}
    checkpoint_every: int = 200  # steps between checkpoints (with checkpoint=)
    sync_every: int | None = None  # host reads of the loss; None: 1 on CPU, 50 on a GPU
    binarize: object = False  # False, or "dynamic": a fresh Bernoulli draw per batch
    validate: bool = False  # Pyro's distribution argument checks (cost ~half a small step)
    progress: bool = True  # a tqdm bar on a terminal or notebook (none written into logs)

    bound_spec: dict = field(init=False, repr=False, compare=False)
    optimizer_spec: dict = field(init=False, repr=False, compare=False)
    schedule: object = field(init=False, repr=False, compare=False)
    stopping: dict | None = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        set_ = object.__setattr__.__get__(self)
        set_("steps", _checks.positive_int("steps", self.steps))
        set_("batch_size", _checks.positive_int("batch_size", self.batch_size))
        set_("lr", _checks.positive_float("lr", self.lr))
        set_("seed", _checks.seed("seed", self.seed))
        set_("num_particles", _checks.positive_int("num_particles", self.num_particles))
        set_("checkpoint_every", _checks.positive_int("checkpoint_every", self.checkpoint_every))
        set_("eval_every", _checks.positive_int("eval_every", self.eval_every))
        set_("kl_warmup", _checks.positive_int(
            "kl_warmup", self.kl_warmup, minimum=0, fix="pass a number of steps >= 0 (0: no warm-up)"))
        if self.clip_norm is not None:
            set_("clip_norm", _checks.positive_float(
                "clip_norm", self.clip_norm, fix="pass a number > 0 or None"))
        if self.val_iwae is not None:
            set_("val_iwae", _checks.positive_int(
                "val_iwae", self.val_iwae, fix="pass a number of samples K >= 1 or None"))
        if self.sync_every is not None:
            set_("sync_every", _checks.positive_int(
                "sync_every", self.sync_every, fix="pass a number of steps >= 1 or None (automatic)"))
        if self.binarize not in (False, "dynamic"):
            raise ValueError(f"binarize={self.binarize!r} is invalid: pass False or 'dynamic'")
        set_("validate", _checks.flag("validate", self.validate))
        set_("progress", _checks.flag("progress", self.progress))
        set_("bound_spec", bounds.parse(self.bound, self.num_particles))
        set_("optimizer_spec", optim.parse_optimizer(self.optimizer))
        set_("schedule", optim.parse_schedule(self.lr_schedule))
        set_("stopping", optim.parse_early_stopping(self.early_stopping, monitor=self.monitor))

    @property
    def monitor(self) -> str:
        """The validation value that keep-best, early stopping and plateau schedules follow."""
        return "val_iwae" if self.val_iwae else "val_elbo"

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.init)

    @classmethod
    def from_dict(cls, table: dict, *, where: str = "") -> FitConfig:
        """A config from a mapping (a ``[training]`` table); unknown keys are refused.

        ``objective`` is accepted for ``bound`` with a ``DeprecationWarning``.
        """
        if not isinstance(table, dict):
            raise ValueError(f"{where or 'training options'}={table!r} is invalid: pass a table")
        return cls(**normalize(table, where=where))

    def to_dict(self) -> dict:
        """The options as plain data (JSON/TOML); a callable or a class is refused."""
        out = {k: getattr(self, k) for k in self.option_names()}
        for key, value in out.items():
            if callable(value) and not isinstance(value, str):
                raise ValueError(
                    f"{key}={value!r} cannot be written to a file: pass a named value "
                    "(e.g. lr_schedule='iwae_paper' or a {'kind': ...} table)"
                )
        return out

    def replace(self, **changes) -> FitConfig:
        return dataclasses.replace(self, **changes)


def normalize(options: dict, *, where: str = "") -> dict:
    """``options`` with the deprecated ``objective`` key renamed to ``bound``; unknown
    keys refused with the list of valid ones."""
    options = dict(options)
    if "objective" in options:
        if "bound" in options:
            raise ValueError(
                f"{where}objective and {where}bound are both given: keep bound "
                "(objective is its former name)"
            )
        warnings.warn(
            "the training option 'objective' is now called 'bound' (the estimator that is "
            "optimised); 'objective' is accepted for one release",
            DeprecationWarning, stacklevel=4,
        )
        options["bound"] = options.pop("objective")
    unknown = sorted(set(options) - set(FitConfig.option_names()))
    if unknown:
        raise ValueError(
            f"unknown training option {where}{unknown[0]!r}; valid: {', '.join(FitConfig.option_names())}"
        )
    return options

"""The history of a run: one row per step, built from values read back in batches.

A step leaves its loss and gradient norm on the device (:class:`Pending`); every
``sync_every`` steps (and before a validation, a checkpoint and the end) they are
read back in one transfer and turned into rows, in order. A row has every column
(NaN where a step has no value), so the returned history, the rows callbacks see
and ``history.csv`` agree, resumed or not.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import pandas as pd
import torch

from ppl_vae.training import readback

BASE_COLUMNS = ("step", "loss", "time", "lr", "grad_norm", "kl_weight", "diverged")
#: Column names of earlier versions, renamed when their rows are restored.
RENAMED = {"beta": "kl_weight"}
# A loss is flagged as diverged when it exceeds its first value by more than
# GROWTH·max(|first|, 1) nats, or exceeds ABSURD nats per data dimension.
GROWTH = 10.0
ABSURD = 1e6


class DivergenceWarning(RuntimeWarning):
    """The training loss grew by an order of magnitude or more over its start.

    Examples
    --------
    >>> import warnings
    >>> from ppl_vae import DivergenceWarning
    >>> issubclass(DivergenceWarning, RuntimeWarning)
    True
    >>> with warnings.catch_warnings():                    # e.g. make divergence an error
    ...     warnings.simplefilter("error", DivergenceWarning)
    """


class Pending(NamedTuple):
    """A step taken but not yet read back: its loss and gradient norm may be device tensors."""

    step: int  # 0-based
    lr: float
    time: float
    loss: object
    grad_norm: object
    kl_weight: float


def is_diverged(value: float, first: float, data_dim: int) -> bool:
    return value - first > GROWTH * max(abs(first), 1.0) or abs(value) > ABSURD * data_dim


def columns_for(validation: bool, val_iwae: bool) -> list[str]:
    return [*BASE_COLUMNS, *(["val_elbo"] if validation else []),
            *(["val_iwae"] if validation and val_iwae else [])]


def restore(saved_columns, saved_rows, columns) -> list[dict]:
    """Rows of a checkpoint re-keyed to ``columns`` (old names renamed, missing ones NaN)."""
    names = [RENAMED.get(c, c) for c in saved_columns]
    rows = [dict(zip(names, r)) for r in saved_rows]
    return [{c: r.get(c, math.nan) for c in columns} for r in rows]


@dataclass
class FitResult:
    """What :func:`ppl_vae.fit` returns: the trained ``model`` and its ``history``.

    ``history`` has one row per step: ``step``, ``loss`` (minus the training bound,
    nats per datapoint), ``time`` (seconds since the start), ``lr``, ``grad_norm``
    (before clipping; every step with ``clip_norm``, else steps 1, 11, 21, ... and
    NaN between), ``kl_weight`` (the KL weight in force, warm-up included),
    ``diverged`` (that step's loss is far above its start), and with ``x_val`` the
    validation bounds ``val_elbo`` (``val_iwae``) on validation steps (NaN
    elsewhere). ``best_step`` is the step of the best validation value,
    ``stopped_at`` the step where early stopping ended the run (or None).

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=6, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((16, 6), 0.5))
    >>> result = pv.fit(model, x, steps=4, progress=False)
    >>> result.model is model, len(result.history), result.diverged
    (True, 4, False)
    >>> bool(result.final_loss == result.history["loss"].iloc[-1])
    True
    """

    model: torch.nn.Module
    history: pd.DataFrame
    best_step: int | None = None
    stopped_at: int | None = None
    data_dim: int = 1  # D of a datapoint: the scale of the 'absurd loss' divergence test

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
        return is_diverged(self.final_loss, first, self.data_dim)

    def warn_if_diverged(self, lr: float) -> None:
        if self.diverged:
            warnings.warn(
                f"training diverged: the final loss {self.final_loss:.4g} nats per datapoint is "
                f"far above its start ({self.history['loss'].iloc[0]:.4g}); try a lower lr "
                f"(lr={lr:g} now), clip_norm=, or a smaller beta",
                DivergenceWarning,
                stacklevel=4,
            )


class History:
    """Rows of the run so far, and the steps waiting to be read back."""

    def __init__(self, columns: list[str], rows: list[dict], *, num_data: int, data_dim: int):
        self.columns = columns
        self.rows = rows
        self.pending: list[Pending] = []
        self.num_data = num_data
        self.data_dim = data_dim
        self.first = rows[0]["loss"] if rows else None

    def read_back(self) -> list[tuple[Pending, float, float]]:
        """The pending steps with their loss per datapoint and gradient norm as floats,
        in one transfer; the pending list is emptied."""
        pending, self.pending = self.pending, []
        values = readback.host_values([v for p in pending for v in (p.loss, p.grad_norm)])
        return [(p, loss / self.num_data, g) for p, loss, g in zip(pending, values[::2], values[1::2])]

    def row(self, p: Pending, loss: float, grad_norm: float) -> dict:
        """The history row of a step read back (not yet appended)."""
        if self.first is None:
            self.first = loss
        row = dict.fromkeys(self.columns, math.nan)
        row |= {"step": p.step + 1, "loss": loss, "time": p.time, "lr": p.lr,
                "grad_norm": grad_norm, "kl_weight": p.kl_weight,
                "diverged": is_diverged(loss, self.first, self.data_dim)}
        return row

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=self.columns)

    def saved(self) -> dict:
        """The rows as a checkpoint stores them."""
        return {"columns": list(self.columns),
                "rows": [[r.get(c, math.nan) for c in self.columns] for r in self.rows]}

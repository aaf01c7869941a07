"""Callbacks of :func:`ppl_vae.fit` and the built-in loggers (CSV, TensorBoard).

A callback is any object with some of these methods (missing ones are skipped):

* ``on_start(model, history)`` — before the first step; ``history`` holds the rows
  restored from a checkpoint (empty for a fresh run);
* ``on_step(row)`` — after every optimiser step; ``row`` is that step's history row;
* ``on_validation(step, metrics, model)`` — after each validation (``metrics``:
  ``{"val_elbo": ..., "val_iwae": ...}``);
* ``on_checkpoint(step, path)`` — after a checkpoint is written;
* ``on_end(history)`` — after training, with the whole history DataFrame;
* ``on_close()`` — once when training ends, normally or by an exception (a
  callback's own included): release files and flush what was written.

Callbacks observe; they never change the random stream or the numbers of a run:
each receives its own copy of a row, the metrics or the history (writing to it
changes nothing in the run's history), and runs with every random generator put
back afterwards (:func:`ppl_vae._seed.isolated`), so a callback that draws
numbers leaves the run's losses as they were.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Protocol, runtime_checkable

import pandas as pd
import torch

from ppl_vae import _checks, _seed

METHODS = ("on_start", "on_step", "on_validation", "on_checkpoint", "on_end", "on_close")


@runtime_checkable
class Callback(Protocol):
    """What :func:`ppl_vae.fit` calls; every method is optional.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=6, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((16, 6), 0.5))
    >>> class Losses:                                      # only the methods it needs
    ...     def __init__(self):
    ...         self.steps = []
    ...     def on_step(self, row):
    ...         self.steps.append(row["step"])
    >>> seen = Losses()
    >>> _ = pv.fit(model, x, steps=3, batch_size=8, progress=False, callbacks=[seen])
    >>> seen.steps
    [1, 2, 3]
    """

    def on_step(self, row: dict) -> None: ...


def check(callbacks) -> list:
    if any(getattr(callbacks, m, None) is not None for m in METHODS):
        callbacks = [callbacks]  # one callback passed on its own
    if isinstance(callbacks, (str, bytes)):
        raise ValueError(f"callbacks={callbacks!r} is text: pass a list of callback objects "
                         "(such as pv.training.CSVLogger(path))")
    try:
        callbacks = list(callbacks or ())
    except TypeError:
        raise ValueError(
            f"callbacks={callbacks!r} is invalid: pass a list of callback objects"
        ) from None
    for cb in callbacks:
        if all(getattr(cb, m, None) is None for m in METHODS):
            raise ValueError(
                f"callbacks contains {cb!r}, which has none of the methods {', '.join(METHODS)}: "
                "pass objects such as pv.training.CSVLogger(path)"
            )
        for m in METHODS:
            attr = getattr(cb, m, None)
            if attr is not None and not callable(attr):
                raise ValueError(
                    f"callbacks contains {type(cb).__name__} whose {m} is "
                    f"{type(attr).__name__}, not a method: define {m} as a method or remove it"
                )
    return callbacks


def check_log_dir(log_dir):
    """``log_dir`` as a Path that is, or can become, a folder; a ValueError otherwise."""
    return _checks.folder_path("log_dir", log_dir,
                               fix="pass a folder path for history.csv and TensorBoard events")


def dispatch(callbacks, method: str, *args) -> None:
    """Call ``method`` of every callback that has it, each on its own copy of ``args``,
    with the random generators restored afterwards."""
    fns = [fn for fn in (getattr(cb, method, None) for cb in callbacks) if fn is not None]
    if not fns:
        return
    with _seed.isolated():
        for fn in fns:
            fn(*(_copy(a) for a in args))


def close(callbacks) -> None:
    """``on_close`` of every callback, all of them even when one raises (the first error
    is raised after the others have closed)."""
    error = None
    for cb in callbacks:
        fn = getattr(cb, "on_close", None)
        if fn is None:
            continue
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the rest closed
            error = error or exc
    if error is not None:
        raise error


def _copy(arg):
    if isinstance(arg, dict):
        return dict(arg)
    if isinstance(arg, list):
        return [dict(r) if isinstance(r, dict) else r for r in arg]
    if isinstance(arg, pd.DataFrame):
        return arg.copy()
    return arg


def _cell(value):
    """A CSV cell: missing and NaN values are empty, so fresh and resumed files agree."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


class CSVLogger:
    """Stream the history to ``path`` as CSV, one row per step (flushed every ``flush_every``).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import torch
    >>> import ppl_vae as pv
    >>> from ppl_vae.training import CSVLogger
    >>> model = pv.build("vae", data_dim=6, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((16, 6), 0.5))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "history.csv"
    ...     _ = pv.fit(model, x, steps=3, progress=False, callbacks=[CSVLogger(path)])
    ...     lines = path.read_text().splitlines()
    >>> len(lines), lines[0].split(",")[:2]                # header + one row per step
    (4, ['step', 'loss'])
    """

    def __init__(self, path, *, flush_every: int = 50):
        self.path = Path(path)
        self.flush_every = flush_every
        self._file = None
        self._writer = None
        self._columns = None
        self._pending = 0

    def on_start(self, model, history) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Held open across steps; rewritten from the start, so a resumed run repeats its rows.
        self._file = open(self.path, "w", newline="")  # noqa: SIM115
        self._writer = None
        for row in history:
            self._write(row)
        self._file.flush()

    def _write(self, row: dict) -> None:
        if self._writer is None:
            self._columns = list(row)
            self._writer = csv.writer(self._file)
            self._writer.writerow(self._columns)
        self._writer.writerow([_cell(row.get(c)) for c in self._columns])

    def on_step(self, row: dict) -> None:
        self._write(row)
        self._pending += 1
        if self._pending >= self.flush_every:
            self._file.flush()
            self._pending = 0

    def on_close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class TensorBoardLogger:
    """Scalars (loss, lr, grad_norm, β, validation bounds) and a grid of model samples.

    Needs the optional extra ``ppl_vae[tensorboard]``. Samples (``num_samples``,
    decoder means from the prior, drawn with ``seed`` under a forked RNG) are
    logged at each validation and at the end when the model has an image shape.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import torch
    >>> import ppl_vae as pv
    >>> from ppl_vae.training import TensorBoardLogger
    >>> model = pv.build("vae", data_dim=6, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((16, 6), 0.5))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = pv.fit(model, x, steps=2, progress=False, callbacks=[TensorBoardLogger(tmp)])
    ...     events = [p.name for p in Path(tmp).rglob("events.out.tfevents.*")]
    >>> len(events) >= 1
    True
    """

    def __init__(self, log_dir, *, image_shape=None, num_samples: int = 16, seed: int = 0):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ValueError(
                "TensorBoard logging needs the tensorboard package: pip install 'ppl_vae[tensorboard]'"
            ) from None
        self._writer_cls = SummaryWriter
        self.log_dir = Path(log_dir)
        self.image_shape = image_shape
        self.num_samples = num_samples
        self.seed = seed
        self.writer = None
        self._model = None
        self._last = 0

    def on_start(self, model, history) -> None:
        self.writer = self._writer_cls(log_dir=str(self.log_dir))
        self._model = model

    def on_step(self, row: dict) -> None:
        step = int(row["step"])
        self._last = step
        for key in ("loss", "lr", "grad_norm", "kl_weight"):
            value = row.get(key)
            if value is not None and math.isfinite(value):
                self.writer.add_scalar(f"train/{key}", value, step)

    def on_validation(self, step: int, metrics: dict, model) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(f"validation/{key}", value, step)
        self._samples(step)

    def _samples(self, step: int) -> None:
        shape = self.image_shape
        if shape is None or not hasattr(self._model, "sample"):
            return
        was_training = self._model.training
        self._model.eval()
        with torch.no_grad():
            x = self._model.sample(self.num_samples, seed=self.seed)  # [S, D]
        self._model.train(was_training)
        images = x.detach().float().clamp(0, 1).reshape(-1, 1, *shape)  # [S, 1, H, W]
        self.writer.add_images("samples", images, step)

    def on_end(self, history) -> None:
        if self.writer is not None:
            self._samples(self._last)

    def on_close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None


def loggers(log_dir, model, seed) -> list:
    """The loggers ``pv.fit(log_dir=...)`` streams to: CSV always, TensorBoard when installed."""
    out = [CSVLogger(Path(log_dir) / "history.csv")]
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        warnings.warn(
            f"log_dir={str(log_dir)!r}: tensorboard is not installed, so only history.csv is "
            "written; pip install 'ppl_vae[tensorboard]' for TensorBoard logs",
            stacklevel=3,
        )
        return out
    shape = getattr(model, "image_shape", None)
    if shape is None:
        side = math.isqrt(int(getattr(model, "data_dim", 0) or 0))
        shape = (side, side) if side and side * side == getattr(model, "data_dim", 0) else None
    out.append(TensorBoardLogger(log_dir, image_shape=shape, seed=seed))
    return out

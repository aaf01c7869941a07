"""Input validation shared by every public function.

Each check raises a :class:`ValueError` whose message names the argument, the
offending value and the fix, so users never have to read a traceback.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def positive_int(name: str, value, *, minimum: int = 1, fix: str | None = None) -> int:
    """Return ``value`` as an int, or raise if it is not an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        hint = fix or f"pass an integer >= {minimum}"
        raise ValueError(f"{name}={_short(value)} is invalid: {hint}")
    return int(value)


def positive_float(name: str, value, *, fix: str | None = None) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number ``> 0``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not np.isfinite(value)
        or value <= 0
    ):
        hint = fix or "pass a finite number > 0"
        raise ValueError(f"{name}={_short(value)} is invalid: {hint}")
    return float(value)


def fraction(name: str, value) -> float:
    """Return ``value`` as a float in the open interval (0, 1), or raise."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not np.isfinite(value)
        or not 0.0 < value < 1.0
    ):
        raise ValueError(
            f"{name}={_short(value)} is invalid: pass a number strictly between 0 and 1"
        )
    return float(value)


def seed(name: str, value) -> int:
    """Return ``value`` as a non-negative int seed, or raise."""
    return positive_int(name, value, minimum=0, fix="pass a non-negative integer seed")


def flag(name: str, value) -> bool:
    """Return ``value`` if it is a bool, or raise (ValueError: it is bad user input)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name}={_short(value)} is invalid: pass True or False")
    return value


def one_of(name: str, value, valid) -> str:
    """Raise unless ``value`` is one of ``valid``."""
    if value not in valid:
        raise ValueError(
            f"{name}={_short(value)} is not recognised; valid values: {', '.join(map(str, valid))}"
        )
    return value


def real_array(
    name: str,
    x,
    *,
    ndim: int | tuple[int, ...] | None = None,
    columns: bool = False,
    finite: bool = True,
    empty_ok: bool = False,
    dtype=np.float64,
    what: str = "values",
) -> np.ndarray:
    """``x`` (numpy array, torch tensor or nested list) as a real ``dtype`` numpy array.

    The one array check of the metrics, figures and datasets. ``columns=True``
    turns a 1-D array into one column ``[N, 1]`` and requires ``[N, K]``; ``ndim``
    lists the dimensions allowed otherwise. Raises a ValueError naming ``name``
    on None, a wrong shape, emptiness (unless ``empty_ok``), a non-real dtype and
    (with ``finite``) NaN or inf, giving the first bad row or index.
    """
    if x is None:
        raise ValueError(f"{name}=None is invalid: pass an array of {what}")
    if torch.is_tensor(x):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if columns:
        arr = arr[:, None] if arr.ndim == 1 else arr
        ndim = 2
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if allowed is not None and arr.ndim not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        layout = " [N, K]" if columns else ""
        raise ValueError(f"{name} has shape {arr.shape}: pass a {want} array{layout} of {what}")
    if arr.size == 0 and not empty_ok:
        raise ValueError(f"{name} is empty (shape {arr.shape}): pass at least one of the {what}")
    if not np.issubdtype(arr.dtype, np.number) and arr.dtype != np.bool_ or np.issubdtype(
        arr.dtype, np.complexfloating
    ):
        raise ValueError(f"{name} has dtype {arr.dtype}: pass real numbers")
    arr = np.asarray(arr, dtype=dtype)
    if finite and not np.isfinite(arr).all():
        bad = ~np.isfinite(arr)
        where = (
            f"row {int(np.nonzero(bad.reshape(len(arr), -1).any(1))[0][0])}"
            if arr.ndim > 1
            else f"index {int(np.nonzero(bad)[0][0])}"
        )
        raise ValueError(f"{name} contains NaN or inf (first at {where}): clean or drop them")
    return arr


def data_tensor(name: str, x, *, dim: int | None = None) -> torch.Tensor:
    """Convert ``x`` to a float32 ``[N, D]`` tensor and check it is usable as data.

    Raises on empty, non-finite or wrongly shaped data, and on a data dimension
    different from ``dim`` when given.
    """
    if x is None:
        raise ValueError(f"{name}=None is invalid: pass an array of shape [N, D]")
    t = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
    if t.ndim == 1 and dim is not None and t.numel() == dim:
        t = t.unsqueeze(0)
    if t.ndim != 2:
        raise ValueError(
            f"{name} has shape {tuple(t.shape)}: pass a 2-D array [N, D] "
            "(flatten images with x.reshape(len(x), -1))"
        )
    if t.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)}): pass at least one datapoint")
    t = t.to(torch.float32)
    if not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).any(dim=1).nonzero()[0, 0])
        raise ValueError(
            f"{name} contains NaN or inf (first in row {bad}): clean or drop those rows"
        )
    if dim is not None and t.shape[1] != dim:
        raise ValueError(
            f"{name} has data dimension {t.shape[1]} but the model expects {dim}: "
            f"build the model with data_dim={t.shape[1]} or pass matching data"
        )
    return t


def label_tensor(name: str, y, *, n: int, num_classes: int | None = None) -> torch.Tensor:
    """Convert labels to an int64 ``[n]`` tensor with values in ``[0, num_classes)``."""
    t = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y)
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(
            f"{name} has shape {tuple(t.shape)}: pass one integer label per datapoint, shape [{n}]"
        )
    if t.is_floating_point() and not torch.equal(t, t.round()):
        raise ValueError(f"{name} holds non-integer values: pass integer class labels")
    t = t.to(torch.int64)
    if num_classes is not None and (t.min() < 0 or t.max() >= num_classes):
        bad = int(t[(t < 0) | (t >= num_classes)][0])
        raise ValueError(
            f"{name} contains label {bad}, outside [0, {num_classes}): "
            f"relabel to 0..{num_classes - 1} or build with num_classes={int(t.max()) + 1}"
        )
    return t

"""Input validation shared by every public function.

Each check raises a :class:`ValueError` whose message names the argument, the
offending value and the fix, so users never have to read a traceback.
"""

from __future__ import annotations

import numbers
import os
import warnings
from pathlib import Path

import numpy as np
import torch

#: Environment variable that sets the default memory budget (bytes; suffixes K, M, G, T).
MEMORY_BUDGET_ENV = "PPL_VAE_MEMORY_BUDGET"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX
        return 8 * 2**30


def _parse_bytes(name: str, value) -> int:
    if isinstance(value, str):
        text = value.strip().upper().removesuffix("B").removesuffix("I")
        unit = text[-1:] if text[-1:] in _UNITS else ""
        try:
            number = float(text[: len(text) - len(unit)])
        except ValueError:
            number = float("nan")
        value = number * _UNITS[unit] if np.isfinite(number) else value
        if isinstance(value, float) and value.is_integer():
            value = int(value)
    return positive_int(name, value, fix="pass a number of bytes >= 1, e.g. 2000000000 or '2G'")


def memory_budget(value=None) -> int:
    """The most bytes one read array or one model may take.

    ``value`` (an int, or a string such as ``"2G"``) when given; else the
    environment variable ``PPL_VAE_MEMORY_BUDGET``; else half the physical memory.
    Loaders compare sizes claimed by file headers with it *before* allocating.
    """
    if value is not None:
        return _parse_bytes("memory_budget", value)
    env = os.environ.get(MEMORY_BUDGET_ENV)
    if env:
        return _parse_bytes(f"${MEMORY_BUDGET_ENV}", env)
    return _physical_memory() // 2


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def within_budget(what: str, nbytes: int, budget: int, fix: str, *, option: bool = True) -> None:
    """Raise a ValueError when ``nbytes`` (the size of ``what``) exceeds ``budget``.

    ``option``: the caller takes a ``memory_budget=`` argument (named in the fix).
    """
    if nbytes > budget:
        how = f"memory_budget= or ${MEMORY_BUDGET_ENV}" if option else f"${MEMORY_BUDGET_ENV}"
        raise ValueError(
            f"{what} would take {human_bytes(nbytes)}, more than the memory budget of "
            f"{human_bytes(budget)}: {fix} (or raise the budget with {how})"
        )


def rows_within_budget(name: str, n: int, width: int, *, copies: int = 3,
                       fix: str | None = None) -> None:
    """Refuse ``n`` generated rows of ``width`` values (``copies`` float64 arrays of
    ``[n, width]`` at once: latents, decoder output, sample) beyond the memory budget."""
    within_budget(f"{name}={n} rows of {width} values", copies * n * width * 8, memory_budget(),
                  fix or f"pass a smaller {name} (generate in batches)", option=False)


#: The deepest network a spec may ask for: deeper stacks take minutes to build and
#: their gradients vanish; no published model of this kind comes near it.
MAX_LAYERS = 256


def shallow(where: str, depth: int) -> None:
    """Refuse a network of more than ``MAX_LAYERS`` layers (checked before its widths)."""
    if depth > MAX_LAYERS:
        raise ValueError(
            f"{where} asks for {depth} layers, more than {MAX_LAYERS} (building them would "
            f"take minutes and their gradients vanish): use fewer layers"
        )


def network_within_budget(where: str, widths, *, stacks: int = 1, copies: int = 1) -> None:
    """Refuse a network before it is built whose dense weights (``stacks`` copies of the
    width chain ``widths``, each weight held in ``copies`` float32 tensors, e.g. 2 with
    an autoregressive mask) exceed the memory budget."""
    shallow(where, stacks * (len(widths) - 1))
    weights = sum((a + 1) * b for a, b in zip(widths, widths[1:])) * stacks * copies
    within_budget(f"{where}={widths[1:-1]} ({stacks} stack(s))", 4 * weights,
                  memory_budget(), "use fewer or narrower layers", option=False)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def scalar(value):
    """A 0-d numpy array or 0-d tensor of numbers as its Python number;
    anything else unchanged (numpy scalars already count as numbers)."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype != object:
        return value.item()
    if torch.is_tensor(value) and value.ndim == 0 and value.device.type != "meta":
        return value.item()
    return value


#: Largest seed accepted: torch, numpy and Python all take a signed 64-bit value.
MAX_SEED = 2**63 - 1


def positive_int(
    name: str, value, *, minimum: int = 1, maximum: int | None = None, fix: str | None = None
) -> int:
    """Return ``value`` as an int, or raise if it is not an integer in ``[minimum, maximum]``.

    Numpy integers and 0-d integer arrays count as integers."""
    value = scalar(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f" and <= {maximum}" if maximum is not None else ""
        hint = fix or f"pass an integer >= {minimum}{bound}"
        raise ValueError(f"{name}={_short(value)} is invalid: {hint}")
    return int(value)


def positive_float(name: str, value, *, fix: str | None = None) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number ``> 0``."""
    value = scalar(value)
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
    value = scalar(value)
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
    return positive_int(
        name, value, minimum=0, maximum=MAX_SEED,
        fix=f"pass an integer seed between 0 and 2**63 - 1 = {MAX_SEED}",
    )


def finite_number(name: str, value, *, minimum: float | None = None, fix: str | None = None) -> float:
    """Return ``value`` as a float, or raise if it is not a finite real (``>= minimum``)."""
    value = scalar(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not np.isfinite(float(value))
        or (minimum is not None and value < minimum)
    ):
        bound = f" >= {minimum:g}" if minimum is not None else ""
        hint = fix or f"pass a finite number{bound}"
        raise ValueError(f"{name}={_short(value)} is invalid: {hint}")
    return float(value)


def as_numpy(name: str, x, *, what: str = "values") -> np.ndarray:
    """``x`` (array, tensor or nested list) as a numpy array of real numbers.

    Ragged nested lists, strings, objects and complex numbers are a ValueError
    naming ``name`` (numpy's own errors name neither the argument nor the fix).
    """
    if isinstance(x, (str, bytes, bytearray)):
        raise ValueError(
            f"{name}={_short(x)} is text, not an array: pass an array of {what} (a named data "
            "set is loaded with pv.data.load(name), e.g. pv.data.load('digits').x_train)"
        )
    if torch.is_tensor(x):
        x = host_tensor(name, x).detach().cpu().numpy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.asarray(x)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{name} cannot be read as an array ({str(err).splitlines()[0][:120]}): pass a "
            f"rectangular array of {what} (every row the same length)"
        ) from None
    if arr.dtype == np.bool_:
        return arr
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(
            f"{name} has dtype {arr.dtype}: pass real numbers (not text, objects, ragged "
            "lists or complex values)"
        )
    return arr


def host_tensor(name: str, t: torch.Tensor) -> torch.Tensor:
    """``t`` itself, or a ValueError when it holds no values (``meta``) or complex numbers."""
    if t.device.type == "meta":
        raise ValueError(
            f"{name} is a tensor on the 'meta' device (a shape without values): pass a tensor "
            "that holds values, on 'cpu' or 'cuda'"
        )
    if t.is_complex():
        raise ValueError(f"{name} has dtype {t.dtype}: pass real numbers")
    return t


def flag(name: str, value) -> bool:
    """Return ``value`` if it is a bool (or a numpy bool), or raise (ValueError: it is bad
    user input; ``'no'``, 0 and 1 are refused, not read as true or false)."""
    value = scalar(value)
    if isinstance(value, np.bool_):
        value = bool(value)
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
    arr = as_numpy(name, x, what=what)
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
    if torch.is_tensor(x):
        t = host_tensor(name, x)
    else:
        t = torch.as_tensor(as_numpy(name, x, what="data values"))
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
    if torch.is_tensor(y):
        t = host_tensor(name, y)
    else:
        t = torch.as_tensor(as_numpy(name, y, what="integer labels"))
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(
            f"{name} has shape {tuple(t.shape)}: pass one integer label per datapoint, shape [{n}]"
        )
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf: pass integer class labels")
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


def folder_path(name: str, value, *, fix: str, inner: str | None = None) -> Path:
    """``value`` as a Path that is, or can become, a folder (with ``value/inner`` a folder
    too when ``inner`` is given); a ValueError naming ``name`` when it is not a path or a
    file stands where one of those folders must be.

    >>> folder_path("out", "results", fix="pass a folder", inner="trials").name
    'results'
    """
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ValueError(f"{name}={value!r} is invalid: {fix}, such as 'runs/vae'")
    path = Path(value)
    target = path / inner if inner else path
    for part in (target, *target.parents):
        if part.exists():
            if not part.is_dir():
                raise ValueError(
                    f"{name}={str(value)!r} is invalid: {str(part)!r} is a file, not a folder; {fix}"
                )
            break
    return path


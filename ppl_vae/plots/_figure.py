"""Shared plumbing for the figure functions: array conversion, validation, saving.

Figures are built with :class:`matplotlib.figure.Figure` and rendered through
``FigureCanvasAgg`` directly, so nothing here touches :mod:`matplotlib.pyplot`
or switches the global backend; an interactive session keeps its own backend
and the figures are never registered with pyplot (no ``plt.close`` needed).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ppl_vae._checks import one_of, positive_int, real_array  # noqa: F401  (re-exported)

#: Default resolution of saved figures; 150 dpi keeps 10 pt text crisp on screens.
DEFAULT_DPI = 150


def as_numpy(name: str, x, *, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``x`` (numpy array, torch tensor or nested list) as a float64 array.

    Raises a :class:`ValueError` naming ``name`` when ``x`` is None, empty or has
    a number of dimensions outside ``ndim``.
    """
    try:
        return real_array(name, x, ndim=ndim, finite=False)
    except (TypeError, ValueError) as err:
        if isinstance(err, ValueError) and str(err).startswith(name):
            raise
        raise ValueError(f"{name} could not be converted to a float array ({err})") from None


def check_image_shape(image_shape) -> tuple[int, int]:
    """Validate a grayscale ``(height, width)`` pair."""
    try:
        shape = tuple(int(s) for s in image_shape)
    except TypeError:
        shape = ()
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(
            f"image_shape={image_shape!r} is invalid: pass (height, width) of a grayscale "
            "image, e.g. image_shape=dataset.image_shape"
        )
    return shape


def as_images(name: str, images, image_shape, *, batch_dims: int = 1) -> np.ndarray:
    """Return ``images`` as ``[*batch, H, W]`` in [0, 1].

    ``images`` is either flat ``[*batch, D]`` with ``D = H * W`` or already
    ``[*batch, H, W]``. ``image_shape`` may be None only in the second case.
    Values are clipped to [0, 1] (decoder means of a Normal likelihood can
    stray outside); NaN or inf raise, since they mean an upstream bug.
    """
    arr = as_numpy(name, images, ndim=(batch_dims + 1, batch_dims + 2))
    if arr.ndim == batch_dims + 2:
        shape = arr.shape[-2:]
        if image_shape is not None and tuple(check_image_shape(image_shape)) != shape:
            raise ValueError(
                f"{name} has images of shape {shape} but image_shape={tuple(image_shape)}: "
                "drop image_shape or pass the matching one"
            )
    else:
        if image_shape is None:
            raise ValueError(
                f"image_shape is required for flat {name} of shape {arr.shape}: "
                "pass image_shape=(height, width), e.g. dataset.image_shape"
            )
        shape = check_image_shape(image_shape)
        if arr.shape[-1] != shape[0] * shape[1]:
            raise ValueError(
                f"{name} has {arr.shape[-1]} values per image but image_shape={shape} needs "
                f"{shape[0] * shape[1]}: pass the image_shape the data was flattened from "
                "(e.g. dataset.image_shape)"
            )
        arr = arr.reshape(*arr.shape[:-1], *shape)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf: plot finite pixel values only")
    return np.clip(arr, 0.0, 1.0)


def check_labels(name: str, labels, n: int) -> list[str] | None:
    """Return ``labels`` as a list of ``n`` strings, or None."""
    if labels is None:
        return None
    labels = [str(s) for s in labels]
    if len(labels) != n:
        raise ValueError(f"{name} has {len(labels)} entries but there are {n}: pass {n} labels")
    return labels


def new_figure(width: float, height: float, *, constrained: bool = True) -> Figure:
    """A pyplot-free figure of ``width`` x ``height`` inches with an Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained" if constrained else None)
    FigureCanvasAgg(fig)
    return fig


def set_title(fig: Figure, ax, title: str | None) -> None:
    """Put ``title`` on the single axes ``ax``, or above the whole figure when ``ax`` is None."""
    if title is None:
        return
    if ax is None:
        fig.suptitle(str(title), fontsize="large")
    else:
        ax.set_title(str(title), fontsize="large")


def save_figure(fig: Figure, path, *, dpi: int = DEFAULT_DPI) -> Figure:
    """Write ``fig`` to ``path`` (format from the extension, parent folders created)."""
    if path is None:
        raise ValueError("path=None is invalid: pass a file name such as 'out/figure.png'")
    path = Path(path)
    supported = fig.canvas.get_supported_filetypes()
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in supported:
        raise ValueError(
            f"path={str(path)!r} has extension {path.suffix or '(none)'!r}: "
            f"use one of .{', .'.join(sorted(supported))} (e.g. .png)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return fig


def label_width(labels, *, per_char: float = 0.075) -> float:
    """Rough width in inches of the longest label at the default 10 pt font."""
    if not labels:
        return 0.0
    return per_char * max(len(s) for s in labels) + 0.15


def auto_columns(n: int) -> int:
    """Images per row for ``n`` images: a near-square grid."""
    return max(1, math.ceil(math.sqrt(n)))


def require_columns(name: str, frame, columns) -> pd.DataFrame:
    """Return ``frame`` as a non-empty DataFrame holding ``columns``, or raise naming them."""
    if not isinstance(frame, pd.DataFrame):
        try:  # a dict of columns or a list of records is accepted as well
            frame = pd.DataFrame(frame)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a pandas DataFrame (or a dict of columns), "
                f"got {type(frame).__name__}"
            ) from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} lacks column(s) {missing}; it has {list(frame.columns)}: rename or add them"
        )
    if frame.empty:
        raise ValueError(f"{name} is empty: pass at least one row")
    return frame


def reference_lines(ax, lines: dict | None, *, vertical: bool = False, shade: str = "0.3") -> None:
    """Labelled reference lines ``{label: value}`` (horizontal, or vertical), each in its
    own dash style so they stay apart in grey."""
    draw = ax.axvline if vertical else ax.axhline
    for j, (name, value) in enumerate((lines or {}).items()):
        draw(float(value), color=shade, linestyle=("--", ":", "-.")[j % 3],
             linewidth=1.3 if vertical else 1.2, label=str(name))

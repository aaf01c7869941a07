"""Drawing of tiled image arrays: grayscale display, separator tint, labels, figure size.

Shared by :mod:`ppl_vae.plots.grids` and :mod:`ppl_vae.plots.traversals`.
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ppl_vae.plots import _figure

#: Colour of separator pixels (NaN in the tiled array).
SEPARATOR_COLOR = "#9db4cc"
_GRAY = colormaps["gray"].with_extremes(bad=SEPARATOR_COLOR)


def block_centers(count: int, size: int, pad: int) -> np.ndarray:
    """Pixel coordinate of the centre of each of ``count`` blocks of ``size`` pixels."""
    return pad + np.arange(count) * (size + pad) + (size - 1) / 2.0


def image_inches(image_shape) -> float:
    """Display size in inches of one image: larger images get more room, capped."""
    return float(np.clip(0.45 + 0.015 * max(image_shape), 0.5, 1.2))


def draw_tiled(
    ax,
    tiled: np.ndarray,
    *,
    image_shape,
    pad: int,
    ncol: int,
    nrows: int,
    row_labels=None,
    col_labels=None,
    highlight_cols=(),
) -> None:
    """Show a :func:`tile_images` array on ``ax`` with labels on block centres."""
    # Clipping here keeps tile_images a pure copy while the picture stays in [0, 1].
    shown = np.ma.masked_invalid(np.clip(tiled, 0.0, 1.0))
    ax.imshow(shown, cmap=_GRAY, vmin=0.0, vmax=1.0, interpolation="nearest")
    h, w = image_shape
    for side in ax.spines.values():
        side.set_visible(False)
    ax.tick_params(length=0, labelsize="medium")
    if col_labels is not None:
        ax.set_xticks(block_centers(ncol, w, pad), col_labels)
        ax.xaxis.tick_top()
    else:
        ax.set_xticks([])
    if row_labels is not None:
        ax.set_yticks(block_centers(nrows, h, pad), row_labels)
    else:
        ax.set_yticks([])
    for c in highlight_cols:
        left = c * (w + pad) - 0.5 + pad / 2.0
        ax.add_patch(
            Rectangle(
                (left, -0.5),
                w + pad,
                tiled.shape[0],
                fill=False,
                edgecolor="tab:orange",
                linewidth=2.0,
                clip_on=False,
            )
        )


def grid_figure(
    shape_px,
    image_shape,
    *,
    ncol: int,
    nrows: int,
    pad: int,
    row_labels=None,
    col_labels=None,
    title=None,
) -> Figure:
    """A figure sized so each image gets :func:`image_inches` and labels fit."""
    unit = image_inches(image_shape) / max(image_shape)  # inches per pixel
    width = shape_px[1] * unit
    height = shape_px[0] * unit
    scale = min(1.0, 14.0 / width, 14.0 / height)  # keep huge grids on one screen
    width, height = width * scale, height * scale
    width += _figure.label_width(row_labels) + 0.3
    height += (0.35 if col_labels is not None else 0.0) + (0.45 if title else 0.0) + 0.2
    return _figure.new_figure(max(width, 2.5), max(height, 1.5))


def tiled_figure(
    tiled: np.ndarray,
    image_shape,
    *,
    ncol: int,
    nrows: int,
    pad: int,
    row_labels=None,
    col_labels=None,
    title=None,
    highlight_cols=(),
    xlabel=None,
) -> Figure:
    """A figure showing a :func:`tile_images` array with its labels, title and x label."""
    fig = grid_figure(
        tiled.shape, image_shape, ncol=ncol, nrows=nrows, pad=pad,
        row_labels=row_labels, col_labels=col_labels, title=title,
    )
    ax = fig.add_subplot()
    draw_tiled(
        ax, tiled, image_shape=image_shape, pad=pad, ncol=ncol, nrows=nrows,
        row_labels=row_labels, col_labels=col_labels, highlight_cols=highlight_cols,
    )
    if xlabel:
        ax.set_xlabel(xlabel)
        ax.xaxis.set_label_position("top")
    _figure.set_title(fig, ax, title)
    return fig

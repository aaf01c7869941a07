"""Latent traversals and attribute resynthesis grids (lecture notes, Figs. 17.13-17.14).

Both take a ``[rows, columns, D]`` stack of decoded images, as returned by
``pv.infer.traverse`` (stacked over dimensions) and ``pv.infer.resynthesize``.
The column at value/scale 0 (the unmodified sample or reconstruction) is
outlined so the eye finds the starting point.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ppl_vae.plots import _figure
from ppl_vae.plots._draw import tiled_figure
from ppl_vae.plots.grids import tile_images


def _format_value(v: float) -> str:
    # Minus sign (U+2212) and explicit plus: columns read as offsets from the centre.
    return "0" if v == 0 else f"{v:+.3g}".replace("-", "\u2212")


def _zero_columns(values: np.ndarray) -> list[int]:
    return [int(i) for i in np.flatnonzero(np.isclose(values, 0.0))]


def traversal_grid(
    images,
    *,
    image_shape=None,
    path,
    row_labels=None,
    col_values=None,
    title: str | None = None,
    xlabel: str | None = "latent value",
    dpi: int = _figure.DEFAULT_DPI,
) -> Figure:
    """Save a traversal grid: one row per latent dimension, one column per value.

    Parameters
    ----------
    images : array-like or torch.Tensor
        ``[L, S, D]`` (or ``[L, S, H, W]``): row ``l`` decodes ``S`` values along
        latent dimension ``l``, e.g. ``torch.stack([pv.infer.traverse(m, z, d, v) for d in dims])``.
    image_shape : tuple of int, optional
        ``(H, W)``; required for flat images.
    path : str or pathlib.Path
    row_labels : sequence of str, optional
        One per row, e.g. ``"z3  KL=1.2 nats"``; default ``"z0", "z1", ...``.
    col_values : sequence of float, optional
        The ``S`` values (or offsets) decoded; shown as column labels and the
        column at 0 is outlined.
    title, xlabel : str, optional
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import ppl_vae as pv
    >>> images = np.random.default_rng(0).random((2, 5, 16))   # L=2 rows, S=5 values
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = pv.plots.traversal_grid(images, image_shape=(4, 4), col_values=[-2, -1, 0, 1, 2],
    ...                                   path=Path(tmp) / "traversal.png", dpi=40)
    ...     saved = (Path(tmp) / "traversal.png").is_file()
    >>> type(fig).__name__, saved
    ('Figure', True)
    """
    imgs = _figure.as_images("images", images, image_shape, batch_dims=2)  # [L, S, H, W]
    nrows, ncol, h, w = imgs.shape
    row_labels = _figure.check_labels("row_labels", row_labels, nrows) or [f"z{i}" for i in range(nrows)]
    col_labels, highlight = None, []
    if col_values is not None:
        values = _figure.as_numpy("col_values", col_values, ndim=1)
        if len(values) != ncol:
            raise ValueError(
                f"col_values has {len(values)} entries but images has {ncol} "
                f"columns (shape [L, S, D] with S={ncol}): pass {ncol} values"
            )
        col_labels = [_format_value(v) for v in values]
        highlight = _zero_columns(values)
    tiled = tile_images(imgs.reshape(nrows * ncol, h, w), nrow=ncol, pad=1)
    fig = tiled_figure(
        tiled, (h, w), ncol=ncol, nrows=nrows, pad=1, row_labels=row_labels,
        col_labels=col_labels, title=title, highlight_cols=highlight,
        xlabel=xlabel if col_labels is not None else None,
    )
    return _figure.save_figure(fig, path, dpi=dpi)


def resynthesis_grid(
    images,
    *,
    image_shape=None,
    path,
    scales,
    original=None,
    row_labels=None,
    title: str | None = None,
    xlabel: str | None = "scale of attribute vector",
    dpi: int = _figure.DEFAULT_DPI,
) -> Figure:
    """Save a resynthesis grid: each row moves one datapoint along an attribute vector.

    Parameters
    ----------
    images : array-like or torch.Tensor
        ``[N, S, D]`` (or ``[N, S, H, W]``), e.g. ``pv.infer.resynthesize(model, x, v, scales=...)``.
    image_shape : tuple of int, optional
    path : str or pathlib.Path
    scales : sequence of float
        The ``S`` multiples of the attribute vector, shown as column labels; scale 0
        (the plain reconstruction) is outlined.
    original : array-like, optional
        ``[N, D]`` inputs, drawn in an extra left column separated by a gap.
    row_labels : sequence of str, optional
    title, xlabel : str, optional
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import ppl_vae as pv
    >>> rng = np.random.default_rng(0)
    >>> images, x = rng.random((3, 4, 16)), rng.random((3, 16))   # N=3 rows, S=4 scales
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = pv.plots.resynthesis_grid(images, image_shape=(4, 4), scales=[0, 1, 2, 3],
    ...                                     original=x, path=Path(tmp) / "resynth.png", dpi=40)
    ...     saved = (Path(tmp) / "resynth.png").is_file()
    >>> type(fig).__name__, saved
    ('Figure', True)
    """
    imgs = _figure.as_images("images", images, image_shape, batch_dims=2)  # [N, S, H, W]
    n, s, h, w = imgs.shape
    scales = _figure.as_numpy("scales", scales, ndim=1)
    if len(scales) != s:
        raise ValueError(
            f"scales has {len(scales)} entries but images has {s} columns "
            f"(shape [N, S, D] with S={s}): pass the scales used to make images"
        )
    col_labels = [_format_value(v) for v in scales]
    highlight = _zero_columns(scales)
    if original is not None:
        orig = _figure.as_images("original", original, (h, w))
        if len(orig) != n:
            raise ValueError(
                f"original has {len(orig)} images but images has {n} rows: "
                "pass one original per row"
            )
        gap = np.full((n, 1, h, w), np.nan)  # a blank column sets the input apart
        imgs = np.concatenate([orig[:, None], gap, imgs], axis=1)
        col_labels = ["input", ""] + col_labels
        highlight = [c + 2 for c in highlight]
    ncol = imgs.shape[1]
    row_labels = _figure.check_labels("row_labels", row_labels, n)
    tiled = tile_images(imgs.reshape(n * ncol, h, w), nrow=ncol, pad=1)
    fig = tiled_figure(
        tiled, (h, w), ncol=ncol, nrows=n, pad=1, row_labels=row_labels,
        col_labels=col_labels, title=title, highlight_cols=highlight, xlabel=xlabel,
    )
    return _figure.save_figure(fig, path, dpi=dpi)

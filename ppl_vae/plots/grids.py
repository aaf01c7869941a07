"""Tiled image grids: prior samples, data, reconstructions, side-by-side comparisons.

:func:`tile_images` is the pure array composer (exactly testable); the figure
functions draw its output with ``imshow`` and put labels on block centres.
Separators are NaN pixels in the tiled array, drawn in a fixed tint so they
stay visible on both dark-background (digits) and light-background images.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from ppl_vae.plots import _figure
from ppl_vae.plots._draw import draw_tiled, image_inches, tiled_figure


def tile_images(
    images, image_shape=None, nrow: int | None = None, pad: int = 1, *, pad_value: float = np.nan
) -> np.ndarray:
    """Compose images into one 2-D array, row-major, with ``pad`` pixels between them.

    Parameters
    ----------
    images : array-like or torch.Tensor
        ``[N, D]`` flat images (``D = H * W``) or ``[N, H, W]``.
    image_shape : tuple of int, optional
        ``(H, W)``; required for flat images.
    nrow : int, optional
        Images per row (the torchvision convention). Default: ``ceil(sqrt(N))``.
    pad : int
        Separator width in pixels, also drawn around the border.
    pad_value : float
        Value of separator and empty-cell pixels; NaN (default) is drawn as a tint.

    Returns
    -------
    numpy.ndarray
        ``[rows * (H + pad) + pad, nrow * (W + pad) + pad]``; image ``i`` has its top-left
        pixel at ``(pad + (i // nrow) * (H + pad), pad + (i % nrow) * (W + pad))``.
        Pixel values are copied unchanged (no clipping).

    Examples
    --------
    >>> import numpy as np
    >>> from ppl_vae.plots import tile_images
    >>> grid = tile_images(np.ones((5, 4)), image_shape=(2, 2), nrow=3, pad=1)
    >>> grid.shape                                       # 2 rows x 3 columns of 2x2 images
    (7, 10)
    >>> int(np.isnan(grid).sum()), float(np.nansum(grid))  # pads and the empty cell are NaN
    (50, 20.0)
    """
    arr = _figure.as_numpy("images", images, ndim=(2, 3))
    if arr.ndim == 2:
        if image_shape is None:
            raise ValueError("image_shape is required for flat images [N, D]: pass (H, W)")
        h, w = _figure.check_image_shape(image_shape)
        if arr.shape[1] != h * w:
            raise ValueError(
                f"images has {arr.shape[1]} values per image but image_shape={(h, w)} needs "
                f"{h * w}: pass the image_shape the data was flattened from"
            )
        arr = arr.reshape(len(arr), h, w)
    n, h, w = arr.shape
    ncol = _figure.auto_columns(n) if nrow is None else _figure.positive_int("nrow", nrow)
    pad = _figure.positive_int("pad", pad, minimum=0)
    rows = math.ceil(n / ncol)
    out = np.full((rows * (h + pad) + pad, ncol * (w + pad) + pad), pad_value, dtype=np.float64)
    for i in range(n):
        top = pad + (i // ncol) * (h + pad)
        left = pad + (i % ncol) * (w + pad)
        out[top : top + h, left : left + w] = arr[i]
    return out


def image_grid(
    images,
    *,
    image_shape=None,
    path,
    nrow: int | None = None,
    pad: int = 1,
    title: str | None = None,
    row_labels=None,
    col_labels=None,
    dpi: int = _figure.DEFAULT_DPI,
) -> Figure:
    """Save a tiled grayscale grid of images (prior samples, noisy samples, data).

    Parameters
    ----------
    images : array-like or torch.Tensor
        ``[N, D]`` or ``[N, H, W]`` with values in [0, 1] (others are clipped).
    image_shape : tuple of int, optional
        ``(H, W)``; required for flat images.
    path : str or pathlib.Path
        Output file (``.png``; parent folders are created).
    nrow : int, optional
        Images per row; default ``ceil(sqrt(N))``.
    pad : int
        Separator width in pixels.
    title : str, optional
    row_labels, col_labels : sequence of str, optional
        One label per grid row / column.
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        The saved figure (not registered with pyplot, so nothing needs closing).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import ppl_vae as pv
    >>> images = np.random.default_rng(0).random((6, 16))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = pv.plots.image_grid(images, image_shape=(4, 4), path=Path(tmp) / "grid.png",
    ...                               nrow=3, dpi=40)
    ...     saved = (Path(tmp) / "grid.png").is_file()
    >>> type(fig).__name__, saved
    ('Figure', True)
    """
    imgs = _figure.as_images("images", images, image_shape)
    n, h, w = imgs.shape
    ncol = _figure.auto_columns(n) if nrow is None else _figure.positive_int("nrow", nrow)
    ncol = min(ncol, n)
    nrows = math.ceil(n / ncol)
    row_labels = _figure.check_labels("row_labels", row_labels, nrows)
    col_labels = _figure.check_labels("col_labels", col_labels, ncol)
    tiled = tile_images(imgs, nrow=ncol, pad=pad)
    fig = tiled_figure(
        tiled, (h, w), ncol=ncol, nrows=nrows, pad=pad,
        row_labels=row_labels, col_labels=col_labels, title=title,
    )
    return _figure.save_figure(fig, path, dpi=dpi)


def reconstruction_grid(
    originals,
    reconstructions,
    *,
    image_shape=None,
    path,
    ncol: int | None = None,
    title: str | None = "data and reconstructions",
    labels=("data", "recon."),
    dpi: int = _figure.DEFAULT_DPI,
) -> Figure:
    """Save originals and their reconstructions in alternating labelled rows.

    Parameters
    ----------
    originals, reconstructions : array-like or torch.Tensor
        ``[N, D]`` or ``[N, H, W]``, same length; reconstruction ``i`` sits below original ``i``.
    image_shape : tuple of int, optional
    path : str or pathlib.Path
    ncol : int, optional
        Images per row; default at most 10, balanced over the row pairs.
    title : str, optional
    labels : pair of str
        Row labels for original and reconstruction rows.
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
    >>> x = np.random.default_rng(0).random((4, 16))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = pv.plots.reconstruction_grid(x, 1 - x, image_shape=(4, 4),
    ...                                        path=Path(tmp) / "recon.png", dpi=40)
    ...     saved = (Path(tmp) / "recon.png").is_file()
    >>> type(fig).__name__, saved
    ('Figure', True)
    """
    x = _figure.as_images("originals", originals, image_shape)
    r = _figure.as_images("reconstructions", reconstructions, image_shape)
    if x.shape != r.shape:
        raise ValueError(
            f"originals has shape {x.shape} but reconstructions has "
            f"{r.shape}: pass one reconstruction per original"
        )
    n, h, w = x.shape
    if ncol is None:  # at most 10 per row, spread evenly over the row pairs
        ncol = math.ceil(n / math.ceil(n / 10))
    ncol = min(n, _figure.positive_int("ncol", ncol))
    chunks = math.ceil(n / ncol)
    blank = np.full((ncol * chunks - n, h, w), np.nan)
    xs = np.concatenate([x, blank]).reshape(chunks, ncol, h, w)
    rs = np.concatenate([r, blank]).reshape(chunks, ncol, h, w)
    stacked = np.stack([xs, rs], axis=1).reshape(-1, h, w)  # [chunks * 2 * ncol, H, W]
    first, second = (str(s) for s in labels)
    row_labels = [first, second] * chunks
    tiled = tile_images(stacked, nrow=ncol, pad=1)
    fig = tiled_figure(
        tiled, (h, w), ncol=ncol, nrows=2 * chunks, pad=1, row_labels=row_labels, title=title
    )
    return _figure.save_figure(fig, path, dpi=dpi)


def sample_comparison(
    grids: dict,
    *,
    image_shape=None,
    path,
    nrow: int | None = None,
    title: str | None = None,
    dpi: int = _figure.DEFAULT_DPI,
) -> Figure:
    """Save side-by-side tiled panels, e.g. prior vs aggregated-posterior samples vs data.

    Parameters
    ----------
    grids : dict of str to array-like
        Panel heading -> ``[N, D]`` or ``[N, H, W]`` images (N may differ per panel).
    image_shape : tuple of int, optional
    path : str or pathlib.Path
    nrow : int, optional
        Images per row in every panel; default ``ceil(sqrt(max N))``.
    title : str, optional
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
    >>> grids = {"prior": rng.random((4, 16)), "data": rng.random((6, 16))}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = pv.plots.sample_comparison(grids, image_shape=(4, 4),
    ...                                      path=Path(tmp) / "samples.png", dpi=40)
    ...     saved = (Path(tmp) / "samples.png").is_file()
    >>> type(fig).__name__, saved
    ('Figure', True)
    """
    if not isinstance(grids, dict) or not grids:
        raise ValueError(
            "grids must be a non-empty dict {heading: images}: "
            "e.g. {'prior': x_prior, 'data': x_data}"
        )
    panels = {str(k): _figure.as_images(f"grids[{k!r}]", v, image_shape) for k, v in grids.items()}
    shapes = {p.shape[1:] for p in panels.values()}
    if len(shapes) != 1:
        raise ValueError(
            f"grids hold images of different shapes {sorted(shapes)}: "
            "pass images of one shape in every panel"
        )
    ((h, w),) = shapes
    nmax = max(len(p) for p in panels.values())
    ncol = _figure.auto_columns(nmax) if nrow is None else _figure.positive_int("nrow", nrow)
    ncol = min(ncol, nmax)
    tiles = {k: tile_images(p, nrow=ncol, pad=1) for k, p in panels.items()}
    unit = image_inches((h, w)) / max(h, w)
    rows_px = max(t.shape[0] for t in tiles.values())
    width = sum(t.shape[1] for t in tiles.values()) * unit + 0.3 * len(tiles)
    scale = min(1.0, 16.0 / width)
    fig = _figure.new_figure(
        max(width * scale, 3.0), rows_px * unit * scale + 0.5 + (0.45 if title else 0.0)
    )
    axes = fig.subplots(1, len(tiles), squeeze=False)[0]
    for ax, (heading, tiled) in zip(axes, tiles.items()):
        n = len(panels[heading])
        draw_tiled(ax, tiled, image_shape=(h, w), pad=1, ncol=ncol, nrows=math.ceil(n / ncol))
        ax.set_title(heading, fontsize="large")
    _figure.set_title(fig, None, title)
    return _figure.save_figure(fig, path, dpi=dpi)

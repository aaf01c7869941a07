"""Scores against each other: per-trial scatter panels and a correlation heatmap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ppl_vae.plots import _figure


def metric_scatter(
    frame,
    *,
    path,
    x: str,
    metrics,
    hue: str | None = None,
    title: str | None = None,
    dpi: int = _figure.DEFAULT_DPI,
) -> Figure:
    """Save one scatter panel per metric: the metric (y) against column ``x``, a dot a row.

    Parameters
    ----------
    frame : pandas.DataFrame
        Wide rows, e.g. one per trial, with column ``x``, the ``metrics`` columns and,
        when given, ``hue``.
    path : str or pathlib.Path
    x : str
        The column on the horizontal axis of every panel (e.g. ``"elbo"``).
    metrics : sequence of str
        Columns drawn on the vertical axes, one panel each.
    hue : str, optional
        Column colouring the dots (e.g. the model family), with a legend.
    title : str, optional
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> import ppl_vae as pv
    >>> frame = pd.DataFrame({"elbo": [-90.0, -95.0, -99.0], "mig": [0.1, 0.2, 0.3],
    ...                       "family": ["vae", "beta_vae", "tcvae"]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = pv.plots.metric_scatter(frame, path=Path(tmp) / "s.png", x="elbo",
    ...                                   metrics=["mig"], hue="family", dpi=40)
    >>> type(fig).__name__
    'Figure'
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise ValueError("metrics=[] is invalid: pass one or more column names to plot")
    frame = _figure.require_columns("frame", frame, [x, *metrics, *([hue] if hue else [])])
    hues = list(pd.unique(frame[hue])) if hue else [None]
    ncols = min(len(metrics), 3)
    nrows = math.ceil(len(metrics) / ncols)
    fig = _figure.new_figure(ncols * 3.4 + (1.4 if hue else 0.0),
                             nrows * 3.0 + (0.4 if title else 0.0))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics):
        for j, h in enumerate(hues):
            part = frame if h is None else frame[frame[hue] == h]
            ax.plot(part[x], part[metric], "o", color=f"C{j % 10}", alpha=0.75, markersize=4,
                    label=None if h is None else str(h))
        ax.set_xlabel(x)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    if hue:
        fig.legend(*axes[0].get_legend_handles_labels(), title=hue, loc="outside right upper",
                   frameon=False)
    _figure.set_title(fig, None, title)
    return _figure.save_figure(fig, path, dpi=dpi)


def correlation_heatmap(
    matrix,
    *,
    path,
    label: str = "Spearman ρ",
    title: str | None = None,
    dpi: int = _figure.DEFAULT_DPI,
) -> Figure:
    """Save a square correlation matrix as a heatmap in [-1, 1], each cell printed.

    Parameters
    ----------
    matrix : pandas.DataFrame
        Square, with the same labels on the index and the columns; NaN cells (an
        undefined correlation) are left blank.
    path : str or pathlib.Path
    label : str
        The colour bar's label.
    title : str, optional
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> import ppl_vae as pv
    >>> m = pd.DataFrame([[1.0, 0.5], [0.5, 1.0]], index=["mig", "sap"], columns=["mig", "sap"])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = pv.plots.correlation_heatmap(m, path=Path(tmp) / "h.png", dpi=40)
    >>> type(fig).__name__
    'Figure'
    """
    if not isinstance(matrix, pd.DataFrame) or matrix.empty:
        raise ValueError(f"matrix={type(matrix).__name__} is invalid: pass a non-empty square "
                         "DataFrame of correlations (labels on index and columns)")
    if list(matrix.index) != list(matrix.columns):
        raise ValueError(f"matrix has index {list(matrix.index)} and columns "
                         f"{list(matrix.columns)}: pass a square matrix with the same labels")
    values = matrix.to_numpy(dtype=float)
    n = len(matrix)
    side = 1.2 + 0.75 * n + _figure.label_width([str(i) for i in matrix.index])
    fig = _figure.new_figure(side + 1.0, side + (0.4 if title else 0.0))
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu_r", vmin=-1.0, vmax=1.0)
    labels = [str(i) for i in matrix.index]
    ax.set_xticks(range(n), labels, rotation=40, ha="right")
    ax.set_yticks(range(n), labels)
    for i in range(n):
        for j in range(n):
            if np.isfinite(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if abs(values[i, j]) > 0.6 else "black")
    fig.colorbar(image, ax=ax, label=label, shrink=0.8)
    _figure.set_title(fig, ax, title)
    return _figure.save_figure(fig, path, dpi=dpi)

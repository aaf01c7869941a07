"""Summaries across runs: grouped bars with error bars, means with intervals, overlaid
histograms."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ppl_vae.plots import _figure

_ERRORS = ("se", "sd", "ci95", None)


def _spread(values: pd.Series, error: str | None) -> float:
    v = values.to_numpy(dtype=float)
    if error is None or len(v) < 2:
        return 0.0
    sd = float(np.std(v, ddof=1))
    return {"sd": sd, "se": sd / math.sqrt(len(v)), "ci95": 1.96 * sd / math.sqrt(len(v))}[error]


def metric_bars(
    frame,
    *,
    path,
    x: str = "model",
    value: str = "value",
    panel: str | None = "metric",
    hue: str | None = None,
    error: str | None = "se",
    show_points: bool = True,
    title: str | None = None,
    dpi: int = _figure.DEFAULT_DPI,
) -> Figure:
    """Save bar charts of group means with error bars, one panel per metric.

    Parameters
    ----------
    frame : pandas.DataFrame
        Tidy rows (e.g. one per model x metric x seed) with columns ``x``, ``value``
        and, when given, ``panel`` and ``hue``.
    path : str or pathlib.Path
    x : str
        Column whose values label the bars (e.g. models).
    value : str
        Column with the numbers.
    panel : str or None
        Column splitting the figure into panels with their own y-scale (metrics on
        different scales, e.g. MIG and AUROC); None for a single panel.
    hue : str, optional
        Column for grouped bars within each x position (e.g. beta).
    error : {"se", "sd", "ci95", None}
        Error bar: standard error, standard deviation, 95 % normal interval, or none.
    show_points : bool
        Overlay the individual values (seeds) as small dots.
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
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"model": ["vae", "vae", "tcvae", "tcvae"],
    ...                       "metric": ["mig"] * 4, "value": [0.10, 0.12, 0.30, 0.34]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = pv.plots.metric_bars(frame, path=Path(tmp) / "bars.png", dpi=40)
    ...     saved = (Path(tmp) / "bars.png").is_file()
    >>> type(fig).__name__, saved
    ('Figure', True)
    """
    _figure.one_of("error", error, _ERRORS)
    cols = [c for c in (x, value, panel, hue) if c is not None]
    frame = _figure.require_columns("frame", frame, cols)
    xs = list(pd.unique(frame[x]))
    hues = list(pd.unique(frame[hue])) if hue else [None]
    panels = list(pd.unique(frame[panel])) if panel else [None]
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    width = max(2.2, 0.45 * len(xs) * len(hues) + 1.2)
    fig = _figure.new_figure(ncols * width + (1.2 if hue else 0.0), nrows * 3.2 + (0.4 if title else 0))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    bar_w = 0.8 / len(hues)
    rng = np.random.default_rng(0)  # jitter of the dots only; fixed so figures are stable
    for ax, p in zip(axes, panels):
        sub = frame if p is None else frame[frame[panel] == p]
        for j, h in enumerate(hues):
            part = sub if h is None else sub[sub[hue] == h]
            offs = (j - (len(hues) - 1) / 2) * bar_w
            for i, xv in enumerate(xs):
                vals = part.loc[part[x] == xv, value]
                if vals.empty:
                    continue
                ax.bar(
                    i + offs,
                    vals.mean(),
                    bar_w * 0.9,
                    yerr=_spread(vals, error) or None,
                    color=f"C{j}",
                    alpha=0.8,
                    capsize=3,
                    ecolor="0.2",
                    label=str(h) if (h is not None and i == 0) else None,
                )
                if show_points and len(vals) > 1:
                    jit = rng.uniform(-0.2, 0.2, len(vals)) * bar_w
                    ax.plot(i + offs + jit, vals, ".", color="0.15", markersize=4)
        ax.set_xticks(
            range(len(xs)),
            [str(v) for v in xs],
            rotation=30 if max(len(str(v)) for v in xs) > 6 else 0,
            ha="right" if max(len(str(v)) for v in xs) > 6 else "center",
        )
        if p is not None:
            ax.set_title(str(p))
        ax.set_ylabel(value)
        ax.grid(axis="y", alpha=0.3)
        ax.axhline(0.0, color="0.3", linewidth=0.8)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if hue:
        axes[0].figure.legend(
            *axes[0].get_legend_handles_labels(),
            title=hue,
            loc="outside right center",
            frameon=False,
        )
    bar_note = {"se": "± 1 s.e.", "sd": "± 1 s.d.", "ci95": "95 % interval", None: ""}[error]
    caption = f"{title}  ({bar_note})" if title and bar_note else title
    _figure.set_title(fig, None, caption)
    return _figure.save_figure(fig, path, dpi=dpi)


def histogram_comparison(
    values: dict,
    *,
    path,
    xlabel: str,
    bins: int = 40,
    vlines: dict | None = None,
    density: bool = True,
    title: str | None = None,
    dpi: int = _figure.DEFAULT_DPI,
) -> Figure:
    """Save overlaid histograms on shared bins (e.g. OOD scores in vs out of domain).

    Parameters
    ----------
    values : dict of str to array-like
        Legend label -> 1-D values. Non-finite values are dropped and counted in the legend.
    path : str or pathlib.Path
    xlabel : str
    bins : int
        Number of shared bins spanning all finite values.
    vlines : dict of str to float, optional
        Vertical reference lines, e.g. ``{"k-hat = 0.7": 0.7}``.
    density : bool
        Normalise each histogram so sets of different size compare.
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
    >>> values = {"in domain": np.linspace(0.0, 1.0, 50), "out of domain": np.linspace(0.5, 2.0, 50)}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = pv.plots.histogram_comparison(values, path=Path(tmp) / "scores.png",
    ...                                         xlabel="score", bins=10, dpi=40)
    ...     saved = (Path(tmp) / "scores.png").is_file()
    >>> type(fig).__name__, saved
    ('Figure', True)
    """
    if not isinstance(values, dict) or not values:
        raise ValueError(
            "values must be a non-empty dict {label: 1-D array}: "
            "e.g. {'in-domain': s_in, 'out-of-domain': s_out}"
        )
    arrays = {str(k): _figure.as_numpy(f"values[{k!r}]", v, ndim=1).ravel() for k, v in values.items()}
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays.values()])
    if finite.size == 0:
        raise ValueError("values holds no finite number: nothing to draw")
    edges = np.histogram_bin_edges(finite, bins=_figure.positive_int("bins", bins))
    fig = _figure.new_figure(6.4, 4.0)
    ax = fig.add_subplot()
    for i, (name, a) in enumerate(arrays.items()):
        ok = np.isfinite(a)
        label = f"{name} (n={int(ok.sum())}" + (
            f", {int((~ok).sum())} non-finite dropped)" if (~ok).any() else ")"
        )
        ax.hist(
            a[ok], bins=edges, density=density, histtype="stepfilled", alpha=0.35, color=f"C{i}"
        )
        ax.hist(
            a[ok],
            bins=edges,
            density=density,
            histtype="step",
            linewidth=1.5,
            color=f"C{i}",
            label=label,
        )
    _figure.reference_lines(ax, vlines, vertical=True, shade="0.2")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density" if density else "count")
    ax.grid(alpha=0.3)
    ax.set_ylim(0.0, ax.get_ylim()[1] * 1.35)  # headroom so the legend sits above the bars
    ax.legend(frameon=False, loc="upper right")
    _figure.set_title(fig, ax, title)
    return _figure.save_figure(fig, path, dpi=dpi)


def interval_panels(
    summary,
    *,
    path,
    x: str = "config",
    panel: str = "metric",
    interval: tuple[str, str, str] = ("mean", "ci_low", "ci_high"),
    points=None,
    title: str | None = None,
    dpi: int = _figure.DEFAULT_DPI,
) -> Figure:
    """Save one panel per ``panel`` value of means with their intervals, and the single
    values (seeds) behind them as grey dots: a study's default figure.

    Parameters
    ----------
    summary : pandas.DataFrame
        One row per ``x`` × ``panel`` with the columns named by ``interval`` (mean, low,
        high); a missing bound (NaN, e.g. one seed) draws the mean alone. The ``x``
        values are shown in the order of their first appearance.
    path : str or pathlib.Path
    x, panel : str
        Columns labelling the positions and splitting the panels.
    interval : (str, str, str)
        Columns of the mean and of the interval's low and high ends.
    points : pandas.DataFrame, optional
        Single values (columns ``x``, ``panel``, ``value``) drawn behind the means.
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
    >>> summary = pd.DataFrame({"config": ["K=1", "K=5"], "metric": ["test_iwae"] * 2,
    ...                         "mean": [-98.0, -95.5], "ci_low": [-99.0, -96.1],
    ...                         "ci_high": [-97.2, -95.0]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = pv.plots.interval_panels(summary, path=Path(tmp) / "s.png", dpi=40)
    >>> [ax.get_title() for ax in fig.axes]
    ['test_iwae']
    """
    mean, low, high = interval
    summary = _figure.require_columns("summary", summary, [x, panel, mean, low, high])
    order = list(pd.unique(summary[x]))
    position = {label: i for i, label in enumerate(order)}
    panels = list(pd.unique(summary[panel]))
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    width = max(4.0, 0.6 * len(order) + 2.0)
    # rotated tick labels take height in proportion to their length
    longest = max(len(str(label)) for label in order)
    rotate = len(order) > 3 or longest * len(order) > 50  # labels that would run together
    height = 3.6 + (0.06 * longest if rotate else 0.0)
    fig = _figure.new_figure(width * ncols, height * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, name in zip(axes, panels):
        part = summary[summary[panel] == name].set_index(x).reindex(order)
        m = part[mean].to_numpy(float)
        lo = np.where(np.isnan(part[low].to_numpy(float)), m, part[low].to_numpy(float))
        hi = np.where(np.isnan(part[high].to_numpy(float)), m, part[high].to_numpy(float))
        if points is not None:
            single = points[points[panel] == name]
            ax.scatter(single[x].map(position), single["value"], s=12, alpha=0.35,
                       color="tab:gray", label="single seeds", zorder=1)
        ax.errorbar(np.arange(len(order)), m, yerr=np.vstack([m - lo, hi - m]), fmt="o",
                    capsize=4, color="tab:blue", label="mean, 95% bootstrap CI", zorder=2)
        ax.set_xticks(range(len(order)), [str(v) for v in order], fontsize=8,
                      rotation=30 if rotate else 0, ha="right" if rotate else "center")
        ax.set_title(str(name))
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    _figure.set_title(fig, None, title)
    return _figure.save_figure(fig, path, dpi=dpi)

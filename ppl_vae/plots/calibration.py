"""Calibration figures: rank histograms of simulation-based calibration."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

from ppl_vae.plots import _figure


def rank_histograms(
    counts: dict,
    *,
    path,
    widths=None,
    level: float = 0.99,
    xlabel: str = "rank bin",
    title: str | None = None,
    dpi: int = _figure.DEFAULT_DPI,
) -> Figure:
    """Save one rank histogram per entry, over the band that uniform ranks fall in.

    Talts et al. (2018, Section 4.1, Fig. 3) read calibration off these: bars inside
    the grey band everywhere is what an exact posterior gives; a ∪ means the
    approximation is too narrow, a ∩ too wide, a slope a biased location.

    Parameters
    ----------
    counts : dict of str to array-like [bins]
        Panel label -> ranks per bin (``pv.metrics.rank_counts(...)["counts"]`` of one
        coordinate, or summed over coordinates). All entries share the bins.
    path : str or pathlib.Path
    widths : array-like [bins], optional
        Rank values per bin (unequal when the bins do not divide ``S + 1``); default equal.
    level : float
        Probability of each bin's band: binomial quantiles of its count under uniform
        ranks (per bin, not simultaneous over bins).
    xlabel, title : str, optional
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
    >>> ranks = np.tile(np.arange(10), 10)[:, None]      # 100 simulations, S = 9 draws
    >>> counts = pv.metrics.rank_counts(ranks, num_draws=9, bins=5)["counts"]
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = pv.plots.rank_histograms({"z0": counts[:, 0]}, path=Path(tmp) / "ranks.png",
    ...                                    dpi=40)
    ...     saved = (Path(tmp) / "ranks.png").is_file()
    >>> type(fig).__name__, saved
    ('Figure', True)
    """
    if not isinstance(counts, dict) or not counts:
        raise ValueError(
            "counts must be a non-empty dict {label: counts per bin}: e.g. "
            "{'guide': pv.metrics.rank_counts(ranks, num_draws=S)['counts'].sum(1)}"
        )
    arrays = {str(k): _figure.as_numpy(f"counts[{k!r}]", v, ndim=1) for k, v in counts.items()}
    bins = {len(a) for a in arrays.values()}
    if len(bins) != 1:
        raise ValueError(f"counts have {sorted(bins)} bins: pass histograms over the same bins")
    nbins = bins.pop()
    w = np.ones(nbins) if widths is None else _figure.as_numpy("widths", widths, ndim=1)
    if len(w) != nbins or (w <= 0).any():
        raise ValueError(f"widths={w.tolist()} is invalid: pass {nbins} positive numbers")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} is invalid: pass a probability in (0, 1), e.g. 0.99")
    share = w / w.sum()
    ncols = min(len(arrays), 4)
    nrows = math.ceil(len(arrays) / ncols)
    fig = _figure.new_figure(3.2 * ncols, 2.6 * nrows + (0.4 if title else 0.0))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    x = np.arange(nbins)
    for ax, (name, c) in zip(axes, arrays.items()):
        n = c.sum()
        low = stats.binom.ppf((1 - level) / 2, n, share)
        high = stats.binom.ppf((1 + level) / 2, n, share)
        ax.fill_between(np.r_[x - 0.5, x[-1] + 0.5], np.r_[low, low[-1]], np.r_[high, high[-1]],
                        step="post", color="0.85", label=f"{level:.0%} band, uniform ranks")
        ax.step(np.r_[x - 0.5, x[-1] + 0.5], np.r_[n * share, n * share[-1]], where="post",
                color="0.4", linewidth=1.0)
        outside = (c < low) | (c > high)
        ax.bar(x, c, width=0.8, color=np.where(outside, "tab:red", "tab:blue"), alpha=0.8)
        ax.set_title(f"{name} ({int(outside.sum())}/{nbins} bins outside)", fontsize="medium")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("count")
        ax.set_ylim(0, 1.3 * max(c.max(), high.max()))  # headroom for the legend
        if nbins <= 20:
            ax.set_xticks(x)
    for ax in axes[len(arrays):]:
        ax.set_visible(False)
    axes[0].legend(frameon=False, loc="upper center", fontsize="small")
    _figure.set_title(fig, None, title)
    return _figure.save_figure(fig, path, dpi=dpi)

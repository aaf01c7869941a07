"""Line plots: training curves and IWAE bounds against the number of samples K."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from ppl_vae.plots import _figure

VALIDATION_COLUMNS = {"val_elbo": "validation loss (−ELBO)", "val_iwae": "validation −IWAE bound"}


def _auto_ylim(raw: np.ndarray, smooth: np.ndarray) -> tuple[float, float]:
    # The first few percent of training sit far above the rest and would flatten the
    # interesting part; show the 99th percentile of everything after them.
    tail = raw[len(raw) // 20 :] if len(raw) >= 40 else raw
    lo = min(np.nanpercentile(raw, 0.5), np.nanmin(smooth))
    hi = max(np.nanpercentile(tail, 99.5), np.nanmax(smooth[len(smooth) // 20 :]))
    margin = 0.05 * (hi - lo) if hi > lo else 1.0
    return lo - margin, hi + margin


def training_curve(
    history,
    *,
    path,
    smooth: int | None = None,
    extra=(),
    ylim="auto",
    validation: bool = True,
    title: str | None = None,
    ylabel: str = "loss (nats per datapoint)",
    dpi: int = _figure.DEFAULT_DPI,
) -> Figure:
    """Save loss against step: raw values in a light colour plus a moving average.

    Parameters
    ----------
    history : pandas.DataFrame
        Columns ``step`` and ``loss`` (``pv.fit(...).history``), optionally more.
    path : str or pathlib.Path
    smooth : int, optional
        Centred moving-average window in rows; default ``max(1, rows // 25)``.
    extra : sequence of str
        Further columns on the same axis (e.g. ``"test_loss"``); sparse columns
        (NaN on most rows) are drawn as connected markers.
    ylim : "auto", "full" or (low, high)
        ``"auto"`` cuts off the steep first 5 % of training, ``"full"`` shows every point.
    validation : bool
        Draw the validation bounds of ``pv.fit(..., x_val=...)`` (columns ``val_elbo``,
        ``val_iwae``) as losses (−bound) next to the training loss.
    title, ylabel : str, optional
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
    >>> history = pd.DataFrame({"step": np.arange(1, 51), "loss": np.linspace(90.0, 40.0, 50)})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = pv.plots.training_curve(history, path=Path(tmp) / "loss.png", dpi=40)
    ...     saved = (Path(tmp) / "loss.png").is_file()
    >>> type(fig).__name__, saved
    ('Figure', True)
    """
    extra = [extra] if isinstance(extra, str) else list(extra)
    frame = _figure.require_columns("history", history, ["step", "loss", *extra])
    frame = frame.sort_values("step")
    steps = frame["step"].to_numpy(dtype=float)
    raw = frame["loss"].to_numpy(dtype=float)
    window = max(1, len(frame) // 25) if smooth is None else _figure.positive_int("smooth", smooth)
    avg = pd.Series(raw).rolling(window, center=True, min_periods=1).mean().to_numpy()
    fig = _figure.new_figure(6.4, 4.0)
    ax = fig.add_subplot()
    ax.plot(steps, raw, color="tab:blue", alpha=0.25, linewidth=0.8, label="loss (raw)")
    ax.plot(
        steps,
        avg,
        color="tab:blue",
        linewidth=2.0,
        label=f"loss (moving average, {window} rows)" if window > 1 else "loss",
    )
    # Validation bounds (pv.fit with x_val) are drawn as losses, −bound, on the same axis.
    curves = [(col, frame[col].to_numpy(dtype=float), col) for col in extra]
    if validation:
        for col, name in VALIDATION_COLUMNS.items():
            if col in frame and col not in extra and frame[col].notna().any():
                curves.append((col, -frame[col].to_numpy(dtype=float), name))
    for i, (col, values, label) in enumerate(curves):
        ok = np.isfinite(values)
        style = "o-" if ok.sum() <= 60 else "-"
        ax.plot(
            steps[ok],
            values[ok],
            style,
            color=f"C{i + 1}",
            markersize=3.5,
            linewidth=1.5,
            label=label,
        )
    if isinstance(ylim, str):
        _figure.one_of("ylim", ylim, ("auto", "full"))
        if ylim == "auto" and np.isfinite(raw).any():
            ax.set_ylim(*_auto_ylim(raw, avg))
    else:
        ax.set_ylim(*ylim)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    _figure.set_title(fig, ax, title)
    return _figure.save_figure(fig, path, dpi=dpi)


def bound_vs_k(
    frame,
    *,
    path,
    reference: dict | None = None,
    series: str | None = None,
    logx: bool = True,
    title: str | None = None,
    ylabel: str = "log-likelihood bound (nats per datapoint)",
    dpi: int = _figure.DEFAULT_DPI,
) -> Figure:
    """Save the IWAE bound against the number of importance samples K.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``K`` and ``mean``; optional ``lo`` and ``hi`` (an interval drawn as a
        band) and a series column naming the model of each row.
    path : str or pathlib.Path
    reference : dict of str to float, optional
        Horizontal reference lines, e.g. ``{"exact log p(x)": -91.2, "ELBO": -95.0}``.
    series : str, optional
        The series column; default ``"label"`` or ``"series"`` when present.
    logx : bool
        Log-scaled K axis with the measured K values as ticks.
    title, ylabel : str, optional
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
    >>> frame = pd.DataFrame({"K": [1, 10, 100], "mean": [-95.0, -93.1, -92.4]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = pv.plots.bound_vs_k(frame, path=Path(tmp) / "bound.png",
    ...                               reference={"exact log p(x)": -92.0}, dpi=40)
    ...     saved = (Path(tmp) / "bound.png").is_file()
    >>> type(fig).__name__, saved
    ('Figure', True)
    """
    frame = _figure.require_columns("frame", frame, ["K", "mean"])
    if series is None:
        series = next((c for c in ("label", "series") if c in frame.columns), None)
    elif series not in frame.columns:
        raise ValueError(
            f"series={series!r} is not a column of frame; it has {list(frame.columns)}"
        )
    has_band = {"lo", "hi"} <= set(frame.columns)
    groups = frame.groupby(series, sort=False) if series else [(None, frame)]
    fig = _figure.new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    for i, (name, part) in enumerate(groups):
        part = part.sort_values("K")
        k = part["K"].to_numpy(dtype=float)
        ax.plot(
            k,
            part["mean"].to_numpy(dtype=float),
            "o-",
            color=f"C{i}",
            markersize=4,
            label=None if name is None else str(name),
        )
        if has_band:
            ax.fill_between(
                k,
                part["lo"].to_numpy(dtype=float),
                part["hi"].to_numpy(dtype=float),
                color=f"C{i}",
                alpha=0.2,
                linewidth=0,
            )
    _figure.reference_lines(ax, reference)
    if logx:
        ax.set_xscale("log")
        ks = np.unique(frame["K"].to_numpy(dtype=float))
        if len(ks) <= 12:
            ax.xaxis.set_major_locator(FixedLocator(ks))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticklabels([f"{k:g}" for k in ks])
    ax.set_xlabel("number of importance samples K")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if series or reference:
        ax.legend(frameon=False)
    _figure.set_title(fig, ax, title)
    return _figure.save_figure(fig, path, dpi=dpi)


def ais_vs_steps(
    frame,
    *,
    path,
    reference: dict | None = None,
    title: str | None = None,
    dpi: int = _figure.DEFAULT_DPI,
) -> Figure:
    """Save AIS log p̂(x) against the number of annealing steps, with the BDMC band.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``steps`` and ``ais`` (mean AIS log p̂ on the data); optional
        ``bdmc_lower`` and ``bdmc_upper`` (mean forward and reverse AIS on data simulated
        from the model), drawn in a second panel as a band that must close as steps grow.
    path : str or pathlib.Path
    reference : dict of str to float, optional
        Horizontal lines on the first panel, e.g. ``{"IWAE K=1000": -91.2, "ELBO": -95.0}``.
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
    >>> frame = pd.DataFrame({"steps": [10, 100, 1000], "ais": [-96.0, -93.5, -92.8],
    ...                       "bdmc_lower": [-40.1, -38.2, -37.9],
    ...                       "bdmc_upper": [-35.0, -37.1, -37.8]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = pv.plots.ais_vs_steps(frame, path=Path(tmp) / "ais.png",
    ...                                 reference={"ELBO": -95.0}, dpi=40)
    ...     saved = (Path(tmp) / "ais.png").is_file()
    >>> type(fig).__name__, saved, len(fig.axes)         # a second panel for the BDMC band
    ('Figure', True, 2)
    """
    frame = _figure.require_columns("frame", frame, ["steps", "ais"]).sort_values("steps")
    band = {"bdmc_lower", "bdmc_upper"} <= set(frame.columns)
    fig = _figure.new_figure(11.0 if band else 6.4, 4.2)
    axes = fig.subplots(1, 2 if band else 1, squeeze=False)[0]
    steps = frame["steps"].to_numpy(dtype=float)
    axes[0].plot(steps, frame["ais"].to_numpy(dtype=float), "o-", color="C0", markersize=4,
                 label="AIS (lower bound)")
    _figure.reference_lines(axes[0], reference)
    axes[0].set_ylabel("log p̂(x) (nats per datapoint)")
    axes[0].set_title("data", fontsize=10)
    if band:
        lo, hi = (frame[c].to_numpy(dtype=float) for c in ("bdmc_lower", "bdmc_upper"))
        axes[1].fill_between(steps, lo, hi, color="C1", alpha=0.25, linewidth=0)
        axes[1].plot(steps, lo, "o-", color="C1", markersize=4, label="forward AIS (lower)")
        axes[1].plot(steps, hi, "s--", color="C1", markersize=4, label="reverse AIS (upper)")
        axes[1].set_title("BDMC on data simulated from the model", fontsize=10)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("annealing steps T")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    _figure.set_title(fig, axes[0], title)
    return _figure.save_figure(fig, path, dpi=dpi)

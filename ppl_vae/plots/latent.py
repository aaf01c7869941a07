"""Scatter plots of 2-D latent codes, coloured by class, with out-of-domain points marked."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from ppl_vae.plots import _figure


def _class_colors(k: int):
    # Qualitative maps keep neighbouring class ids distinguishable; beyond 20 classes
    # no qualitative map is readable, so fall back to a continuous one with a colorbar.
    if k <= 10:
        return [colormaps["tab10"](i) for i in range(k)]
    if k <= 20:
        return [colormaps["tab20"](i) for i in range(k)]
    return None


def latent_scatter(
    z2,
    *,
    path,
    labels=None,
    ood_mask=None,
    class_means: bool = False,
    class_names=None,
    title: str | None = None,
    xlabel: str = "z1",
    ylabel: str = "z2",
    dpi: int = _figure.DEFAULT_DPI,
) -> Figure:
    """Save a scatter plot of 2-D latent codes.

    Parameters
    ----------
    z2 : array-like or torch.Tensor
        ``[N, 2]`` latent codes (select or project higher-dimensional ones first,
        e.g. ``z[:, [i, j]]``).
    path : str or pathlib.Path
    labels : array-like of int, optional
        ``[N]`` class labels; points are coloured by class with a legend.
    ood_mask : array-like of bool, optional
        ``[N]``; True marks out-of-domain points, drawn as grey crosses and left out
        of the class colours and means.
    class_means : bool
        Draw each class's mean (over in-domain points) as a star.
    class_names : sequence of str or dict, optional
        Legend names per class id; default the ids.
    title, xlabel, ylabel : str, optional
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
    >>> z = np.random.default_rng(0).normal(size=(20, 2))
    >>> labels = np.arange(20) % 2
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = pv.plots.latent_scatter(z, labels=labels, class_means=True,
    ...                                   path=Path(tmp) / "latent.png", dpi=40)
    ...     saved = (Path(tmp) / "latent.png").is_file()
    >>> type(fig).__name__, saved
    ('Figure', True)
    """
    z = _figure.as_numpy("z2", z2, ndim=2)
    if z.shape[1] != 2:
        raise ValueError(
            f"z2 has shape {z.shape}: pass [N, 2] codes "
            "(choose two dimensions, z[:, [i, j]], or project first)"
        )
    n = len(z)
    ood = np.zeros(n, dtype=bool)
    if ood_mask is not None:
        ood = _figure.as_numpy("ood_mask", ood_mask, ndim=1).astype(bool)
        if len(ood) != n:
            raise ValueError(
                f"ood_mask has {len(ood)} entries but z2 has {n} rows: pass one flag per point"
            )
    size = float(np.clip(3000.0 / n, 3.0, 30.0))  # dense clouds get smaller dots
    fig = _figure.new_figure(6.4 if labels is not None else 5.2, 5.0)
    ax = fig.add_subplot()
    ind = ~ood
    if labels is None:
        ax.scatter(
            z[ind, 0],
            z[ind, 1],
            s=size,
            alpha=0.6,
            color="tab:blue",
            linewidths=0,
            label="in-domain" if ood.any() else None,
        )
    else:
        y = _figure.as_numpy("labels", labels, ndim=1)
        if len(y) != n:
            raise ValueError(
                f"labels has {len(y)} entries but z2 has {n} rows: pass one label per point"
            )
        classes = np.unique(y[ind])
        colors = _class_colors(len(classes))
        names = (
            class_names
            if isinstance(class_names, dict)
            else (dict(zip(classes, class_names)) if class_names is not None else {})
        )
        if colors is None:
            art = ax.scatter(
                z[ind, 0], z[ind, 1], c=y[ind], cmap="viridis", s=size, alpha=0.6, linewidths=0
            )
            fig.colorbar(art, ax=ax, label="class")
        for i, c in enumerate(classes):
            pick = ind & (y == c)
            color = "k" if colors is None else colors[i]
            name = str(names.get(c, names.get(int(c), f"{c:g}")))
            if colors is not None:
                ax.scatter(
                    z[pick, 0], z[pick, 1], s=size, alpha=0.6, color=color, linewidths=0, label=name
                )
            if class_means:
                m = z[pick].mean(axis=0)
                ax.scatter(
                    *m, marker="*", s=260, color=color, edgecolors="black", linewidths=1.0, zorder=4
                )
    if ood.any():
        ax.scatter(
            z[ood, 0],
            z[ood, 1],
            marker="x",
            s=max(size, 12.0),
            color="0.45",
            linewidths=1.0,
            alpha=0.8,
            label=f"out-of-domain ({int(ood.sum())})",
        )
    if class_means and labels is not None:
        ax.scatter([], [], marker="*", s=160, color="white", edgecolors="black", label="class mean")
    ax.set_aspect("equal", adjustable="datalim")  # both axes are latent units
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.25)
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        leg = ax.legend(
            loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize="small"
        )
        for handle, text in zip(leg.legend_handles, leg.get_texts()):
            # Legend markers at a readable fixed size, whatever the dot size in the plot.
            handle.set_sizes([110.0 if text.get_text() == "class mean" else 30.0])
            handle.set_alpha(1.0)
    _figure.set_title(fig, ax, title)
    return _figure.save_figure(fig, path, dpi=dpi)

"""The sub-classes figure: PCA scatter of one class's latent codes and decoded centres."""

from __future__ import annotations

import numpy as np

from ppl_vae.plots import _figure
from ppl_vae.plots.grids import tile_images


def subclass_figure(
    result,
    x,
    *,
    image_shape,
    path,
    members: int = 6,
    title: str | None = None,
):
    """Save a figure of the sub-classes: PCA scatter of the codes, and per cluster its
    decoded centre followed by the ``members`` datapoints nearest to the centre.

    Parameters
    ----------
    result : Subclasses
        From :func:`ppl_vae.analysis.find_subclasses` (``label``, ``codes``,
        ``assignments``, ``centres``, ``decoded``, ``rows``, ``silhouette``).
    x : array [N, D]
        The data ``result`` was computed on (for the member images).
    image_shape : tuple of int
    path : str or Path
    members : int
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import ppl_vae as pv
    >>> import torch
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((30, 4), 0.5))
    >>> y = torch.zeros(30, dtype=torch.long)
    >>> result = pv.analysis.find_subclasses(model, x, y, label=0, num_clusters=2)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = pv.plots.subclass_figure(result, x, image_shape=(2, 2), members=3,
    ...                                    path=Path(tmp) / "subclasses.png")
    ...     saved = (Path(tmp) / "subclasses.png").is_file()
    >>> type(fig).__name__, saved
    ('Figure', True)
    """
    from matplotlib import colormaps
    from sklearn.decomposition import PCA

    members = _figure.positive_int("members", members)
    x = np.asarray(x, dtype=np.float64)
    k = len(result.centres)
    pca = PCA(n_components=2).fit(result.codes)
    z2, c2 = pca.transform(result.codes), pca.transform(result.centres)
    tiles = []
    for j in range(k):
        mine = np.flatnonzero(result.assignments == j)
        dist = ((result.codes[mine] - result.centres[j]) ** 2).sum(1)
        nearest = result.rows[mine[np.argsort(dist)[:members]]]
        row = np.full((members + 1, x.shape[1]), np.nan)
        row[0] = result.decoded[j]
        row[1 : 1 + len(nearest)] = x[nearest]
        tiles.append(row)
    h, w = _figure.check_image_shape(image_shape)
    tiled = tile_images(np.concatenate(tiles).reshape(-1, h, w), nrow=members + 1, pad=1)

    fig = _figure.new_figure(9.5, 4.2)
    left, right = fig.subplots(1, 2, width_ratios=[1.0, 1.3])
    colors = [colormaps["tab10"](j % 10) for j in range(k)]
    for j in range(k):
        sel = result.assignments == j
        left.scatter(
            z2[sel, 0], z2[sel, 1], s=14, color=colors[j], label=f"sub-class {j} ({sel.sum()})"
        )
        left.scatter(*c2[j], marker="*", s=220, color=colors[j], edgecolor="black")
    left.set_xlabel("PC 1 of the class's codes")
    left.set_ylabel("PC 2")
    left.legend(fontsize="small")
    left.set_title(f"class {result.label}: silhouette {result.silhouette:.2f}", fontsize="medium")
    right.imshow(np.ma.masked_invalid(np.clip(tiled, 0, 1)), cmap="gray", vmin=0, vmax=1)
    right.set_xticks(
        [(w + 1) * 0.5, (w + 1) * (members / 2 + 1)], ["decoded centre", "nearest members"]
    )
    right.set_yticks(
        [1 + (h + 1) * j + h / 2 for j in range(k)], [f"sub-class {j}" for j in range(k)]
    )
    right.tick_params(length=0)
    for side in right.spines.values():
        side.set_visible(False)
    _figure.set_title(fig, None, title)
    return _figure.save_figure(fig, path)

"""Sub-classes inside an RD-VAE class Gaussian: cluster one class's latent codes.

The RD-VAE keeps, within each class Gaussian, the information needed to
reconstruct the class's members (lecture notes, "Regularized Discriminative
VAE": it "represents sub-classes of the in-domain classes"). Clustering the
encoder means of one class (k-means) exposes that structure; decoding the
cluster centres shows what distinguishes the sub-classes (e.g. sevens with and
without a bar).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ppl_vae import _checks


@dataclass
class Subclasses:
    """k-means sub-clusters of one class's latent codes.

    Attributes
    ----------
    label : int
    rows : ndarray [M]
        Rows of ``x`` that carry ``label``.
    codes : ndarray [M, latent]
        Encoder means of those rows.
    assignments : ndarray [M]
        Sub-cluster of each row, 0..k-1, ordered by size (0 the largest).
    centres : ndarray [k, latent]
    decoded : ndarray [k, D]
        Decoder mean at each centre.
    silhouette : float
        Mean silhouette of the clustering (in [-1, 1]; > 0.25 suggests real structure).
    """

    label: int
    rows: np.ndarray
    codes: np.ndarray
    assignments: np.ndarray
    centres: np.ndarray
    decoded: np.ndarray
    silhouette: float

    def to_frame(self) -> pd.DataFrame:
        """One row per sub-cluster: ``cluster``, ``size``, ``share``, spread of its codes."""
        sizes = np.bincount(self.assignments, minlength=len(self.centres))
        spread = [
            float(np.sqrt(((self.codes[self.assignments == k] - c) ** 2).sum(1).mean()))
            for k, c in enumerate(self.centres)
        ]
        return pd.DataFrame(
            {
                "label": self.label,
                "cluster": np.arange(len(self.centres)),
                "size": sizes,
                "share": sizes / sizes.sum(),
                "rms_radius": spread,
                "silhouette": self.silhouette,
            }
        )


@torch.no_grad()
def find_subclasses(model, x, y, *, label: int, num_clusters: int = 3, seed: int = 0) -> Subclasses:
    """Cluster the encoder means of the datapoints of class ``label`` with k-means.

    Parameters
    ----------
    model
        A model with an encoder (``model.encode``), e.g. a trained RD-VAE.
    x : array [N, D]
    y : array [N] of int
    label : int
        The class to split.
    num_clusters : int
        k, the number of sub-classes (>= 2).
    seed : int
        k-means initialisation.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    x = _checks.data_tensor("x", x, dim=model.data_dim)
    y = _checks.label_tensor("y", y, n=x.shape[0]).numpy()
    num_clusters = _checks.positive_int("num_clusters", num_clusters, minimum=2)
    rows = np.flatnonzero(y == int(label))
    if len(rows) <= num_clusters:
        present = sorted(np.unique(y).tolist())
        raise ValueError(
            f"label={label!r} has {len(rows)} datapoints, too few for num_clusters={num_clusters}: "
            f"pick a label with more points (labels present: {present}) or fewer clusters"
        )
    codes = model.encode(x[rows]).mean.numpy()  # [M, L]
    km = KMeans(n_clusters=num_clusters, n_init=10, random_state=seed).fit(codes)
    order = np.argsort(-np.bincount(km.labels_, minlength=num_clusters), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(num_clusters)
    centres = km.cluster_centers_[order]
    decoded = model.decode(torch.as_tensor(centres, dtype=torch.float32)).mean.numpy()
    return Subclasses(
        label=int(label),
        rows=rows,
        codes=codes,
        assignments=rank[km.labels_],
        centres=centres,
        decoded=decoded,
        silhouette=float(silhouette_score(codes, km.labels_)),
    )


def subclass_figure(
    result: Subclasses,
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
        From :func:`find_subclasses`.
    x : array [N, D]
        The data ``result`` was computed on (for the member images).
    image_shape : tuple of int
    path : str or Path
    members : int
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib import colormaps
    from sklearn.decomposition import PCA

    from ppl_vae.plots import _common as C
    from ppl_vae.plots.grids import tile_images

    members = _checks.positive_int("members", members)
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
    h, w = C.check_image_shape(image_shape)
    tiled = tile_images(np.concatenate(tiles).reshape(-1, h, w), nrow=members + 1, pad=1)

    fig = C.new_figure(9.5, 4.2)
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
    C.set_title(fig, None, title)
    return C.save_figure(fig, path)

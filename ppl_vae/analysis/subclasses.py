"""Sub-classes inside an RD-VAE class Gaussian: cluster one class's latent codes.

The RD-VAE keeps, within each class Gaussian, the information needed to
reconstruct the class's members (lecture notes, "Regularized Discriminative
VAE": it "represents sub-classes of the in-domain classes"). Clustering the
encoder means of one class (k-means) exposes that structure; decoding the
cluster centres shows what distinguishes the sub-classes (e.g. sevens with and
without a bar). :func:`ppl_vae.plots.subclass_figure` draws the result.
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

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((30, 4), 0.5))
    >>> y = torch.arange(30) % 2
    >>> result = pv.analysis.find_subclasses(model, x, y, label=1, num_clusters=2)
    >>> type(result).__name__, result.label, result.codes.shape, result.decoded.shape
    ('Subclasses', 1, (15, 2), (2, 4))
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

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((30, 4), 0.5))
    >>> y = torch.arange(30) % 2
    >>> result = pv.analysis.find_subclasses(model, x, y, label=0, num_clusters=3)
    >>> len(result.rows), result.centres.shape, sorted(set(result.assignments.tolist()))
    (15, (3, 2), [0, 1, 2])
    >>> bool(-1.0 <= result.silhouette <= 1.0)
    True
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
    codes = model.encode(x[rows]).mean.cpu().numpy()  # [M, L]
    km = KMeans(n_clusters=num_clusters, n_init=10, random_state=seed).fit(codes)
    order = np.argsort(-np.bincount(km.labels_, minlength=num_clusters), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(num_clusters)
    centres = km.cluster_centers_[order]
    decoded = model.decode(torch.as_tensor(centres)).mean.cpu().numpy()  # decode moves them
    return Subclasses(
        label=int(label),
        rows=rows,
        codes=codes,
        assignments=rank[km.labels_],
        centres=centres,
        decoded=decoded,
        silhouette=float(silhouette_score(codes, km.labels_)),
    )

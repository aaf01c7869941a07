"""Array checks shared by the metrics: latent codes, ground-truth factors, scores.

Each is a thin wrapper over :func:`ppl_vae._checks.real_array`, the package's one
array validator, adding what a metric needs (a column count, one factor row per
latent row, integer factor codes).
"""

from __future__ import annotations

import numpy as np
import torch

from ppl_vae._checks import real_array


def latent_array(name: str, latents, *, min_columns: int = 1) -> np.ndarray:
    """``latents`` as a finite float ``[N, L]`` array with at least ``min_columns`` columns."""
    arr = real_array(name, latents, columns=True, what="latent codes")
    if arr.shape[1] < min_columns:
        raise ValueError(
            f"{name} has {arr.shape[1]} column(s): this metric needs at least {min_columns} latents"
        )
    return arr


def scores(name: str, values) -> np.ndarray:
    """``values`` as a finite 1-D float array, one score per datapoint."""
    return real_array(name, values, ndim=1, what="scores, one per datapoint")


def factor_codes(factors, *, n: int) -> np.ndarray:
    """Each factor column mapped to integer codes 0..K-1: int ``[N, F]``, ``N == n``.

    Factors may be numbers (checked finite) or labels of any sortable dtype.
    """
    raw = factors.detach().cpu().numpy() if torch.is_tensor(factors) else np.asarray(factors)
    numeric = np.issubdtype(raw.dtype, np.number)
    arr = real_array("factors", raw, columns=True, what="factor values") if numeric else raw
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"factors has shape {arr.shape}: pass a 2-D array [N, F] of factor values")
    if arr.shape[0] != n:
        raise ValueError(
            f"factors has {arr.shape[0]} rows but latents has {n}: pass one row of factor "
            "values per encoded datapoint"
        )
    codes = np.empty(arr.shape, dtype=np.int64)
    for f in range(arr.shape[1]):
        codes[:, f] = np.unique(arr[:, f], return_inverse=True)[1].reshape(-1)
    return codes

"""Mutual Information Gap (MIG).

Chen, Li, Grosse & Duvenaud (2018), "Isolating Sources of Disentanglement in
Variational Autoencoders", NeurIPS, Section 5:

    MIG = (1/K) Σ_k (1/H(v_k)) (I(z_{j_k}; v_k) − max_{j ≠ j_k} I(z_j; v_k)),
    j_k = argmax_j I(z_j; v_k),

estimated as in disentanglement_lib (Locatello et al. 2019): each latent is
discretised into ``bins`` equal-width bins, factors are taken as discrete codes, and
the mutual informations are plug-in estimates (``sklearn.metrics.mutual_info_score``,
nats). Factors that take a single value carry no information (H = 0) and are skipped.

The array validation helpers here are shared with the other metrics of this package.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppl_vae._checks import positive_int
from ppl_vae.metrics._arrays import factor_codes, latent_array
from ppl_vae.metrics._sampling import factor_names_of


def _check_bins(bins) -> int:
    return positive_int("bins", bins, minimum=2, fix="pass an integer >= 2 (20 is customary)")


def _discretize(latents: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width histogram codes per column, ``[N, L]`` ints in [0, bins)."""
    codes = np.empty(latents.shape, dtype=np.int64)
    for j in range(latents.shape[1]):
        col = latents[:, j]
        edges = np.linspace(col.min(), col.max(), bins + 1)
        # interior edges only: the maximum falls in the last bin, a constant column in bin 0
        codes[:, j] = np.digitize(col, edges[1:-1], right=False)
    return codes


def mutual_information(latent_codes: np.ndarray, factor_codes: np.ndarray) -> np.ndarray:
    """Plug-in mutual information ``[L, F]`` (nats) between discrete latents and factors."""
    # sklearn is imported on use, not with ppl_vae: a fresh study worker starts sooner.
    from sklearn.metrics import mutual_info_score

    return np.array(
        [
            [mutual_info_score(factor_codes[:, k], latent_codes[:, j])
             for k in range(factor_codes.shape[1])]
            for j in range(latent_codes.shape[1])
        ]
    )


def _mig_table(latent_codes: np.ndarray, factor_codes: np.ndarray) -> dict[str, np.ndarray]:
    """Per-factor entropy, best and second-best latent MI, and normalised gap."""
    from sklearn.metrics import mutual_info_score

    num_factors = factor_codes.shape[1]
    mi = mutual_information(latent_codes, factor_codes)  # [L, F] nats
    entropy = np.array(
        [mutual_info_score(factor_codes[:, k], factor_codes[:, k]) for k in range(num_factors)]
    )
    order = np.argsort(-mi, axis=0, kind="stable")  # [L, F] latents by decreasing MI
    cols = np.arange(num_factors)
    top, second = mi[order[0], cols], mi[order[1], cols]
    informative = entropy > 0
    gap = np.full(num_factors, np.nan)
    gap[informative] = (top - second)[informative] / entropy[informative]
    return {
        "entropy": entropy,
        "top_latent": order[0],
        "top_mi": top,
        "second_latent": order[1],
        "second_mi": second,
        "gap": gap,
    }


def mig_details(latents, factors, *, bins: int = 20, factor_names=None) -> pd.DataFrame:
    """Per-factor terms of the Mutual Information Gap.

    Parameters
    ----------
    latents : array ``[N, L]``
        One representation per datapoint (e.g. posterior means); ``L >= 2``.
    factors : array ``[N, F]`` or ``[N]``
        Ground-truth factor values, treated as discrete (any values; mapped to codes).
    bins : int, default 20
        Number of equal-width bins each latent is discretised into.
    factor_names : sequence of F labels, optional
        Default: the columns of ``factors`` when it is a DataFrame, else ``0..F-1``.

    Returns
    -------
    pandas.DataFrame
        One row per factor: ``factor``, ``entropy`` (nats), ``top_latent``, ``top_mi``,
        ``second_latent``, ``second_mi``, ``gap`` (normalised; NaN for a constant factor).

    Examples
    --------
    >>> import numpy as np
    >>> from ppl_vae.metrics import mig_details
    >>> factors = np.repeat([0, 1], 50)
    >>> latents = np.stack([factors + 0.0, np.zeros(100)], axis=1)  # z_0 is the factor
    >>> row = mig_details(latents, factors).iloc[0]
    >>> int(row["top_latent"]), round(float(row["gap"]), 6)
    (0, 1.0)
    """
    lat = latent_array("latents", latents, min_columns=2)
    codes = factor_codes(factors, n=lat.shape[0])
    names = factor_names_of(factors, factor_names, codes.shape[1])
    table = _mig_table(_discretize(lat, _check_bins(bins)), codes)
    return pd.DataFrame({"factor": names, **table})


def mig(latents, factors, *, bins: int = 20) -> float:
    """Mutual Information Gap (Chen et al. 2018, Section 5), in [0, 1].

    The mean over non-constant factors of the gap between the two latents most
    informative about the factor, normalised by the factor's entropy. See
    :func:`mig_details` for the arguments and the per-factor terms.

    Examples
    --------
    >>> import numpy as np
    >>> from ppl_vae.metrics import mig
    >>> factors = np.repeat([0, 1], 50)
    >>> latents = np.stack([factors + 0.0, np.zeros(100)], axis=1)  # z_0 is the factor
    >>> round(mig(latents, factors), 6)
    1.0
    """
    gaps = mig_details(latents, factors, bins=bins)["gap"].to_numpy()
    if np.isnan(gaps).all():
        raise ValueError(
            "factors are all constant (every column takes a single value): MIG needs at "
            "least one factor that varies"
        )
    return float(np.nanmean(gaps))

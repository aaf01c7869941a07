"""Modularity and explicitness (Ridgeway & Mozer 2018, "Learning Deep Disentangled
Embeddings With the F-Statistic Loss", NeurIPS, Section 3).

Modularity: with m_jk the mutual information between latent j and factor k, θ_j =
max_k m_jk and F factors, latent j scores

    1 − δ_j,   δ_j = Σ_{k ≠ k*} m_jk² / (θ_j² (F − 1)),

1 when it informs about one factor only; the score is the mean over latents (a latent
with no information at all scores 0, disentanglement_lib's convention). The mutual
informations are those of :mod:`ppl_vae.metrics.mig` (latents in ``bins`` equal-width
bins, plug-in estimate).

Explicitness: per factor, a one-vs-rest logistic regression on all (standardised)
latents; its mean ROC AUC over the factor's values; the score is the mean over
factors (1: every factor value is linearly readable; 0.5: chance).

disentanglement_lib's defaults (Locatello et al. 2019): ``num_train=10000``,
``num_test=5000``, a 20-bin histogram discretiser, sklearn ``LogisticRegression`` with
its default settings on latents standardised with the training rows' mean and s.d.

Modularity of pure noise is not 0: its plug-in mutual informations are small but
unequal (estimation noise), and modularity reads only their ratios. Measured on the
codes of 10,000 16×16-sprite grid points (5 factors): 1.00 for a perfect code, 0.79
after a random rotation, 0.46 for 5 noise latents. Compare codes, not a code with 0.
"""

from __future__ import annotations

import numpy as np

from ppl_vae.metrics._arrays import factor_codes, latent_array
from ppl_vae.metrics.mig import _check_bins, _discretize, mutual_information
from ppl_vae.metrics.sap import train_test_rows, varying_codes


def modularity_from_mi(mi: np.ndarray) -> np.ndarray:
    """Per-latent modularity ``[L]`` from a mutual information matrix ``[L, F]``, F >= 2."""
    squared = mi ** 2
    top = squared.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (squared.sum(axis=1) - top) / (top * (mi.shape[1] - 1))
    return np.where(top > 0, 1.0 - delta, 0.0)


def _explicitness_core(x_train, y_train, x_test, y_test) -> tuple[float, float]:
    """Mean one-vs-rest AUC over factors on the train and the test rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    mean, sd = x_train.mean(axis=0), x_train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    x_train, x_test = (x_train - mean) / sd, (x_test - mean) / sd
    auc_train, auc_test = [], []
    for k in range(y_train.shape[1]):
        model = LogisticRegression(max_iter=1000).fit(x_train, y_train[:, k])
        for x, y, out in ((x_train, y_train[:, k], auc_train), (x_test, y_test[:, k], auc_test)):
            prob = model.predict_proba(x)
            present = [c for c in range(len(model.classes_)) if 0 < np.mean(y == model.classes_[c]) < 1]
            out.append(np.mean([roc_auc_score(y == model.classes_[c], prob[:, c]) for c in present]))
    return float(np.mean(auc_train)), float(np.mean(auc_test))


def modularity_explicitness(latents, factors, *, seed: int = 0, bins: int = 20,
                            num_train: int = 10000, num_test: int = 5000) -> dict[str, float]:
    """Modularity and explicitness (Ridgeway & Mozer 2018), each in [0, 1].

    Parameters
    ----------
    latents : array ``[N, L]``
        One representation per datapoint (e.g. encoder means).
    factors : array or DataFrame ``[N, F]``
        Ground-truth factors, treated as discrete; constant ones are left out, and
        modularity needs at least two that vary.
    seed : int, default 0
        Seeds the train/test split.
    bins : int, default 20
        Equal-width bins per latent for the mutual informations of modularity.
    num_train, num_test : int, default 10000, 5000
        Rows for the mutual informations and the regressions (train), and for the
        test AUC (with fewer rows, the same proportions).

    Returns
    -------
    dict
        ``modularity``, ``explicitness`` (test AUC) and ``explicitness_train``.

    Examples
    --------
    >>> import numpy as np
    >>> from ppl_vae.metrics import modularity_explicitness
    >>> factors = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 25)
    >>> latents = factors + 0.1 * np.random.default_rng(0).standard_normal((100, 2))
    >>> out = modularity_explicitness(latents, factors)   # one latent per factor
    >>> sorted(out), round(out["modularity"], 2), round(out["explicitness"], 2)
    (['explicitness', 'explicitness_train', 'modularity'], 1.0, 1.0)
    """
    lat = latent_array("latents", latents)
    codes = factor_codes(factors, n=lat.shape[0])
    codes, _ = varying_codes(codes, list(range(codes.shape[1])), "modularity")
    if codes.shape[1] < 2:
        raise ValueError("factors has 1 varying column: modularity compares a latent's "
                         "information about several factors, pass at least 2")
    train, test = train_test_rows(len(lat), num_train, num_test, seed)
    mi = mutual_information(_discretize(lat[train], _check_bins(bins)), codes[train])
    explicit_train, explicit_test = _explicitness_core(lat[train], codes[train], lat[test],
                                                       codes[test])
    return {"modularity": float(modularity_from_mi(mi).mean()),
            "explicitness": explicit_test, "explicitness_train": explicit_train}

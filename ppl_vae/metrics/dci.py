"""DCI: Disentanglement, Completeness and Informativeness.

Eastwood & Williams (2018), "A Framework for the Quantitative Evaluation of
Disentangled Representations", ICLR. One predictor per factor is trained to recover
the factor from the latents; its feature importances form a matrix R ``[L, F]``
(R_jk = importance of latent j for factor k). With P_jk = R_jk / Σ_k' R_jk' and
P̃_jk = R_jk / Σ_j' R_j'k:

- disentanglement  D = Σ_j ρ_j (1 − H_F(P_j·)),  ρ_j = Σ_k R_jk / Σ_jk R_jk
  (a latent that matters for one factor only scores 1; entropy in base F),
- completeness     C = (1/F) Σ_k (1 − H_L(P̃_·k))
  (a factor captured by a single latent scores 1; entropy in base L),
- informativeness  I = mean test accuracy of the per-factor predictors.

As in disentanglement_lib (Locatello et al. 2019) factors are treated as discrete
classes; the predictors here are small random forests considering every latent at
each split (bagged trees), whose impurity importances give R. Constant factors are
left out. With a single factor (or latent) the base-1 entropy is taken as 0.
"""

from __future__ import annotations

import numbers

import numpy as np

from ppl_vae import _checks
from ppl_vae._checks import positive_int
from ppl_vae.metrics._arrays import factor_codes, latent_array


def _normalised_entropy(p: np.ndarray, axis: int) -> np.ndarray:
    """Entropy of the distributions along ``axis`` in base ``p.shape[axis]``."""
    k = p.shape[axis]
    if k <= 1:
        return np.zeros(np.delete(p.shape, axis))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=axis) / np.log(k)


def _dci_scores(importance: np.ndarray) -> tuple[float, float]:
    """Disentanglement and completeness from an importance matrix ``[L, F]``."""
    total = importance.sum()
    if total <= 0:
        return 0.0, 0.0
    per_latent = importance.sum(axis=1)  # [L]
    used = per_latent > 0
    p_latent = importance[used] / per_latent[used, None]  # [L_used, F]
    disentanglement = float(
        np.sum((per_latent[used] / total) * (1.0 - _normalised_entropy(p_latent, axis=1)))
    )
    per_factor = importance.sum(axis=0)  # [F]
    p_factor = importance / np.where(per_factor > 0, per_factor, 1.0)  # [L, F]
    completeness_k = np.where(per_factor > 0, 1.0 - _normalised_entropy(p_factor, axis=0), 0.0)
    return disentanglement, float(completeness_k.mean())


def _fit_importances(
    x_train, y_train, x_test, y_test, *, seed: int, num_trees: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Importance matrix ``[L, F]`` and train/test accuracies ``[F]``."""
    # sklearn is imported on use, not with ppl_vae: a fresh study worker starts sooner.
    from sklearn.ensemble import RandomForestClassifier

    num_factors = y_train.shape[1]
    importance = np.zeros((x_train.shape[1], num_factors))
    acc_train, acc_test = np.zeros(num_factors), np.zeros(num_factors)
    for k in range(num_factors):
        forest = RandomForestClassifier(
            n_estimators=num_trees,
            max_depth=8,  # shallow: deep trees split on noise and leak importance to it
            min_samples_leaf=5,
            max_features=None,  # every latent competes at each split, so importance is not spread by chance
            random_state=seed + k,
            n_jobs=1,
        )
        forest.fit(x_train, y_train[:, k])
        importance[:, k] = np.abs(forest.feature_importances_)
        acc_train[k] = forest.score(x_train, y_train[:, k])
        acc_test[k] = forest.score(x_test, y_test[:, k])
    return importance, acc_train, acc_test


def dci(
    latents,
    factors,
    *,
    seed: int = 0,
    test_fraction: float = 0.25,
    max_rows: int = 2000,
    num_trees: int = 30,
) -> dict[str, float]:
    """DCI disentanglement, completeness and informativeness (Eastwood & Williams 2018).

    Parameters
    ----------
    latents : array ``[N, L]``
        One representation per datapoint (e.g. posterior means).
    factors : array ``[N, F]`` or ``[N]``
        Ground-truth factor values, treated as discrete classes.
    seed : int, default 0
        Seeds the row subsample, the train/test split and the forests.
    test_fraction : float, default 0.25
        Share of the (subsampled) rows held out to measure informativeness.
    max_rows : int, default 2000
        Rows are subsampled to at most this many, to keep the metric fast.
    num_trees : int, default 30
        Trees per factor predictor.

    Returns
    -------
    dict
        ``disentanglement``, ``completeness``, ``informativeness`` (mean test
        accuracy) and ``informativeness_train`` (mean train accuracy), all floats
        in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from ppl_vae.metrics import dci
    >>> factors = np.repeat([0, 1, 2], 20)
    >>> latents = np.stack([factors + 0.0, np.zeros(60)], axis=1)  # z_0 codes the factor
    >>> scores = dci(latents, factors, num_trees=5)
    >>> sorted(scores)
    ['completeness', 'disentanglement', 'informativeness', 'informativeness_train']
    >>> all(0.0 <= v <= 1.0 for v in scores.values())
    True
    """
    lat = latent_array("latents", latents)
    codes = factor_codes(factors, n=lat.shape[0])
    if (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, numbers.Real)
        or not 0 < test_fraction < 1
    ):
        raise ValueError(
            f"test_fraction={test_fraction!r} is invalid: pass a number in (0, 1), e.g. 0.25"
        )
    max_rows = positive_int("max_rows", max_rows, minimum=4)
    num_trees = positive_int("num_trees", num_trees)
    seed = _checks.seed("seed", seed)

    rng = np.random.default_rng(seed)
    rows = rng.permutation(lat.shape[0])[:max_rows]
    num_test = round(test_fraction * len(rows))
    if num_test < 1 or len(rows) - num_test < 2:
        raise ValueError(
            f"latents has {lat.shape[0]} rows: with test_fraction={test_fraction} that leaves "
            f"{len(rows) - num_test} training and {num_test} test rows; pass more data"
        )
    test, train = rows[:num_test], rows[num_test:]
    varying = np.array([len(np.unique(codes[:, k])) > 1 for k in range(codes.shape[1])])
    if not varying.any():
        raise ValueError(
            "factors are all constant (every column takes a single value): DCI needs at "
            "least one factor that varies"
        )
    codes = codes[:, varying]
    importance, acc_train, acc_test = _fit_importances(
        lat[train], codes[train], lat[test], codes[test], seed=seed, num_trees=num_trees
    )
    disentanglement, completeness = _dci_scores(importance)
    return {
        "disentanglement": disentanglement,
        "completeness": completeness,
        "informativeness": float(acc_test.mean()),
        "informativeness_train": float(acc_train.mean()),
    }

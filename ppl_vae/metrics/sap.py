"""SAP: the Separated Attribute Predictability score (Kumar, Sattigeri & Balakrishnan
2018, "Variational Inference of Disentangled Latent Concepts from Unlabeled
Observations", ICLR, Section 3).

S_jk is how well latent j alone predicts factor k: here (discrete factors, as in
disentanglement_lib) the test accuracy of a linear SVM on that one latent. SAP is the
mean over factors of the gap between the two largest S_jk over latents,

    SAP = (1/K) Σ_k (S_(1)k − S_(2)k).

A factor captured by one latent only has a large gap; a factor spread over several
latents (or none) a small one.

disentanglement_lib's defaults (Locatello et al. 2019): ``num_train=10000``,
``num_test=5000`` points, ``LinearSVC(C=0.01, class_weight="balanced")`` per
(latent, factor) pair, factors discrete. Factors that take a single value are left
out (no classifier can be fitted to one class).

What 1 and 0 mean here. The runner-up latent of a perfect code predicts at chance, and a
one-feature linear SVM separates a K-valued factor only partly, so even a perfect code
scores well below 1 when factors take many values: measured 0.36 on the codes of 10,000
16×16-sprite grid points (3, 4 and 8 values), 0.05 after a random rotation, 0.005 for
noise. Binary factors reach ≈ 0.5 (top accuracy 1, runner-up 0.5).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppl_vae import _checks
from ppl_vae._checks import positive_int
from ppl_vae.metrics._arrays import factor_codes, latent_array
from ppl_vae.metrics._sampling import factor_names_of


def train_test_rows(n: int, num_train: int, num_test: int, seed: int):
    """Disjoint random train and test rows: ``num_train`` and ``num_test`` of them, or, when
    ``n`` is smaller than their sum, the same proportions of ``n``."""
    num_train = positive_int("num_train", num_train)
    num_test = positive_int("num_test", num_test)
    rows = np.random.default_rng(_checks.seed("seed", seed)).permutation(n)
    if n < num_train + num_test:
        num_test = round(n * num_test / (num_train + num_test))
        num_train = n - num_test
    if num_test < 1 or num_train < 2:
        raise ValueError(f"latents has {n} rows: too few for a train and a test split; "
                         "pass more data")
    return rows[:num_train], rows[num_train:num_train + num_test]


def varying_codes(codes: np.ndarray, names: list, what: str):
    """The factor columns that take more than one value, and their names."""
    varying = np.array([len(np.unique(c)) > 1 for c in codes.T])
    if not varying.any():
        raise ValueError(f"factors are all constant (every column takes a single value): "
                         f"{what} needs at least one factor that varies")
    return codes[:, varying], [n for n, v in zip(names, varying) if v]


def _score_matrix(x_train, y_train, x_test, y_test) -> np.ndarray:
    """S ``[L, F]``: test accuracy of a linear SVM from latent j alone to factor k."""
    from sklearn.svm import LinearSVC

    scores = np.zeros((x_train.shape[1], y_train.shape[1]))
    for j in range(x_train.shape[1]):
        for k in range(y_train.shape[1]):
            svm = LinearSVC(C=0.01, class_weight="balanced")
            svm.fit(x_train[:, [j]], y_train[:, k])
            scores[j, k] = np.mean(svm.predict(x_test[:, [j]]) == y_test[:, k])
    return scores


def sap_gaps(scores: np.ndarray) -> np.ndarray:
    """Per-factor gap between the largest and second-largest score over latents ``[F]``."""
    ordered = np.sort(scores, axis=0)
    return ordered[-1] - ordered[-2]


def sap_details(latents, factors, *, seed: int = 0, num_train: int = 10000,
                num_test: int = 5000, factor_names=None) -> pd.DataFrame:
    """Per-factor terms of SAP: ``factor``, ``top_latent``, ``top_score``,
    ``second_score``, ``gap``. Arguments as for :func:`sap`.

    Examples
    --------
    >>> import numpy as np
    >>> from ppl_vae.metrics import sap_details
    >>> factors = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 25)
    >>> latents = factors + 0.1 * np.random.default_rng(0).standard_normal((100, 2))
    >>> table = sap_details(latents, factors, factor_names=["shape", "size"])
    >>> table["factor"].tolist(), table["top_latent"].tolist(), table["top_score"].tolist()
    (['shape', 'size'], [0, 1], [1.0, 1.0])
    >>> bool((table["gap"] == table["top_score"] - table["second_score"]).all())
    True
    """
    lat = latent_array("latents", latents, min_columns=2)
    codes = factor_codes(factors, n=lat.shape[0])
    codes, names = varying_codes(codes, factor_names_of(factors, factor_names, codes.shape[1]),
                                 "SAP")
    train, test = train_test_rows(len(lat), num_train, num_test, seed)
    scores = _score_matrix(lat[train], codes[train], lat[test], codes[test])
    ordered = np.sort(scores, axis=0)
    return pd.DataFrame({"factor": names, "top_latent": np.argmax(scores, axis=0),
                         "top_score": ordered[-1], "second_score": ordered[-2],
                         "gap": sap_gaps(scores)})


def sap(latents, factors, *, seed: int = 0, num_train: int = 10000,
        num_test: int = 5000) -> float:
    """SAP score (Kumar et al. 2018), in [0, 1].

    Parameters
    ----------
    latents : array ``[N, L]``, ``L >= 2``
        One representation per datapoint (e.g. encoder means).
    factors : array or DataFrame ``[N, F]``
        Ground-truth factors, treated as discrete classes.
    seed : int, default 0
        Seeds the train/test split.
    num_train, num_test : int, default 10000, 5000
        Rows to fit and to test each SVM on (with fewer rows, the same proportions).

    Examples
    --------
    >>> import numpy as np
    >>> from ppl_vae.metrics import sap
    >>> factors = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 25)
    >>> rng = np.random.default_rng(0)
    >>> latents = factors + 0.1 * rng.standard_normal((100, 2))   # one latent per factor
    >>> noise = rng.standard_normal((100, 2))                     # no latent for any factor
    >>> sap(latents, factors) > 0.4 > sap(noise, factors) >= 0.0
    True
    """
    return float(sap_details(latents, factors, seed=seed, num_train=num_train,
                             num_test=num_test)["gap"].mean())

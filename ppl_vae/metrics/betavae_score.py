"""BetaVAE score (Higgins et al. 2017, "β-VAE: Learning Basic Visual Concepts with a
Constrained Variational Framework", ICLR, Section 3).

One training point: draw a factor k; draw ``batch_size`` pairs of datapoints that share
the value of factor k (everything else random); the feature is the mean over the pairs
of |r(x₁) − r(x₂)| (``[L]``), the label is k. A linear classifier (logistic regression)
is fitted on ``num_train`` such points; the score is its accuracy on ``num_eval`` fresh
points. A disentangled code has one coordinate that barely moves when k is shared, so k
is linearly readable: accuracy 1. Chance level is 1/F.

disentanglement_lib's defaults (Locatello et al. 2019): ``batch_size=64``,
``num_train=10000``, ``num_eval=5000``, sklearn ``LogisticRegression`` with its default
settings. Factors that take a single value (dSprites' colour) are never chosen as k,
as disentanglement_lib leaves them out of the factor list.
"""

from __future__ import annotations

import numpy as np

from ppl_vae import _checks
from ppl_vae._checks import positive_int
from ppl_vae.metrics._sampling import check_sampler


def _varying_factors(sampler) -> np.ndarray:
    varying = np.flatnonzero(np.asarray(sampler.factor_sizes) > 1)
    if varying.size < 2:
        raise ValueError(
            f"factor sizes {tuple(sampler.factor_sizes)} leave {varying.size} varying "
            "factor(s): an intervention score needs at least 2 factors that vary"
        )
    return varying


def _pair_features(sampler, num_points: int, batch_size: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``num_points`` features ``[num_points, L]`` and their factor labels."""
    varying = _varying_factors(sampler)
    features, labels = [], np.empty(num_points, dtype=np.int64)
    for i in range(num_points):
        k = int(rng.choice(varying))
        first, codes = sampler.draw(batch_size, rng)
        second, _ = sampler.draw(batch_size, rng, fix=(k, codes[:, k]))
        features.append(np.abs(first - second).mean(axis=0))
        labels[i] = k
    return np.stack(features), labels


def _betavae_core(sampler, *, batch_size, num_train, num_eval, rng) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression

    x_train, y_train = _pair_features(sampler, num_train, batch_size, rng)
    x_eval, y_eval = _pair_features(sampler, num_eval, batch_size, rng)
    model = LogisticRegression(max_iter=1000)
    model.fit(x_train, y_train)
    return {
        "train_accuracy": float(model.score(x_train, y_train)),
        "eval_accuracy": float(model.score(x_eval, y_eval)),
    }


def betavae_score(
    sampler, *, seed: int = 0, batch_size: int = 64, num_train: int = 10000,
    num_eval: int = 5000,
) -> dict[str, float]:
    """BetaVAE score: accuracy of a linear classifier naming the shared factor.

    Parameters
    ----------
    sampler : ArraySampler or GridSampler
        Draws representations of datapoints with chosen factors
        (:mod:`ppl_vae.metrics._sampling`).
    seed : int, default 0
        Seeds every draw (and so the score).
    batch_size : int, default 64
        Pairs averaged into one feature.
    num_train, num_eval : int, default 10000, 5000
        Features to fit and to score the classifier on.

    Returns
    -------
    dict
        ``train_accuracy`` and ``eval_accuracy`` (the score), in [0, 1].

    Examples
    --------
    A representation with one latent per factor names the shared factor every time:

    >>> import numpy as np
    >>> from ppl_vae.metrics import ArraySampler, betavae_score
    >>> factors = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 25)
    >>> latents = factors + 0.1 * np.random.default_rng(0).standard_normal((100, 2))
    >>> betavae_score(ArraySampler(latents, factors), batch_size=8, num_train=200,
    ...               num_eval=100)
    {'train_accuracy': 1.0, 'eval_accuracy': 1.0}
    """
    check_sampler(sampler)
    rng = np.random.default_rng(_checks.seed("seed", seed))
    return _betavae_core(
        sampler,
        batch_size=positive_int("batch_size", batch_size),
        num_train=positive_int("num_train", num_train, minimum=2),
        num_eval=positive_int("num_eval", num_eval),
        rng=rng,
    )

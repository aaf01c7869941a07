"""FactorVAE score (Kim & Mnih 2018, "Disentangling by Factorising", ICML, Section 4).

Each latent is divided by its standard deviation over ``num_variance_estimate`` random
datapoints; latents whose variance is below ``prune_threshold`` (collapsed) are left
out. One vote: draw a factor k and one value of it; encode ``batch_size`` datapoints
that all share that value; the vote is (the kept latent of least normalised variance
in the batch, k). The classifier maps each latent to the factor it received most
training votes for (majority vote); the score is the share of ``num_eval`` fresh votes
it gets right. A disentangled code freezes exactly one latent per factor: accuracy 1.

disentanglement_lib's defaults (Locatello et al. 2019): ``batch_size=64``,
``num_train=10000``, ``num_eval=5000``, ``num_variance_estimate=10000``, pruning
threshold 0.05 on the variance. Factors that take a single value are never chosen.
With no latent kept the score is 0 (disentanglement_lib's convention).
"""

from __future__ import annotations

import numpy as np

from ppl_vae import _checks
from ppl_vae._checks import positive_int
from ppl_vae.metrics._sampling import check_sampler
from ppl_vae.metrics.betavae_score import _varying_factors


def _votes(sampler, num_votes, batch_size, scale, kept, rng) -> np.ndarray:
    """Vote counts ``[L, F]``: rows the least-varying kept latent, columns the fixed factor."""
    varying = _varying_factors(sampler)
    counts = np.zeros((len(scale), len(sampler.factor_sizes)), dtype=np.int64)
    for _ in range(num_votes):
        k = int(rng.choice(varying))
        value = rng.integers(0, sampler.factor_sizes[k])
        reps, _ = sampler.draw(batch_size, rng, fix=(k, np.full(batch_size, value)))
        var = np.var(reps / scale, axis=0, ddof=1)
        latent = kept[np.argmin(var[kept])]
        counts[latent, k] += 1
    return counts


def _factorvae_core(sampler, *, batch_size, num_train, num_eval, num_variance_estimate,
                    prune_threshold, rng) -> dict[str, float]:
    reps, _ = sampler.draw(num_variance_estimate, rng)
    variance = np.var(reps, axis=0, ddof=1)
    kept = np.flatnonzero(variance >= prune_threshold)
    if kept.size == 0:
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active": 0}
    scale = np.sqrt(np.where(variance > 0, variance, 1.0))
    train = _votes(sampler, num_train, batch_size, scale, kept, rng)
    classifier = np.argmax(train, axis=1)  # [L]: factor each latent votes for
    evaluation = _votes(sampler, num_eval, batch_size, scale, kept, rng)
    rows = np.arange(len(classifier))
    return {
        "train_accuracy": float(train.max(axis=1).sum() / train.sum()),
        "eval_accuracy": float(evaluation[rows, classifier].sum() / evaluation.sum()),
        "num_active": int(kept.size),
    }


def factorvae_score(
    sampler, *, seed: int = 0, batch_size: int = 64, num_train: int = 10000,
    num_eval: int = 5000, num_variance_estimate: int = 10000, prune_threshold: float = 0.05,
) -> dict[str, float]:
    """FactorVAE score: majority-vote accuracy naming the fixed factor.

    Parameters
    ----------
    sampler : ArraySampler or GridSampler
        Draws representations of datapoints with chosen factors
        (:mod:`ppl_vae.metrics._sampling`).
    seed : int, default 0
        Seeds every draw.
    batch_size : int, default 64
        Datapoints sharing the fixed factor per vote (>= 2, for a variance).
    num_train, num_eval : int, default 10000, 5000
        Votes to build and to score the classifier.
    num_variance_estimate : int, default 10000
        Datapoints for each latent's global variance.
    prune_threshold : float, default 0.05
        Latents with a global variance below it are not voted for.

    Returns
    -------
    dict
        ``train_accuracy``, ``eval_accuracy`` (the score) and ``num_active`` (latents kept).

    Examples
    --------
    A representation with one latent per factor: the fixed factor's latent varies least:

    >>> import numpy as np
    >>> from ppl_vae.metrics import ArraySampler, factorvae_score
    >>> factors = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 25)
    >>> latents = factors + 0.1 * np.random.default_rng(0).standard_normal((100, 2))
    >>> factorvae_score(ArraySampler(latents, factors), batch_size=8, num_train=200,
    ...                 num_eval=100, num_variance_estimate=100)
    {'train_accuracy': 1.0, 'eval_accuracy': 1.0, 'num_active': 2}
    """
    check_sampler(sampler)
    rng = np.random.default_rng(_checks.seed("seed", seed))
    return _factorvae_core(
        sampler,
        batch_size=positive_int("batch_size", batch_size, minimum=2),
        num_train=positive_int("num_train", num_train),
        num_eval=positive_int("num_eval", num_eval),
        num_variance_estimate=positive_int("num_variance_estimate", num_variance_estimate,
                                           minimum=2),
        prune_threshold=_checks.finite_number("prune_threshold", prune_threshold, minimum=0),
        rng=rng,
    )

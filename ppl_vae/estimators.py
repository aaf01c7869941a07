"""Minibatch estimators of the aggregate posterior q(z) and the KL decomposition.

The aggregate posterior of a dataset of size N is q(z) = (1/N) Σ_n q(z|x_n); its
per-dimension marginals are q(z_l) = (1/N) Σ_n q(z_l|x_n). Given a minibatch of B
posterior samples z_i ~ q(z|x_i) with diagonal Gaussian posteriors, both densities
are estimated at every z_i from the B×B pairwise posterior densities q(z_i|x_j),
as in

    Chen, Li, Grosse & Duvenaud (2018), "Isolating Sources of Disentanglement in
    Variational Autoencoders", NeurIPS (β-TCVAE), arXiv:1802.04942.

Every estimator here has the form log q̂(z_i) = log Σ_j w_ij q(z_i|x_j) with a
B×B weight matrix ``w`` (see :func:`log_importance_weights`):

``"mws"`` — minibatch weighted sampling, Chen et al. Eq. (3): w_ij = 1/(N·B).
    This is a *lower bound* of q(z_i) (the derivation keeps only the minibatches
    that contain x_i); even at B = N it equals q(z_i)/N. Each log-density is biased
    down by between log B (well-separated posteriors) and log N (overlapping ones),
    so TC is biased *up* by about (L−1)·log B to (L−1)·log N, exactly (L−1)·log N at
    B = N. Kept because it is the paper's training estimator (the offset barely moves
    gradients); use ``"mss"`` to report numbers.
``"mss"`` — minibatch stratified sampling (Chen et al., appendix). The dataset is
    split into two strata: the sample's own datapoint x_i (known, weight 1/N) and the
    other N−1 datapoints, of which the other B−1 batch members are a uniform sample
    without replacement (importance weight (N−1)/(N(B−1)) each). The weights of a
    row sum to one, q̂(z_i) is unbiased for q(z_i), and at B = N it is exact.
    (This is the textbook two-stratum weighting for sampling without replacement;
    the authors' reference code puts a special weight on one off-diagonal entry per
    row instead, which is not exact at B = N.)

The per-sample KL decomposition (Chen et al. Eq. (2)) is

    log q(z|x) − log p(z) = [log q(z|x) − log q(z)]              index-code MI
                          + [log q(z) − Σ_l log q(z_l)]          total correlation
                          + [Σ_l log q(z_l) − Σ_l log p(z_l)]    dimension-wise KL

whose expectation under p(x) q(z|x) is E_x KL(q(z|x) ‖ p(z)) for a factorised prior.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from ppl_vae._checks import one_of, positive_int
from ppl_vae.math import log_normal_pairwise

ESTIMATORS = ("mws", "mss")


class AggregatePosterior(NamedTuple):
    """Per-sample minibatch estimates of the aggregate posterior at z_i."""

    log_qz: torch.Tensor  # [B]     log q(z_i)
    log_qzj: torch.Tensor  # [B, L]  log q(z_il), one marginal per dimension
    log_prod_qzj: torch.Tensor  # [B]  Σ_l log q(z_il), the product of marginals


class KLDecomposition(NamedTuple):
    """Per-sample terms of the β-TCVAE decomposition (Chen et al. 2018, Eq. (2)), in nats."""

    mutual_information: torch.Tensor  # [B] log q(z|x) − log q(z)
    total_correlation: torch.Tensor  # [B] log q(z) − Σ_l log q(z_l)
    dimwise_kl: torch.Tensor  # [B] Σ_l log q(z_l) − log p(z_l)
    log_qz_given_x: torch.Tensor  # [B] log q(z_i|x_i)
    log_pz: torch.Tensor  # [B] Σ_l log p(z_il)


def diagonal_normal(q, *, needed_by: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loc, scale)`` of a diagonal Gaussian q(z|x) (``Independent(Normal)``).

    Every estimator here needs posteriors in this form; ``needed_by`` names the
    caller in the ValueError raised for any other distribution.
    """
    base = getattr(q, "base_dist", None)
    if isinstance(q, torch.distributions.TransformedDistribution) or not isinstance(
        base, torch.distributions.Normal
    ):
        raise ValueError(
            f"{needed_by} needs diagonal Gaussian posteriors q(z|x) (closed-form "
            f"per-dimension marginals) but got {type(q).__name__}: use a guide with "
            "covariance = 'diagonal' and no flow"
        )
    return base.loc, base.scale


def kl_terms(
    log_qz_given_x: torch.Tensor, aggregate: AggregatePosterior, log_pz: torch.Tensor
) -> KLDecomposition:
    """Chen et al. (2018) Eq. (2) per sample, from its three log-densities (all ``[B]``
    but ``aggregate``): the one place the decomposition's arithmetic is written."""
    return KLDecomposition(
        mutual_information=log_qz_given_x - aggregate.log_qz,
        total_correlation=aggregate.log_qz - aggregate.log_prod_qzj,
        dimwise_kl=aggregate.log_prod_qzj - log_pz,
        log_qz_given_x=log_qz_given_x,
        log_pz=log_pz,
    )


def log_importance_weights(
    batch_size: int, num_data: int, *, estimator: str = "mss"
) -> torch.Tensor:
    """``[B, B]`` matrix of log w_ij with log q̂(z_i) = log Σ_j w_ij q(z_i|x_j).

    Row i weighs the batch's posteriors when evaluating the aggregate posterior at
    the sample drawn from q(z|x_i); see the module docstring for both schemes.
    """
    one_of("estimator", estimator, ESTIMATORS)
    b = positive_int("batch_size", batch_size)
    n = positive_int("num_data", num_data)
    if b > n:
        raise ValueError(
            f"batch_size={b} exceeds num_data={n}: num_data is the size of the whole "
            "dataset the batch was drawn from (without replacement), so it must be >= the batch size"
        )
    if estimator == "mws":
        return torch.full((b, b), -math.log(n * b))
    if b == 1:
        if n > 1:
            raise ValueError(
                "estimator='mss' needs batch_size >= 2 when num_data > 1 (the other "
                "batch members estimate the rest of the dataset): use a larger batch, "
                "or estimator='mws'"
            )
        return torch.zeros(1, 1)
    log_w = torch.full((b, b), math.log((n - 1) / (n * (b - 1))))
    log_w.fill_diagonal_(-math.log(n))
    return log_w


def _check_batch(z, loc, scale) -> None:
    for name, t in (("z", z), ("loc", loc), ("scale", scale)):
        if not torch.is_tensor(t) or t.ndim != 2:
            shape = tuple(t.shape) if hasattr(t, "shape") else type(t).__name__
            raise ValueError(f"{name} has shape {shape}: pass a 2-D tensor [B, L]")
    if z.shape[0] == 0:
        raise ValueError("z is empty: pass at least one posterior sample")
    if loc.shape != z.shape or scale.shape != z.shape:
        raise ValueError(
            f"z, loc and scale must share one shape [B, L]; got z {tuple(z.shape)}, "
            f"loc {tuple(loc.shape)}, scale {tuple(scale.shape)}"
        )


def log_aggregate_posterior(
    z: torch.Tensor,
    loc: torch.Tensor,
    scale: torch.Tensor,
    num_data: int,
    *,
    estimator: str = "mss",
    chunk_size: int | None = None,
) -> AggregatePosterior:
    """Minibatch estimates of log q(z_i) and of the marginals log q(z_il).

    Parameters
    ----------
    z : Tensor ``[B, L]``
        One sample z_i ~ q(z|x_i) per datapoint of the minibatch.
    loc, scale : Tensor ``[B, L]``
        Parameters of the diagonal Gaussian posteriors q(z|x_i).
    num_data : int
        Size N of the dataset the minibatch was drawn from without replacement.
    estimator : {"mss", "mws"}
        Minibatch stratified sampling (Chen et al. 2018, appendix; consistent, exact
        at B = N) or minibatch weighted sampling (Eq. (3); biased, see module notes).
    chunk_size : int, optional
        Evaluate this many rows of the ``[B, B, L]`` pairwise table at a time to
        bound memory; results do not depend on it.

    Returns
    -------
    AggregatePosterior
        ``log_qz`` ``[B]``, ``log_qzj`` ``[B, L]``, ``log_prod_qzj`` ``[B]``.
    """
    _check_batch(z, loc, scale)
    log_w = log_importance_weights(z.shape[0], num_data, estimator=estimator)
    log_w = log_w.to(dtype=z.dtype, device=z.device)
    return log_mixture(z, loc, scale, log_weights=log_w, chunk_size=chunk_size)


def log_mixture(
    z: torch.Tensor,
    loc: torch.Tensor,
    scale: torch.Tensor,
    *,
    log_weights: torch.Tensor | None = None,
    chunk_size: int | None = None,
) -> AggregatePosterior:
    """log Σ_j w_ij N(z_i; loc_j, diag scale_j²) and its per-dimension marginals.

    The one computation behind every aggregate-posterior density here: the
    minibatch estimators pass their ``[M, N]`` weights; without ``log_weights``
    the mixture is uniform, (1/N) Σ_j q(z|x_j) — the exact aggregate posterior of
    N datapoints that ``pv.metrics.elbo_decomposition`` uses.

    Parameters
    ----------
    z : Tensor ``[M, L]``
        Points at which to evaluate.
    loc, scale : Tensor ``[N, L]``
        The mixture's diagonal Gaussian components.
    log_weights : Tensor ``[M, N]``, optional
        Row i weighs the components for point i; uniform 1/N when omitted.
    chunk_size : int, optional
        Rows of the ``[M, N, L]`` pairwise table evaluated at a time (bounds memory);
        results do not depend on it.
    """
    step = z.shape[0] if chunk_size is None else positive_int("chunk_size", chunk_size)
    log_uniform = -math.log(loc.shape[0])
    log_qz, log_qzj = [], []
    for start in range(0, z.shape[0], step):
        rows = slice(start, start + step)
        pair = log_normal_pairwise(z[rows], loc, scale)  # [m, N, L] log q(z_il | x_j)
        if log_weights is None:
            log_qz.append(torch.logsumexp(pair.sum(-1), dim=1) + log_uniform)  # [m]
            log_qzj.append(torch.logsumexp(pair, dim=1) + log_uniform)  # [m, L]
        else:
            w = log_weights[rows]  # [m, N]
            log_qz.append(torch.logsumexp(w + pair.sum(-1), dim=1))
            log_qzj.append(torch.logsumexp(w.unsqueeze(-1) + pair, dim=1))
    log_qzj_t = torch.cat(log_qzj)
    return AggregatePosterior(torch.cat(log_qz), log_qzj_t, log_qzj_t.sum(-1))


def total_correlation(
    z: torch.Tensor,
    loc: torch.Tensor,
    scale: torch.Tensor,
    num_data: int,
    *,
    estimator: str = "mss",
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Per-sample total correlation log q(z_i) − Σ_l log q(z_il), ``[B]`` nats.

    Its mean estimates TC = KL(q(z) ‖ Π_l q(z_l)), term (ii) of Chen et al. (2018)
    Eq. (2). Arguments as in :func:`log_aggregate_posterior`.
    """
    agg = log_aggregate_posterior(
        z, loc, scale, num_data, estimator=estimator, chunk_size=chunk_size
    )
    return agg.log_qz - agg.log_prod_qzj


def kl_decomposition(
    z: torch.Tensor,
    loc: torch.Tensor,
    scale: torch.Tensor,
    num_data: int,
    *,
    estimator: str = "mss",
    log_prior: torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None = None,
    chunk_size: int | None = None,
) -> KLDecomposition:
    """Per-sample index-code MI, total correlation and dimension-wise KL.

    Chen et al. (2018) Eq. (2): for each sample the three terms sum exactly to
    log q(z_i|x_i) − log p(z_i) (the estimator's error cancels between terms), so
    their batch means sum to a Monte Carlo estimate of E_x KL(q(z|x) ‖ p(z)).

    Parameters
    ----------
    z, loc, scale, num_data, estimator, chunk_size
        As in :func:`log_aggregate_posterior`.
    log_prior : Tensor ``[B, L]`` or callable, optional
        Per-dimension prior log density log p(z_il), given as values or as a
        function of ``z`` returning ``[B, L]``; the prior must factorise over
        dimensions. Default: standard normal.

    Returns
    -------
    KLDecomposition
        ``mutual_information``, ``total_correlation``, ``dimwise_kl``,
        ``log_qz_given_x`` and ``log_pz``, each ``[B]``.
    """
    agg = log_aggregate_posterior(
        z, loc, scale, num_data, estimator=estimator, chunk_size=chunk_size
    )
    if log_prior is None:
        log_pzj = torch.distributions.Normal(0.0, 1.0).log_prob(z)
    elif callable(log_prior):
        log_pzj = log_prior(z)
    else:
        log_pzj = torch.as_tensor(log_prior, dtype=z.dtype, device=z.device)
    if log_pzj.shape != z.shape:
        raise ValueError(
            f"log_prior has shape {tuple(log_pzj.shape)} but z has {tuple(z.shape)}: "
            "give the per-dimension prior log density log p(z_il), shape [B, L]"
        )
    log_qz_x = torch.distributions.Normal(loc, scale).log_prob(z).sum(-1)  # [B]
    return kl_terms(log_qz_x, agg, log_pzj.sum(-1))

"""Penalty terms r(·) added to the objective as ``pyro.factor`` sites.

The lecture notes' L_new = −ELBO + λ₁ E_x[r₁(q(z|x))] + λ₂ r₂(q(z)): a penalty
on each posterior (r₁) or on the aggregate posterior (r₂), or on the model's
own parameters (the RD-VAE's repulsion between class means).

Built-in penalties here, in the terms of the KL decomposition of

    Chen, Li, Grosse & Duvenaud (2018), "Isolating Sources of Disentanglement in
    Variational Autoencoders", NeurIPS, arXiv:1802.04942, Eq. (2):

    E_x KL(q(z|x) ‖ p(z)) = I_q(x; z)                 index-code mutual information
                          + KL(q(z) ‖ Π_l q(z_l))      total correlation
                          + Σ_l KL(q(z_l) ‖ p(z_l))    dimension-wise KL

``total_correlation``   r₂: the TC of the aggregate posterior, estimated on the
                        minibatch (``estimator`` = ``"mss"`` | ``"mws"``); with weight
                        β − 1 the objective is the β-TCVAE's, Eq. (4).
``mutual_information``  the index-code MI term, log q(z|x) − log q(z) per sample.
``kl``                  r₁ proper: KL(q(z|x) ‖ p(z)) of each posterior (closed form
                        where torch has one, else the one-sample estimate); weight w
                        turns a VAE into a β-VAE with β = 1 + w.

A spec adds one with a ``[[penalty]]`` table, e.g. the full Chen et al. Eq. (4)
objective with α = 2 (MI), β = 6 (TC), γ = 1 (dimension-wise KL)::

    family = "tcvae"
    beta = 6.0
    [[penalty]]
    kind = "total_correlation"
    estimator = "mss"
    [[penalty]]
    kind = "mutual_information"
    weight = 1.0            # alpha - 1
"""

from __future__ import annotations

import torch

from ppl_vae import _checks
from ppl_vae.estimators import ESTIMATORS, kl_decomposition
from ppl_vae.parts.base import Penalty, PenaltyInputs
from ppl_vae.registry import register


def _diagonal_normal(posterior, *, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loc, scale)`` ``[B, L]`` of a diagonal Gaussian q(z|x) (``Independent(Normal)``)."""
    base = getattr(posterior, "base_dist", None)
    if not isinstance(base, torch.distributions.Normal):
        raise ValueError(
            f"penalty {where!r} needs diagonal Gaussian posteriors q(z|x) but got "
            f"{type(posterior).__name__}: use guide.covariance = 'diagonal'"
        )
    return base.loc, base.scale


def _decomposition_terms(z, posterior, num_data, *, estimator, where):
    """Per-sample Chen et al. (2018) Eq. (2) terms for ``z`` of shape ``[..., B, L]``.

    Leading dimensions (e.g. vectorised particles) are handled one slice at a
    time: each slice is a minibatch of B samples, one per datapoint of the batch.
    """
    loc, scale = _diagonal_normal(posterior, where=where)  # [B, L]
    flat = z.reshape(-1, *z.shape[-2:])  # [S, B, L]
    terms = [
        kl_decomposition(zs, loc, scale, num_data, estimator=estimator) for zs in flat
    ]
    return terms, z.shape[:-1]


class _AggregatePenalty(Penalty):
    """Base of the penalties that need the minibatch estimate of log q(z).

    Works with an amortized guide with diagonal Gaussian posteriors: the
    estimators evaluate q(z_i | x_j) for every pair of the batch from the
    posteriors' means and scales (Chen et al. 2018, Section 3 and appendix).
    """

    needs_posterior = True
    term = ""  # field of estimators.KLDecomposition

    def __init__(self, ctx, *, weight: float = 1.0, estimator: str = "mss"):
        super().__init__(ctx, weight=weight)
        self.estimator = _checks.one_of(f"penalty.{self.part_name}.estimator", estimator, ESTIMATORS)

    def forward(self, inputs: PenaltyInputs) -> torch.Tensor:
        """Per-datapoint value ``[B]`` (``z.shape[:-1]`` in general), in nats."""
        terms, shape = _decomposition_terms(
            inputs.z, inputs.posterior, inputs.num_data,
            estimator=self.estimator, where=self.part_name,
        )
        return torch.stack([getattr(t, self.term) for t in terms]).reshape(shape)

    def check_compatible(self, model) -> None:
        guide = model.q
        covariance = getattr(guide, "covariance", None)
        if not getattr(guide, "amortized", False):
            raise ValueError(
                f"penalty kind={self.part_name!r} needs an amortized guide (the minibatch "
                f"estimate of q(z) pairs every sample with every encoder output), but "
                f"guide.kind={model.spec['guide']['kind']!r}: set guide.kind = 'amortized'"
            )
        if covariance != "diagonal":
            raise ValueError(
                f"penalty kind={self.part_name!r} needs diagonal Gaussian posteriors, but "
                f"guide.covariance={covariance!r}: set guide.covariance = 'diagonal'"
            )


@register("penalty", "total_correlation")
class TotalCorrelation(_AggregatePenalty):
    """Total correlation KL(q(z) ‖ Π_l q(z_l)) of the aggregate posterior (r₂).

    Chen et al. (2018), Eq. (2) term (ii), estimated per sample as
    log q̂(z_i) − Σ_l log q̂(z_il) with minibatch stratified (``"mss"``, appendix)
    or weighted (``"mws"``, Eq. (3)) sampling (:mod:`ppl_vae.estimators`).
    With ``weight`` = β − 1 the model optimises the β-TCVAE objective, Eq. (4).

    Parameters
    ----------
    ctx : Context
    weight : float
        λ₂; the ``tcvae`` family sets it to ``beta - 1``.
    estimator : {"mss", "mws"}
        "mss" is unbiased for q(z) and exact when the batch is the whole dataset;
        "mws" is the paper's training estimator (TC biased up by ~(L−1)·log B).
    """

    term = "total_correlation"


@register("penalty", "mutual_information")
class MutualInformation(_AggregatePenalty):
    """Index-code mutual information I_q(x; z), term (i) of Chen et al. (2018) Eq. (2).

    Per sample log q(z_i|x_i) − log q̂(z_i), with log q̂(z) estimated on the
    minibatch as for :class:`TotalCorrelation`. A weight w gives Eq. (4) with
    α = 1 + w (w < 0 rewards information about the index, as in Eq. (4) with α < 1).

    Parameters
    ----------
    ctx : Context
    weight : float
    estimator : {"mss", "mws"}
    """

    term = "mutual_information"


@register("penalty", "kl")
class PosteriorKL(Penalty):
    """KL(q(z|x) ‖ p(z)) of each posterior: the seed's r₁(q(z|x)).

    Closed form when torch registers one for the pair (Gaussian guide, standard
    normal prior); otherwise the one-sample estimate log q(z|x) − log p(z) at the
    model's z. Weight w on top of the ELBO's own KL gives a β-VAE with β = 1 + w.

    Parameters
    ----------
    ctx : Context
    weight : float
    """

    needs_posterior = True

    def forward(self, inputs: PenaltyInputs) -> torch.Tensor:
        q = inputs.posterior
        p = inputs.prior.distribution(inputs.y)
        try:
            return torch.distributions.kl_divergence(q, p)  # [B]
        except NotImplementedError:
            return q.log_prob(inputs.z) - p.log_prob(inputs.z)

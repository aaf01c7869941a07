"""DIP-VAE's moment-matching penalties (Kumar, Sattigeri & Balakrishnan 2018,
"Variational Inference of Disentangled Latent Concepts from Unlabeled Observations",
ICLR, Section 3).

Both push a covariance matrix Σ of the aggregate posterior towards the identity (the
prior's): with λ_od the off-diagonal and λ_d the diagonal weight,

    penalty(Σ) = λ_od Σ_{i≠j} Σ_ij² + λ_d Σ_i (Σ_ii − 1)².

- DIP-I (``kind = "dip_i"``): Σ = Cov_p(x)[μ(x)], the covariance of the encoder means
  over the minibatch;
- DIP-II (``kind = "dip_ii"``): Σ = Cov_q(z)[z] = E_p(x)[diag σ²(x)] + Cov_p(x)[μ(x)],
  the covariance of z under the minibatch's aggregate posterior.

Covariances are the minibatch's population moments (divided by B). The penalty is one
scalar per minibatch, counted once per datapoint, as the paper adds it to the mean loss.
The paper's dSprites setting is λ_od = 10, λ_d = 100 for DIP-I; disentanglement_lib
sweeps λ_od ∈ {1, 2, 5, 10, 20, 50} with λ_d = 10 λ_od (DIP-I) or λ_d = λ_od (DIP-II).
"""

from __future__ import annotations

import torch

from ppl_vae import _checks
from ppl_vae.estimators import diagonal_normal
from ppl_vae.parts.base import Penalty
from ppl_vae.registry import register


def moment_penalty(cov: torch.Tensor, *, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """λ_od Σ_{i≠j} Σ_ij² + λ_d Σ_i (Σ_ii − 1)² of a covariance ``[L, L]``; a scalar."""
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return lambda_od * off.pow(2).sum() + lambda_d * (diag - 1.0).pow(2).sum()


def mean_covariance(loc: torch.Tensor) -> torch.Tensor:
    """Population covariance ``[L, L]`` of the rows of ``loc`` ``[B, L]``."""
    centred = loc - loc.mean(dim=0, keepdim=True)
    return centred.T @ centred / loc.shape[0]


class _DIP(Penalty):
    needs_posterior = True
    #: True: Σ adds E[diag σ²] to Cov[μ] (DIP-II).
    with_variances = False

    def __init__(self, ctx, *, weight=1.0, lambda_od=10.0, lambda_d=None):
        super().__init__(ctx, weight=weight)
        self.lambda_od = _checks.finite_number("penalty.lambda_od", lambda_od, minimum=0)
        default_d = 10.0 * self.lambda_od if not self.with_variances else self.lambda_od
        self.lambda_d = _checks.finite_number(
            "penalty.lambda_d", default_d if lambda_d is None else lambda_d, minimum=0)

    def covariance(self, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        cov = mean_covariance(loc)
        if self.with_variances:
            cov = cov + torch.diag(scale.pow(2).mean(dim=0))
        return cov

    def forward(self, inputs):
        loc, scale = diagonal_normal(inputs.posterior, needed_by=f"penalty.kind={self.part_name!r}")
        if loc.ndim != 2 or loc.shape[0] < 2:
            raise ValueError(
                f"penalty.kind={self.part_name!r} needs a minibatch of at least 2 encoder "
                f"outputs [B, latent], got shape {tuple(loc.shape)}: use batch_size >= 2"
            )
        return moment_penalty(self.covariance(loc, scale), lambda_od=self.lambda_od,
                              lambda_d=self.lambda_d)

    def check_compatible(self, model) -> None:
        self.require_amortized_guide(model, "acts on the encoder's outputs over a minibatch")


@register("penalty", "dip_i")
class DIPI(_DIP):
    """DIP-VAE-I: the moment penalty on Cov[μ(x)] (module docstring).

    Parameters
    ----------
    weight : float
        Multiplier of the penalty (1: λ_od and λ_d are the paper's weights).
    lambda_od : float, default 10
        λ_od, the weight of the squared off-diagonal covariances.
    lambda_d : float, default 10 λ_od
        λ_d, the weight of the squared deviations of the variances from 1.
    """


@register("penalty", "dip_ii")
class DIPII(_DIP):
    """DIP-VAE-II: the moment penalty on Cov_q[z] = E[diag σ²(x)] + Cov[μ(x)].

    Parameters as for ``dip_i``, except ``lambda_d`` defaults to λ_od.
    """

    with_variances = True

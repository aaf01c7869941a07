"""The Regularized Discriminative VAE's repulsive loss between class means.

Lecture notes, "Regularized Discriminative VAE": with N_C class Gaussians with
means μ_i and ρ the minimum squared distance wanted between them,

    L_rep = (1/ρ) Σ_{i=1..N_C} Σ_{j≠i} max(0, ρ − ‖μ_i − μ_j‖²)²

and Total loss = Reconstruction loss + KL loss + weight · L_rep. The loss acts on
the prior's parameters only, so it is a scalar per datapoint (the model counts it
once for every datapoint, i.e. it sits next to the per-datapoint ELBO in nats).
"""

from __future__ import annotations

import torch

from ppl_vae import _checks
from ppl_vae.parts.base import Penalty
from ppl_vae.registry import register


def repulsive_loss(means: torch.Tensor, *, rho: float) -> torch.Tensor:
    """L_rep of the lecture notes for class means ``[C, L]``; a scalar tensor.

    Each ordered pair (i, j), i ≠ j, contributes max(0, ρ − ‖μ_i − μ_j‖²)² / ρ, so
    an unordered pair closer than √ρ counts twice, as in the notes' double sum.
    Differentiable in ``means``: the gradient pushes pairs that are too close apart.
    """
    rho = _checks.positive_float("rho", rho, fix="pass the minimum squared distance, > 0")
    if means.ndim != 2 or means.shape[0] < 2:
        raise ValueError(
            f"means has shape {tuple(means.shape)}: pass class means [C, latent] with C >= 2"
        )
    diff = means.unsqueeze(0) - means.unsqueeze(1)  # [C, C, L]
    sq_dist = diff.pow(2).sum(-1)  # [C, C]
    off_diag = ~torch.eye(means.shape[0], dtype=torch.bool, device=means.device)
    hinge = torch.clamp(rho - sq_dist[off_diag], min=0.0)  # [C (C - 1)]
    return hinge.pow(2).sum() / rho


@register("penalty", "repulsion")
class Repulsion(Penalty):
    """weight · L_rep on the prior's class means (``prior.kind = "class_conditional"``).

    Parameters
    ----------
    weight : float
        Multiplier of L_rep in the loss (nats per datapoint per unit of L_rep).
    rho : float
        ρ > 0, the minimum squared distance between class means; pairs closer than
        √ρ are pushed apart. With unit-variance class Gaussians in L dimensions a
        ρ of a few times 2L keeps the Gaussians' typical sets apart.
    """

    def __init__(self, ctx, *, weight=1.0, rho=16.0):
        super().__init__(ctx, weight=weight)
        self.rho = _checks.positive_float(
            "penalty.rho", rho, fix="pass the minimum squared distance between class means, > 0"
        )

    def forward(self, inputs):
        return repulsive_loss(inputs.prior.class_means, rho=self.rho)

    def check_compatible(self, model) -> None:
        if not hasattr(model.prior, "class_means"):
            raise ValueError(
                f"penalty.kind='repulsion' acts on class means, but prior.kind="
                f"{model.spec['prior']['kind']!r} has none: use prior.kind='class_conditional' "
                "(family 'rdvae')"
            )

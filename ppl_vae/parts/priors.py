"""Priors p(z): the standard normal, a learned Gaussian mixture, and the RD-VAE's class Gaussians."""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from ppl_vae import _checks
from ppl_vae.parts.base import Prior
from ppl_vae.registry import register


@register("prior", "standard_normal")
class StandardNormal(Prior):
    """p(z) = Norm_z[0, I], the prior of every family in the lecture notes."""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.register_buffer("_zero", torch.zeros(ctx.latent_dim))

    def distribution(self, y=None):
        return dist.Normal(self._zero, torch.ones_like(self._zero)).to_event(1)


def gaussian_mixture(logits, means, scales) -> dist.MixtureSameFamily:
    """Σ_k softmax(logits)_k Norm_z[μ_k, diag s_k²]: ``logits [K]``, ``means``/``scales [K, L]``."""
    components = dist.Normal(means, scales).to_event(1)
    return dist.MixtureSameFamily(dist.Categorical(logits=logits), components)


@register("prior", "mixture")
class GaussianMixturePrior(Prior):
    """A mixture of K learned diagonal Gaussians, p(z) = Σ_k π_k Norm_z[μ_k, diag s_k²].

    Means, scales (by their logs) and the weights' logits are all learned. At the start the
    means are ``spread`` · N(0, I) draws (from the build's seed, so the components begin
    apart), the scales are 1 and the weights uniform; ``components = 1`` with
    ``spread = 0`` starts as the standard normal.

    Parameters
    ----------
    components : int
        K.
    spread : float
        Standard deviation of the initial means around the origin (>= 0).
    """

    def __init__(self, ctx, *, components=10, spread=1.0):
        super().__init__(ctx)
        self.components = _checks.positive_int("prior.components", components)
        spread = _checks.finite_number("prior.spread", spread, minimum=0)
        self.means = nn.Parameter(spread * torch.randn(self.components, ctx.latent_dim))
        self.log_scale = nn.Parameter(torch.zeros(self.components, ctx.latent_dim))
        self.logits = nn.Parameter(torch.zeros(self.components))

    def distribution(self, y=None):
        return gaussian_mixture(self.logits, self.means, self.log_scale.exp())

    def factors(self, *, needed_by):
        """One component factorises (its Normal); a mixture of several does not: ValueError."""
        if self.components == 1:
            return dist.Normal(self.means[0], self.log_scale[0].exp())
        raise ValueError(
            f"{needed_by} needs a prior p(z) that factorises over dimensions, but "
            f"prior.kind='mixture' with components={self.components} couples them: use "
            "prior.kind='standard_normal' (or components=1)"
        )


@register("prior", "class_conditional")
class ClassConditional(Prior):
    """One Gaussian per class: the Regularized Discriminative VAE's latent prior.

    With labels (lecture notes, "Regularized Discriminative VAE")::

        y ~ Cat(π),   z | y ~ Norm_z[μ_y, s_y² I]

    and without labels the class is summed out, p(z) = Σ_c π_c Norm_z[μ_c, s_c² I],
    so the same model scores unlabelled data (and ``pv.infer.log_likelihood`` with
    ``y=None`` estimates the class-marginal log p(x)).

    Parameters
    ----------
    ctx : Context
        Needs ``num_classes`` (the spec's top-level key of the ``rdvae`` family).
    scale : float or "learned"
        s, the standard deviation of every class Gaussian (1.0 is the notes' N(μ_c, I)),
        or ``"learned"``: one learned s_c per class, parameterised by its log.
    spread : float
        Initial distance of each class mean from the origin: means start on random,
        nearly orthogonal directions (drawn from the build's seed) at this radius, so
        classes begin separated and the repulsive loss rarely has to act at the start.
    class_weights : {"uniform", "learned"}
        π fixed uniform, or learned logits.
    """

    class_structured = True

    def __init__(self, ctx, *, scale=1.0, spread=3.0, class_weights="uniform"):
        super().__init__(ctx)
        if not ctx.num_classes or ctx.num_classes < 2:
            raise ValueError(
                f"num_classes={ctx.num_classes!r} is invalid for prior.kind='class_conditional': "
                "set the spec's top-level num_classes to an integer >= 2"
            )
        self.num_classes = ctx.num_classes
        spread = _checks.positive_float("prior.spread", spread)
        _checks.one_of("prior.class_weights", class_weights, ("uniform", "learned"))
        directions = torch.randn(ctx.num_classes, ctx.latent_dim)  # [C, L]
        if ctx.num_classes <= ctx.latent_dim:
            directions = torch.linalg.qr(directions.T).Q.T  # orthonormal rows
        directions = directions / directions.norm(dim=1, keepdim=True)
        self.means = nn.Parameter(spread * directions)  # [C, L]
        if scale == "learned":
            self.log_scale = nn.Parameter(torch.zeros(ctx.num_classes))
        else:
            s = _checks.positive_float(
                "prior.scale", scale, fix="pass a number > 0 (e.g. 1.0) or 'learned'"
            )
            self.register_buffer("log_scale", torch.full((ctx.num_classes,), math.log(s)))
        logits = torch.zeros(ctx.num_classes)
        if class_weights == "learned":
            self.logits = nn.Parameter(logits)
        else:
            self.register_buffer("logits", logits)

    @property
    def class_means(self) -> torch.Tensor:
        """μ, ``[C, latent]``; what the repulsion penalty acts on."""
        return self.means

    def _scales(self) -> torch.Tensor:
        """s_c per class and dimension, ``[C, L]``."""
        return self.log_scale.exp().unsqueeze(-1).expand_as(self.means)

    def distribution(self, y=None):
        """p(z | y) with batch ``[B]`` when labels are given, else the class mixture p(z)."""
        if y is None:
            return gaussian_mixture(self.logits, self.means, self._scales())
        scale = self.log_scale.exp()[y].unsqueeze(-1).expand(*y.shape, self.latent_dim)
        return dist.Normal(self.means[y], scale).to_event(1)

    def label_site(self, y=None):
        if y is not None:
            pyro.sample("y", dist.Categorical(logits=self.logits), obs=y)

    def class_log_joint(self, z: torch.Tensor) -> torch.Tensor:
        """log π_c + log Norm_z[μ_c, s_c² I] for every class: ``[..., C]`` from ``[..., L]``."""
        log_pi = torch.log_softmax(self.logits, dim=-1)  # [C]
        return log_pi + dist.Normal(self.means, self._scales()).to_event(1).log_prob(z.unsqueeze(-2))

    def class_log_posterior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(c | z), ``[..., C]`` (normalised over classes by Bayes' rule)."""
        joint = self.class_log_joint(z)
        return joint - torch.logsumexp(joint, dim=-1, keepdim=True)

"""Priors p(z)."""

from __future__ import annotations

import pyro.distributions as dist
import torch

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

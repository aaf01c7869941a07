"""Likelihoods p(x | z): turn a decoder output into a distribution over x."""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn

from ppl_vae.parts.base import Likelihood
from ppl_vae.registry import register


class IndependentBernoulli(dist.Independent):
    """Independent Bernoulli pixels with a log-density reduced over pixels first.

    log p(x | logits) = Σ_d [x_d · logit_d − softplus(logit_d)], the same value as
    ``Bernoulli(logits).to_event(1).log_prob`` but without materialising the
    negated per-pixel ``[K, N, D]`` tensor and the ``1 − x`` copy that the
    generic path allocates: it is the hot loop of importance sampling.
    """

    def log_prob(self, value):
        if self._validate_args:
            self.base_dist._validate_sample(value)
        logits = self.base_dist.logits
        fit = (logits * value).sum(-1)  # the [K, N, D] product is freed before softplus
        return fit - F.softplus(logits).sum(-1)


@register("likelihood", "bernoulli")
class BernoulliLikelihood(Likelihood):
    """Independent Bernoulli pixels; the decoder outputs logits. Data must be 0/1."""

    binary_data = True

    def distribution(self, out):
        return IndependentBernoulli(dist.Bernoulli(logits=out), 1)

    def check_data(self, x, name="x"):
        if not torch.all((x == 0) | (x == 1)):
            bad = x[(x != 0) & (x != 1)][0].item()
            raise ValueError(
                f"{name} contains {bad:g}, but likelihood.kind='bernoulli' needs 0/1 data: "
                "load it with binarize=True or use likelihood.kind='continuous_bernoulli'"
            )


@register("likelihood", "continuous_bernoulli")
class ContinuousBernoulliLikelihood(Likelihood):
    """Continuous Bernoulli on [0, 1] (Loaiza-Ganem & Cunningham, 2019); logits out."""

    def distribution(self, out):
        # Clamp keeps the normaliser away from its removable singularity at logit 0.
        return dist.ContinuousBernoulli(logits=out.clamp(-15.0, 15.0)).to_event(1)

    def check_data(self, x, name="x"):
        if x.min() < 0 or x.max() > 1:
            raise ValueError(
                f"{name} has values in [{x.min().item():g}, {x.max().item():g}], but "
                "likelihood.kind='continuous_bernoulli' needs data in [0, 1]: rescale the data"
            )


@register("likelihood", "normal")
class NormalLikelihood(Likelihood):
    """Norm_x[f(z), σ²I]: ``scale`` a fixed σ (the notes' "σ² known") or ``"learned"``.

    A learned scale is one σ per data dimension, parameterised by its log.
    """

    def __init__(self, ctx, *, scale=0.1):
        super().__init__(ctx)
        if scale == "learned":
            self.log_scale = nn.Parameter(torch.full((ctx.data_dim,), math.log(0.1)))
        else:
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < math.inf:
                raise ValueError(
                    f"likelihood.scale={scale!r} is invalid: pass a finite number > 0 or 'learned'"
                )
            self.register_buffer("log_scale", torch.full((ctx.data_dim,), math.log(scale)))
        self.learned = scale == "learned"

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    def distribution(self, out):
        return dist.Normal(out, self.scale.expand_as(out)).to_event(1)

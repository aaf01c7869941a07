"""Likelihoods p(x | z): turn a decoder output into a distribution over x.

Continuous and count data here; intensities quantised to levels (``categorical``,
``discretized_logistic``) in :mod:`ppl_vae.parts.discretized`. A likelihood with a
scale takes it fixed (a number), ``"learned"`` (one free value per data dimension) or
``"net"`` (output by the decoder, which then outputs one more block of ``data_dim``
values, see :attr:`Likelihood.params_per_dim`): :class:`ScaledLikelihood` holds that
choice once for every kind.
"""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn

from ppl_vae import _checks
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


#: Lower bound of a scale output by the decoder: σ = softplus(raw) + MIN_SCALE. Without it
#: a net scale on data with repeated values can shrink towards 0 and the density diverge.
MIN_SCALE = 1e-3


class ScaledLikelihood(Likelihood):
    """A likelihood with a positive scale per data dimension (per component for mixtures).

    ``scale`` is a number (fixed: the buffer ``log_scale``), ``"learned"`` (the
    parameter ``log_scale``, one per dimension (and component), starting at
    ``default_scale``) or ``"net"`` (σ = softplus(raw) + :data:`MIN_SCALE` from the
    decoder's blocks). Subclasses call :meth:`_init_scale` and :meth:`scale_of`.
    """

    default_scale = 0.1

    def _init_scale(self, scale, *, components: int | None = None) -> int:
        """Set up the scale, ``[D]`` (``[D, K]`` with K ``components``); returns the decoder
        blocks it takes (1, or K, for "net"; 0 otherwise)."""
        self.scale_kind = scale if scale in ("learned", "net") else "fixed"
        shape = (self.data_dim,) if components is None else (self.data_dim, components)
        if scale == "learned":
            self.log_scale = nn.Parameter(torch.full(shape, math.log(self.default_scale)))
        elif scale != "net":
            sigma = _checks.positive_float(
                "likelihood.scale", scale, fix="pass a finite number > 0, 'learned' or 'net'"
            )
            self.register_buffer("log_scale", torch.full(shape, math.log(sigma)))
        if scale != "net":
            return 0
        return 1 if components is None else components

    @property
    def scale(self) -> torch.Tensor:
        """The fixed or learned σ, ``[D]`` (``[D, K]`` with K components)."""
        if self.scale_kind == "net":
            raise ValueError(
                "likelihood.scale='net': the scale is output by the decoder, so it is a "
                "function of z; read it from model.decode(z)"
            )
        return self.log_scale.exp()

    def scale_of(self, raw: torch.Tensor | None = None) -> torch.Tensor:
        """σ: from the decoder's block(s) ``raw`` when scale='net', else the fixed or learned one."""
        if self.scale_kind == "net":
            return F.softplus(raw) + MIN_SCALE
        return self.log_scale.exp()


@register("likelihood", "normal")
class NormalLikelihood(ScaledLikelihood):
    """Norm_x[f(z), σ²I]: ``scale`` a fixed σ (the notes' "σ² known"), ``"learned"`` or ``"net"``."""

    def __init__(self, ctx, *, scale=0.1):
        super().__init__(ctx)
        self.params_per_dim = 1 + self._init_scale(scale)

    def distribution(self, out):
        loc, *raw = self.blocks(out)
        return dist.Normal(loc, self.scale_of(*raw).expand_as(loc)).to_event(1)


@register("likelihood", "laplace")
class LaplaceLikelihood(ScaledLikelihood):
    """Laplace(f(z), b) per dimension, log p = −log 2b − |x − f(z)| / b; ``scale`` is b.

    Heavier tails than the Normal (an L1 reconstruction loss); the mean is f(z).
    """

    def __init__(self, ctx, *, scale=0.1):
        super().__init__(ctx)
        self.params_per_dim = 1 + self._init_scale(scale)

    def distribution(self, out):
        loc, *raw = self.blocks(out)
        return dist.Laplace(loc, self.scale_of(*raw).expand_as(loc)).to_event(1)


class StudentT(dist.StudentT):
    """Student's t whose ``mean`` refuses df <= 1 (torch returns NaN there: no mean exists)."""

    @property
    def mean(self):
        if bool((self.df <= 1).any()):
            raise ValueError(
                f"likelihood.kind='student_t' with df={float(self.df.min()):g} <= 1 has no mean, "
                "so model.sample(noise=False) is undefined: sample with noise=True, or use df > 1"
            )
        return super().mean


@register("likelihood", "student_t")
class StudentTLikelihood(ScaledLikelihood):
    """Student's t per dimension: location f(z), scale σ, degrees of freedom ν.

    ``df`` is a fixed ν > 0 or ``"learned"`` (one ν per dimension, parameterised by its
    log, starting at 5). ν → ∞ is the Normal; ν = 1 the Cauchy, which has no mean (then
    ``model.sample(noise=False)`` is a ValueError).
    """

    #: ν of ``df = "learned"`` at the start (and the default fixed ν).
    default_df = 5.0

    def __init__(self, ctx, *, scale=0.1, df=default_df):
        super().__init__(ctx)
        self.params_per_dim = 1 + self._init_scale(scale)
        if df == "learned":
            self.log_df = nn.Parameter(torch.full((ctx.data_dim,), math.log(self.default_df)))
        else:
            nu = _checks.positive_float("likelihood.df", df, fix="pass a number > 0 or 'learned'")
            self.register_buffer("log_df", torch.full((ctx.data_dim,), math.log(nu)))

    @property
    def df(self) -> torch.Tensor:
        """ν per dimension, ``[D]``."""
        return self.log_df.exp()

    def distribution(self, out):
        loc, *raw = self.blocks(out)
        scale = self.scale_of(*raw).expand_as(loc)
        return StudentT(self.df.expand_as(loc), loc, scale).to_event(1)


@register("likelihood", "poisson")
class PoissonLikelihood(Likelihood):
    """Independent Poisson counts with rate λ = softplus(f(z)) per dimension.

    Softplus rather than exp: λ grows linearly, not exponentially, in the decoder's
    output, so a large output cannot overflow the rate or its gradient. The mean
    (``model.sample(noise=False)``) is λ, a real number; data are non-negative integers.
    """

    def distribution(self, out):
        (raw,) = self.blocks(out)
        return dist.Poisson(F.softplus(raw)).to_event(1)

    def check_data(self, x, name="x"):
        bad = x[(x < 0) | (x != x.round())]
        if bad.numel():
            raise ValueError(
                f"{name} contains {bad[0].item():g}, but likelihood.kind='poisson' needs counts "
                "(non-negative integers): pass counts, or use likelihood.kind='normal' for real values"
            )

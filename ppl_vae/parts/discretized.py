"""Likelihoods of intensities quantised to ``levels`` values: categorical, discretized logistics.

Data convention, for both kinds: values in [0, 1] on the grid k / (levels − 1),
k = 0 … levels − 1. Images stored as 8-bit integers and divided by 255 are
``levels = 256`` (the default); scikit-learn's digits (0 … 16, divided by 16) are
``levels = 17``; 0/1 data are ``levels = 2``. ``check_data`` refuses any value off
that grid, naming it, and so does ``log_prob`` while Pyro's validation is on.

``model.sample(n, noise=False)`` returns the expected value E[x | z] in [0, 1], which
is in general between two levels (the mean of the quantised distribution, not a level).
"""

from __future__ import annotations

from typing import ClassVar

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch.distributions import constraints

from ppl_vae import _checks
from ppl_vae.parts.base import Likelihood
from ppl_vae.parts.likelihoods import ScaledLikelihood
from ppl_vae.registry import register

#: How far (in units of one level step) a value may sit from its level: float32 k/255 is
#: within 2e-5 steps of k; anything farther is data on another grid.
GRID_TOLERANCE = 1e-3


def off_grid(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Boolean mask of the values of ``x`` that are not on the grid k / (levels − 1) of [0, 1]."""
    steps = x * (levels - 1)
    return (x < 0) | (x > 1) | ((steps - steps.round()).abs() > GRID_TOLERANCE)


def level_index(x: torch.Tensor, levels: int) -> torch.Tensor:
    """k for x = k / (levels − 1), as int64."""
    return (x * (levels - 1)).round().long()


class _Grid(constraints.Constraint):
    """The support {0, 1/(L−1), …, 1} of one dimension."""

    def __init__(self, levels: int):
        super().__init__()
        self.levels = levels

    def check(self, value):
        return ~off_grid(value, self.levels)


class QuantizedLikelihood(Likelihood):
    """Base of the kinds whose data are the ``levels`` values k / (levels − 1) of [0, 1]."""

    def _init_levels(self, levels) -> int:
        self.levels = _checks.positive_int(
            "likelihood.levels", levels, minimum=2,
            fix="pass the number of grey levels of the data, an integer >= 2 (256 for 8-bit images)",
        )
        return self.levels

    def check_data(self, x, name="x"):
        bad = x[off_grid(x, self.levels)]
        if bad.numel():
            step = self.levels - 1
            raise ValueError(
                f"{name} contains {bad[0].item():g}, which is not one of the {self.levels} levels "
                f"k/{step} of [0, 1] that likelihood.kind={self.part_name!r} (levels={self.levels}) "
                f"models: quantise the data, e.g. torch.round(x * {step}) / {step}, or set "
                "likelihood.levels to the data's number of levels"
            )


class _Quantized(dist.TorchDistribution):
    """Shared plumbing: parameters ``[..., D, P]``, batch ``[...]``, event ``[D]``, grid support."""

    arg_constraints: ClassVar[dict] = {}

    def __init__(self, params: dict[str, torch.Tensor], levels: int, validate_args=None):
        self.params, self.levels = params, levels
        first = next(iter(params.values()))
        super().__init__(first.shape[:-2], first.shape[-2:-1], validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.independent(_Grid(self.levels), 1)

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape)
        params = {k: v.expand(shape + v.shape[-2:]) for k, v in self.params.items()}
        return type(self)(params, self.levels)

    def _grid(self) -> torch.Tensor:
        """The level values k / (L − 1), ``[L]``."""
        first = next(iter(self.params.values()))
        return torch.linspace(0, 1, self.levels, dtype=first.dtype, device=first.device)


class QuantizedCategorical(_Quantized):
    """A categorical over the levels per dimension: p(x = k/(L−1)) = softmax(logits)_k.

    ``params = {"logits": [..., D, L]}``.
    """

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logp = self.params["logits"].log_softmax(-1)  # [..., D, L]
        k = level_index(value, self.levels).unsqueeze(-1)  # [..., D, 1]
        shape = torch.broadcast_shapes(k.shape[:-1], logp.shape[:-1])
        picked = logp.expand(*shape, self.levels).gather(-1, k.expand(*shape, 1))
        return picked.squeeze(-1).sum(-1)

    def sample(self, sample_shape=()):
        k = torch.distributions.Categorical(logits=self.params["logits"]).sample(sample_shape)
        return k.to(self._grid().dtype) / (self.levels - 1)

    @property
    def mean(self):
        return self.params["logits"].softmax(-1) @ self._grid()


def discretized_logistic_log_prob(x, loc, scale, levels: int) -> torch.Tensor:
    """log P(x) for x on the grid k/(L−1) under Logistic(loc, scale) discretized to L bins.

    Bin k is [x − h, x + h] with h = 1 / (2(L − 1)), except that the first bin takes the
    lower tail (−∞, h] and the last the upper tail [1 − h, ∞) (Salimans et al. 2017, Eq. 2).
    With a = (x + h − μ)/s and b = (x − h − μ)/s, σ(a) − σ(b) = σ(a)(1 − σ(b))(1 − e^{b−a}),
    so log P = −softplus(−a) − softplus(b) + log(1 − e^{−1/((L−1)s)}), in which the first
    bin drops the terms of its missing lower edge (the last two) and the last bin those of
    its missing upper edge (the first and the third). Exact, with no cancellation.
    """
    h = 0.5 / (levels - 1)
    a, b = (x + h - loc) / scale, (x - h - loc) / scale
    first, last = x <= h, x >= 1 - h
    log_upper = torch.where(last, 0.0, -F.softplus(-a))  # log F(x + h)
    log_lower = torch.where(first, 0.0, -F.softplus(b))  # log(1 − F(x − h))
    width = torch.log(-torch.expm1(-1.0 / ((levels - 1) * scale)))
    return log_upper + log_lower + torch.where(first | last, 0.0, width)


class DiscretizedLogisticMixture(_Quantized):
    """K logistics per dimension, each discretized to the L levels (Salimans et al. 2017).

    ``params = {"logits", "loc", "scale"}``, each ``[..., D, K]``: mixture weights,
    locations (in data units) and scales of the logistics.
    """

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        p = self.params
        comp = discretized_logistic_log_prob(value.unsqueeze(-1), p["loc"], p["scale"], self.levels)
        return torch.logsumexp(p["logits"].log_softmax(-1) + comp, -1).sum(-1)

    def sample(self, sample_shape=()):
        p = self.params
        k = torch.distributions.Categorical(logits=p["logits"]).sample(sample_shape).unsqueeze(-1)
        shape = k.shape[:-1] + p["loc"].shape[-1:]
        loc = p["loc"].expand(shape).gather(-1, k).squeeze(-1)
        scale = p["scale"].expand(shape).gather(-1, k).squeeze(-1)
        y = loc + scale * torch.logit(torch.rand_like(loc))  # a logistic draw
        # The bin of y: rounding to the nearest level, with the tails clamped into the edge bins.
        return (y.clamp(0, 1) * (self.levels - 1)).round() / (self.levels - 1)

    @property
    def mean(self):
        # E[k] = Σ_{j≥1} P(k ≥ j), and P(k ≥ j) = 1 − F(t_j) = σ((μ − t_j)/s), t_j = (j − ½)/(L − 1).
        p, step = self.params, self.levels - 1
        t = (self._grid()[1:] - 0.5 / step)  # [L − 1]
        tails = torch.sigmoid((p["loc"].unsqueeze(-1) - t) / p["scale"].unsqueeze(-1))
        component_means = tails.sum(-1) / step  # [..., D, K]
        return (p["logits"].softmax(-1) * component_means).sum(-1)


@register("likelihood", "categorical")
class CategoricalLikelihood(QuantizedLikelihood):
    """One categorical over ``levels`` intensities per dimension; the decoder outputs the logits
    (``levels`` blocks of ``data_dim``). No scale: the logits are the whole distribution."""

    def __init__(self, ctx, *, levels=256):
        super().__init__(ctx)
        self.params_per_dim = self._init_levels(levels)

    def distribution(self, out):
        logits = torch.stack(self.blocks(out), -1)  # [..., D, L]
        return QuantizedCategorical({"logits": logits}, self.levels)


@register("likelihood", "discretized_logistic")
class DiscretizedLogisticLikelihood(QuantizedLikelihood, ScaledLikelihood):
    """A mixture of ``components`` discretized logistics per dimension (PixelCNN++'s likelihood,
    without its dependence between colour channels).

    The decoder outputs K mixture logits and K locations per dimension, and with
    ``scale = "net"`` (the default, as in Salimans et al.) K scales; ``"learned"`` is one
    free scale per dimension and component, a number fixes it.
    """

    def __init__(self, ctx, *, components=5, levels=256, scale="net"):
        super().__init__(ctx)
        self.components = _checks.positive_int("likelihood.components", components)
        self._init_levels(levels)
        self.params_per_dim = 2 * self.components + self._init_scale(scale, components=self.components)

    def distribution(self, out):
        k = self.components
        blocks = self.blocks(out)
        logits, loc = torch.stack(blocks[:k], -1), torch.stack(blocks[k : 2 * k], -1)
        raw = torch.stack(blocks[2 * k :], -1) if self.scale_kind == "net" else None
        params = {"logits": logits, "loc": loc, "scale": self.scale_of(raw).expand_as(loc)}
        return DiscretizedLogisticMixture(params, self.levels)

"""Normalizing flows on a Gaussian guide: q(z|x) = push-forward of Norm[μ, Σ] by f_K ∘ … ∘ f_1.

Built from Pyro's own transforms (``pyro.distributions.transforms``): inverse
autoregressive flows (Kingma et al., 2016), planar and radial flows (Rezende &
Mohamed, 2015). On an amortized guide each transform is conditioned on x
(its parameters are functions of x: the flow is amortized too); on a local
guide the transforms are shared by all datapoints.

The spec is a table inside ``[guide]``::

    [guide.flow]
    kind = "iaf"          # iaf | planar | radial
    layers = 2
    hidden = [64]         # the transforms' hypernetwork / autoregressive network widths

What a flow changes for the rest of the package: the entropy of q(z|x) has no
closed form and the mean is estimated by sampling (``pv.infer.project`` with
``method="mean"`` averages draws); ``log_prob`` of points the guide did not
draw itself needs the inverse, which IAF has (one pass per latent coordinate)
and planar/radial flows lack, so an aggregated posterior of a planar or radial
guide can be sampled but not evaluated; ``pv.metrics.elbo_decomposition`` and
the minibatch TC/MI estimators need a diagonal Gaussian q(z|x) and refuse a
flow with a ``ValueError``.
"""

from __future__ import annotations

import pyro.distributions as dist
import pyro.distributions.transforms as T
import torch
from torch import nn

from ppl_vae import _checks

FLOWS = ("iaf", "planar", "radial")
_KEYS = ("kind", "layers", "hidden")


def _spec(flow, where: str) -> tuple[str, int, list[int]]:
    if not isinstance(flow, dict):
        raise ValueError(
            f"{where}={_checks._short(flow)} is invalid: pass a table such as "
            '{kind = "iaf", layers = 2, hidden = [64]}'
        )
    unknown = sorted(set(flow) - set(_KEYS))
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {unknown}; valid keys: {list(_KEYS)}")
    if "kind" not in flow:
        raise ValueError(f"{where} needs a kind: one of {', '.join(FLOWS)}")
    kind = _checks.one_of(f"{where}.kind", flow["kind"], FLOWS)
    layers = _checks.positive_int(f"{where}.layers", flow.get("layers", 2))
    _checks.shallow(f"{where}.layers", layers)
    hidden = flow.get("hidden", [64])
    if not isinstance(hidden, (list, tuple)) or not hidden:
        raise ValueError(f"{where}.hidden={hidden!r} is invalid: pass a non-empty list of widths")
    _checks.shallow(f"{where}.hidden", len(hidden) + 1)
    widths = [_checks.positive_int(f"{where}.hidden[{i}]", h) for i, h in enumerate(hidden)]
    return kind, layers, widths


class Flow(nn.Module):
    """A stack of Pyro transforms; conditional on a context (x) when ``context_dim`` is given."""

    def __init__(self, latent_dim: int, flow: dict, *, context_dim: int | None = None,
                 where: str = "guide.flow"):
        super().__init__()
        self.kind, layers, hidden = _spec(flow, where)
        # the hypernetwork / autoregressive net of each layer: (latent + context) ->
        # hidden -> (mean, scale) per coordinate, its masks as large as its weights
        _checks.network_within_budget(f"{where}.hidden",
                                      [latent_dim + (context_dim or 0), *hidden, 2 * latent_dim],
                                      stacks=layers, copies=2)
        self.conditional = context_dim is not None
        self.transforms = nn.ModuleList(
            [self._layer(latent_dim, context_dim, hidden) for _ in range(layers)]
        )
        # autoregressive layers alternate the coordinate order, so every coordinate
        # gets to depend on every other (a buffer: it follows the module's device)
        self.register_buffer("reverse", torch.arange(latent_dim - 1, -1, -1))

    def _layer(self, latent_dim, context_dim, hidden):
        if self.kind == "iaf":
            if context_dim is None:
                return T.affine_autoregressive(latent_dim, hidden_dims=hidden)
            return T.conditional_affine_autoregressive(latent_dim, context_dim, hidden_dims=hidden)
        make = {"planar": (T.planar, T.conditional_planar),
                "radial": (T.radial, T.conditional_radial)}[self.kind]
        if context_dim is None:
            return make[0](latent_dim)
        return make[1](latent_dim, context_dim, hidden_dims=hidden)

    def forward(self, base: torch.distributions.Distribution, context=None):
        """The flow's push-forward of ``base`` (batch ``[B]``, event ``[latent]``)."""
        transforms = []
        for i, t in enumerate(self.transforms):
            if i and self.kind == "iaf" and len(self.reverse) > 1:
                transforms.append(T.Permute(self.reverse))
            transforms.append(t.condition(context) if isinstance(t, dist.ConditionalTransformModule)
                              else t)
        return dist.TransformedDistribution(base, transforms)

"""Per-datapoint flows for local guides: q*(z | θᵢ) = Norm[μᵢ, diag σᵢ²] pushed through fᵢ.

The transforms are Pyro's own conditional ones (``ConditionalPlanar``,
``ConditionalRadial``: Rezende & Mohamed, 2015), whose "network" is any callable
from a context to the transform's parameters. Here the context is the datapoint
index and the network a :class:`ParameterTable` with one free row of parameters
per datapoint, so every datapoint has its own flow and no flow algebra is
written in this package. Inverse autoregressive flows are not offered: their
per-datapoint version would need an autoregressive network per datapoint.
"""

from __future__ import annotations

import math

import pyro.distributions.transforms as T
import torch
from pyro.distributions.transforms.planar import ConditionedPlanar
from pyro.distributions.transforms.radial import ConditionedRadial

from ppl_vae import _checks

#: kind -> (Pyro's conditional transform, the class of its conditioned form)
KINDS = {
    "planar": (T.ConditionalPlanar, ConditionedPlanar),
    "radial": (T.ConditionalRadial, ConditionedRadial),
}
_FIX = "pass flow=None or a table {'kind': 'planar' | 'radial', 'layers': K}"
_PLANAR_IDENTITY = math.log(math.e - 1.0)  # softplus(c) = 1: u·w = c makes Pyro's û zero


def check(flow) -> tuple[str, int] | None:
    """``(kind, layers)`` of a local flow table, None for ``flow=None``; else a ValueError.

    ``hidden`` is accepted and ignored (a table has no hidden layers), so an
    amortized guide's ``[guide.flow]`` table can be passed as it is.
    """
    if flow is None:
        return None
    if not isinstance(flow, dict):
        raise ValueError(f"flow={_checks._short(flow)} is invalid: {_FIX}")
    unknown = sorted(set(flow) - {"kind", "layers", "hidden"})
    if unknown:
        raise ValueError(f"flow={_checks._short(flow)} has unknown key(s) {unknown}: {_FIX}")
    kind = flow.get("kind")
    if kind == "iaf":
        raise ValueError(
            f"flow={_checks._short(flow)}: a local inverse autoregressive flow is not offered "
            "(it would need an autoregressive network per datapoint); use kind 'planar' or "
            "'radial', or flow=None"
        )
    if kind not in KINDS:
        raise ValueError(f"flow={_checks._short(flow)} has unknown kind {kind!r}: {_FIX}")
    return kind, _checks.positive_int("flow.layers", flow.get("layers", 2))


class ParameterTable:
    """The "hypernetwork" of one per-datapoint flow layer: indices ``[N]`` -> parameter rows.

    ``params`` are ``[N, k]`` tensors (Pyro's parameter tuple of the transform,
    one row per datapoint), made free leaves of the optimisation; ``lead`` are the
    size-1 dims of plates nested inside the datapoint plate.
    """

    def __init__(self, params, lead: tuple = ()):
        self.params = [p.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
                       for p in params]
        self.lead = tuple(lead)

    def __call__(self, index: torch.Tensor) -> tuple:
        return tuple(p[index].reshape(index.shape + self.lead + p.shape[1:]) for p in self.params)


def identity(kind: str, layers: int, loc: torch.Tensor) -> list[list[torch.Tensor]]:
    """Per-datapoint parameters of ``layers`` transforms that start as the identity.

    Planar: b = 0, w drawn N(0, 1/latent) (the global RNG), u = c·w/|w|² with
    softplus(c) = 1, so Pyro's invertible û = 0 and f(z) = z while every
    parameter still gets a gradient. Radial: z₀ = μᵢ, α' = β' = 0, so β = 0.
    """
    n, latent = loc.shape
    layers_params = []
    for _ in range(layers):
        if kind == "planar":
            w = torch.randn_like(loc) / math.sqrt(latent)
            u = _PLANAR_IDENTITY * w / w.pow(2).sum(-1, keepdim=True)
            layers_params.append([loc.new_zeros(n, 1), u, w])
        else:
            layers_params.append([loc.clone(), loc.new_zeros(n, 1), loc.new_zeros(n, 1)])
    return layers_params


def from_guide(q, kind: str, layers: int, n: int):
    """``(loc, scale, params)`` read off an amortized guide's q(z|x), or None.

    Only when q is a diagonal Gaussian pushed through exactly ``layers``
    transforms of ``kind`` (conditioned on x, or shared): then each datapoint's
    Gaussian and flow start at the guide's outputs for it, and the local guide
    starts exactly at q(z|xᵢ).
    """
    if not isinstance(q, torch.distributions.TransformedDistribution):
        return None
    conditioned = KINDS[kind][1]
    if len(q.transforms) != layers or not all(isinstance(t, conditioned) for t in q.transforms):
        return None
    base = q.base_dist
    normal = base.base_dist if isinstance(base, torch.distributions.Independent) else None
    if not isinstance(normal, torch.distributions.Normal) or base.reinterpreted_batch_ndims != 1:
        return None
    params = []
    for t in q.transforms:
        # Pyro's conditioned transforms hold their parameter tuple (or a callable
        # giving it) in _params: per datapoint [N, k], or shared [k]
        tup = t._params() if callable(t._params) else t._params
        rows = [p.reshape(-1, p.shape[-1]) for p in tup]
        if any(r.shape[0] not in (1, n) for r in rows):
            return None
        params.append([r.expand(n, -1) for r in rows])
    return normal.loc.reshape(n, -1), normal.scale.reshape(n, -1), params

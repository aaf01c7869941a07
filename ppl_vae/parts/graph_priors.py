"""Priors of the latents of a model graph: p(z | parents) for one ``[latent.NAME]`` table.

A model graph (``[latent.*]`` tables, see :mod:`ppl_vae.models.graph_spec`) gives
every latent its own prior part, registered under the part kind ``latent_prior``.
A part receives a :class:`LatentContext` (its latent's size and the width of its
parents' values, concatenated in the order ``parents`` lists them; a categorical
parent enters as a one-hot row) and returns p(z | parents) with event shape
``[dim]`` from :meth:`LatentPrior.distribution`.

- ``standard_normal``: Norm_z[0, I] (a root latent);
- ``normal``: Norm_z[μ(pa), diag s²] with μ an MLP of the parents (``hidden = []`` is
  linear), ``scale`` a number, ``"learned"`` (one free s per dimension) or ``"net"``
  (output by the MLP); on a root latent μ is a learned vector;
- ``class_conditional``: Norm_z[μ_y, s_y² I], one Gaussian per class of the latent's one
  categorical parent (the RD-VAE's prior);
- ``mixture``: Σ_k π_k Norm_z[μ_k, diag s_k²] with K = ``components`` learned
  Gaussians (a root latent);
- ``vamp``: the VampPrior (Tomczak & Welling, 2018), p(z) = (1/K) Σ_k q(z | u_k) with
  K learned pseudo-inputs u_k pushed through this latent's own encoder;
- any of these with a ``flow = {kind = "iaf", layers, hidden}`` key: the push-forward
  of that prior by masked autoregressive layers (:class:`FlowLatent`).

A prior that is linear-Gaussian in its parents says so with :meth:`LatentPrior.gaussian`
(weight, offset, scale), which the closed-form log p(x) of a linear-Gaussian graph reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro.distributions as dist
import torch
from torch import nn

from ppl_vae import _checks
from ppl_vae.math import softplus_scale
from ppl_vae.parts.flows import Flow
from ppl_vae.parts.networks import mlp
from ppl_vae.registry import register


@dataclass(frozen=True)
class LatentContext:
    """What a latent's prior needs: its name, size, its parents' width and the data size."""

    name: str
    dim: int
    parent_dim: int
    data_dim: int
    #: The classes of the parent when the latent's only parent is categorical, else None.
    num_classes: int | None = None


class LatentPrior(nn.Module):
    """p(z | parents) of one latent of a model graph."""

    #: The prior reads its latent's encoder (:meth:`attach` is called after the guide is built).
    needs_encoder: bool = False

    def attach(self, encoder) -> None:
        """Hand the prior its latent's encoder (x -> q(z | x)); only when ``needs_encoder``."""
        raise NotImplementedError(f"latent {self.name!r}: this prior reads no encoder")

    def __init__(self, ctx: LatentContext):
        super().__init__()
        self.name, self.dim, self.parent_dim = ctx.name, ctx.dim, ctx.parent_dim

    def distribution(self, parents: torch.Tensor | None) -> dist.Distribution:
        """p(z | parents), event ``[dim]``; ``parents`` is ``[..., parent_dim]`` or None (a root)."""
        raise NotImplementedError

    def gaussian(self) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """``(W [dim, parent_dim] or None, b [dim], s [dim])`` with z = W·pa + b + s·ε.

        Raises NotImplementedError naming the latent when p(z | parents) is not of that form.
        """
        raise NotImplementedError(
            f"latent {self.name!r}: prior.kind={self.part_name!r} is not linear-Gaussian in its "
            "parents, so the graph has no closed-form log p(x); estimate it with "
            "pv.infer.log_likelihood"
        )

    def gaussian_components(self) -> list[tuple]:
        """``[(log weight, W, b, scale)]``: p(z | parents) as a mixture of linear-Gaussian
        conditionals (one component, weight 0, by default); ``scale`` is a vector of
        standard deviations or a lower-triangular Cholesky factor."""
        return [(0.0, *self.gaussian())]

    def _root_only(self) -> None:
        if self.parent_dim:
            raise ValueError(
                f"latent.{self.name}.prior.kind={self.part_name!r} takes no parents, but the "
                f"latent has parents: use prior.kind = 'normal', or drop latent.{self.name}.parents"
            )


def _learned_or_fixed(module: nn.Module, scale, dim: int, where: str, *, net: bool):
    """Register ``log_scale`` as a parameter ("learned") or buffer (a number); "net": none."""
    if scale == "learned":
        module.log_scale = nn.Parameter(torch.zeros(dim))
    elif scale == "net" and net:
        module.log_scale = None
    else:
        allowed = "a number > 0, 'learned' or 'net'" if net else "a number > 0 or 'learned'"
        value = _checks.positive_float(f"{where}.scale", scale, fix=f"pass {allowed}")
        module.register_buffer("log_scale", torch.full((dim,), math.log(value)))


@register("latent_prior", "standard_normal")
class StandardNormalLatent(LatentPrior):
    """p(z) = Norm_z[0, I]."""

    def __init__(self, ctx):
        super().__init__(ctx)
        self._root_only()
        self.register_buffer("_zero", torch.zeros(ctx.dim))

    def distribution(self, parents=None):
        return dist.Normal(self._zero, torch.ones_like(self._zero)).to_event(1)

    def gaussian(self):
        return None, self._zero, torch.ones_like(self._zero)


@register("latent_prior", "normal")
class ConditionalNormal(LatentPrior):
    """p(z | pa) = Norm_z[μ(pa), diag s²]: μ an MLP of the concatenated parents.

    Parameters
    ----------
    hidden : list of int
        The MLP's widths; ``[]`` makes μ linear in the parents.
    activation : str
    scale : float, "learned" or "net"
        s fixed, one learned s per dimension (independent of the parents), or
        output by the MLP beside μ (softplus of a second head; needs parents).
    """

    def __init__(self, ctx, *, hidden=(), activation="tanh", scale="learned"):
        super().__init__(ctx)
        where = f"latent.{ctx.name}.prior"
        self.net_scale = scale == "net"
        if self.net_scale and not ctx.parent_dim:
            raise ValueError(
                f"{where}.scale='net' needs parents to compute the scale from: latent "
                f"{ctx.name!r} is a root; pass scale = 'learned' or a number"
            )
        _learned_or_fixed(self, scale, ctx.dim, where, net=True)
        if ctx.parent_dim:
            out = ctx.dim * (2 if self.net_scale else 1)
            self.net = mlp(ctx.parent_dim, list(hidden), out, activation, where=where)
        else:
            if list(hidden):
                raise ValueError(
                    f"{where}.hidden={list(hidden)!r}: latent {ctx.name!r} has no parents for an "
                    "MLP to read; pass hidden = [] (a learned mean)"
                )
            self.net = None
            self.loc = nn.Parameter(torch.zeros(ctx.dim))

    def distribution(self, parents=None):
        if self.net is None:
            return dist.Normal(self.loc, self.log_scale.exp()).to_event(1)
        out = self.net(parents)
        if self.net_scale:
            return dist.Normal(out[..., : self.dim], softplus_scale(out[..., self.dim:])).to_event(1)
        return dist.Normal(out, self.log_scale.exp().expand_as(out)).to_event(1)

    def gaussian(self):
        linear = self.net is None or len(self.net) == 1
        if not linear or self.net_scale:
            why = "its mean is an MLP (hidden != [])" if not linear else "its scale is output by the net"
            raise NotImplementedError(
                f"latent {self.name!r} is not linear-Gaussian: {why}, so the graph has no "
                "closed-form log p(x); estimate it with pv.infer.log_likelihood"
            )
        scale = self.log_scale.exp()
        if self.net is None:
            return None, self.loc, scale
        return self.net[0].weight, self.net[0].bias, scale


@register("latent_prior", "class_conditional")
class ClassConditionalLatent(LatentPrior):
    """p(z | y) = Norm_z[μ_y, s_y² I]: one Gaussian per class of the latent's categorical parent.

    The RD-VAE's prior on a graph latent whose only parent is a categorical input or
    latent (summed out with it when the class is unobserved).

    Parameters
    ----------
    scale : float or "learned"
        s for every class, or one learned s_y per class.
    spread : float
        The means start at this distance from the origin on random, nearly orthogonal
        directions (from the build's seed).
    """

    def __init__(self, ctx, *, scale=1.0, spread=3.0):
        super().__init__(ctx)
        where = f"latent.{ctx.name}.prior"
        if ctx.num_classes is None:
            raise ValueError(
                f"{where}.kind='class_conditional' needs exactly one parent, a categorical input "
                f"or latent: set latent.{ctx.name}.parents = ['<its name>']"
            )
        spread = _checks.positive_float(f"{where}.spread", spread)
        directions = torch.randn(ctx.num_classes, ctx.dim)
        if ctx.num_classes <= ctx.dim:
            directions = torch.linalg.qr(directions.T).Q.T
        self.means = nn.Parameter(spread * directions / directions.norm(dim=1, keepdim=True))
        self.learned = scale == "learned"
        _learned_or_fixed(self, scale, ctx.num_classes, where, net=False)

    def distribution(self, parents=None):
        loc = parents @ self.means  # parents: one-hot rows [..., C]
        scale = (parents @ self.log_scale).exp().unsqueeze(-1).expand_as(loc)
        return dist.Normal(loc, scale).to_event(1)

    def gaussian(self):
        if self.learned:
            raise NotImplementedError(
                f"latent {self.name!r} is not linear-Gaussian in its parent: its scale is "
                "learned per class; estimate log p(x) with pv.infer.log_likelihood"
            )
        scale = self.log_scale[0].exp().expand(self.dim)
        return self.means.T, torch.zeros_like(scale), scale


@register("latent_prior", "mixture")
class MixtureLatent(LatentPrior):
    """p(z) = Σ_k π_k Norm_z[μ_k, diag s_k²]: K = ``components`` learned Gaussians.

    Parameters
    ----------
    components : int
        K.
    spread : float
        The initial means are ``spread`` · standard-normal draws (from the build's seed);
        0 puts every component at the origin.
    scale : float
        The initial standard deviation of every component (learned from there).
    weights : {"uniform", "learned"}
        π fixed uniform, or learned logits.
    """

    def __init__(self, ctx, *, components=10, spread=1.0, scale=1.0, weights="uniform"):
        super().__init__(ctx)
        self._root_only()
        where = f"latent.{ctx.name}.prior"
        k = _checks.positive_int(f"{where}.components", components)
        spread = _checks.finite_number(f"{where}.spread", spread, minimum=0,
                                       fix="pass a number >= 0")
        scale = _checks.positive_float(f"{where}.scale", scale)
        _checks.one_of(f"{where}.weights", weights, ("uniform", "learned"))
        self.means = nn.Parameter(spread * torch.randn(k, ctx.dim))
        self.log_scales = nn.Parameter(torch.full((k, ctx.dim), math.log(scale)))
        logits = torch.zeros(k)
        if weights == "learned":
            self.logits = nn.Parameter(logits)
        else:
            self.register_buffer("logits", logits)

    def distribution(self, parents=None):
        comps = dist.Normal(self.means, self.log_scales.exp()).to_event(1)
        return dist.MixtureSameFamily(dist.Categorical(logits=self.logits), comps)


    def gaussian_components(self):
        log_pi = torch.log_softmax(self.logits, 0)
        return [(log_pi[k], None, self.means[k], self.log_scales[k].exp())
                for k in range(self.means.shape[0])]


@register("latent_prior", "vamp")
class VampLatent(LatentPrior):
    """The VampPrior: p(z) = (1/K) Σ_k q(z | u_k) with K learned pseudo-inputs u_k.

    The u_k are data-shaped parameters, started at 0.5 + 0.01·ε (the middle of [0, 1]
    data); q is this latent's own encoder, which the model attaches after building
    its guide (:meth:`attach`). The encoder must read x alone.

    Parameters
    ----------
    components : int
        K, the number of pseudo-inputs.
    """

    needs_encoder = True

    def __init__(self, ctx, *, components=50):
        super().__init__(ctx)
        self._root_only()
        k = _checks.positive_int(f"latent.{ctx.name}.prior.components", components)
        self.pseudo_inputs = nn.Parameter(0.5 + 0.01 * torch.randn(k, ctx.data_dim))
        self._encoder = None

    def attach(self, encoder) -> None:
        """Use ``encoder`` (x ``[..., D]`` -> q(z | x)) for the pseudo-inputs (not a submodule)."""
        self.__dict__["_encoder"] = encoder

    def components(self) -> dist.Distribution:
        """q(z | u_k) for every pseudo-input: batch ``[K]``, event ``[dim]``."""
        if self._encoder is None:
            raise ValueError(f"latent {self.name!r}: the VampPrior has no encoder attached")
        q = self._encoder(self.pseudo_inputs)
        if isinstance(q, dist.TransformedDistribution):
            raise ValueError(
                f"latent.{self.name}.prior.kind='vamp' needs a Gaussian q(z|x) for its mixture, "
                f"but the encoder of {self.name!r} has a flow: drop guide.flow for this latent"
            )
        return q

    def distribution(self, parents=None):
        q = self.components()
        logits = self.pseudo_inputs.new_zeros(q.batch_shape)
        return dist.MixtureSameFamily(dist.Categorical(logits=logits), q)


    def gaussian_components(self):
        q = self.components()
        base = q.base_dist if isinstance(q, dist.Independent) else q
        scales = base.scale if isinstance(q, dist.Independent) else base.scale_tril
        k = q.batch_shape[0]
        return [(-math.log(k), None, base.loc[i], scales[i]) for i in range(k)]


class ClassPrior(nn.Module):
    """p(y) = Cat(π) of a categorical latent: π uniform, or learned logits."""

    needs_encoder = False

    def __init__(self, num_classes: int, weights: str, where: str):
        super().__init__()
        _checks.one_of(f"{where}.class_weights", weights, ("uniform", "learned"))
        logits = torch.zeros(num_classes)
        if weights == "learned":
            self.logits = nn.Parameter(logits)
        else:
            self.register_buffer("logits", logits)

    def distribution(self, parents=None) -> dist.Distribution:
        return dist.Categorical(logits=self.logits)


class FlowLatent(LatentPrior):
    """A prior pushed forward by a flow: z = f(u), u ~ p_base(u | parents), so
    log p(z | pa) = log p_base(f⁻¹(z) | pa) + log |det ∂f⁻¹/∂z|.

    The layers are Pyro's affine autoregressive transforms used in the density
    direction (f⁻¹ is one network pass per layer, as in a masked autoregressive flow):
    evaluating log p(z) at the guide's draws, which training does every step, is
    cheap; ancestral sampling inverts each layer coordinate by coordinate. Planar and
    radial layers have no inverse, so only ``kind = "iaf"`` is accepted here.
    """

    def __init__(self, base: LatentPrior, flow: dict, *, where: str):
        nn.Module.__init__(self)
        self.name, self.dim, self.parent_dim = base.name, base.dim, base.parent_dim
        self.part_name = f"{base.part_name}+flow"
        self.base = base
        self.flow = Flow(base.dim, flow, where=where)  # validates the table first
        if self.flow.kind != "iaf":
            raise ValueError(
                f"{where}.kind={self.flow.kind!r} is invalid for a prior: log p(z) needs the "
                f"flow's inverse, which planar and radial layers lack; use kind = \"iaf\""
            )
        self.needs_encoder = base.needs_encoder

    def attach(self, encoder) -> None:
        self.base.attach(encoder)

    def distribution(self, parents=None):
        pushed = self.flow(self.base.distribution(parents))
        # the density direction: invert every layer (and undo each permutation)
        inverse = [t.inv for t in reversed(pushed.transforms)]
        return dist.TransformedDistribution(pushed.base_dist, inverse)

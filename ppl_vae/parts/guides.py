"""Guides q(z | x): an amortized encoder g[x, θ], or free per-datapoint parameters q(z | θᵢ)."""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn

from ppl_vae import _checks
from ppl_vae.math import inverse_softplus, softplus_scale
from ppl_vae.parts import conv
from ppl_vae.parts.base import Guide
from ppl_vae.parts.flows import Flow
from ppl_vae.parts.networks import mlp
from ppl_vae.registry import register

COVARIANCES = ("diagonal", "full")


def _num_raw(latent_dim: int, covariance: str) -> int:
    """Unconstrained numbers per datapoint describing the covariance."""
    return latent_dim if covariance == "diagonal" else latent_dim * (latent_dim + 1) // 2


def gaussian(loc: torch.Tensor, raw: torch.Tensor, covariance: str):
    """A Gaussian with batch ``loc.shape[:-1]`` from unconstrained ``raw`` numbers.

    diagonal: scale = softplus(raw); full: a lower-triangular Cholesky factor whose
    diagonal is softplus of the first ``latent`` numbers.
    """
    if covariance == "diagonal":
        return dist.Normal(loc, softplus_scale(raw)).to_event(1)
    latent = loc.shape[-1]
    diag = softplus_scale(raw[..., :latent])
    rows, cols = torch.tril_indices(latent, latent, offset=-1, device=raw.device)
    lower = raw.new_zeros(raw.shape[:-1] + (latent, latent))
    lower[..., rows, cols] = raw[..., latent:]
    tril = lower + torch.diag_embed(diag)
    return dist.MultivariateNormal(loc, scale_tril=tril)


@register("guide", "amortized")
class AmortizedGuide(Guide):
    """q(z|x, θ) = Norm_z[g_μ[x, θ], g_Σ[x, θ]]: the VAE's encoder network.

    With ``flow`` (a table, see :mod:`ppl_vae.parts.flows`) the Gaussian is the
    base of a normalizing flow whose transforms are conditioned on x.
    """

    amortized = True

    def __init__(self, ctx, *, hidden=(256,), activation="relu", covariance="diagonal",
                 flow=None):
        super().__init__(ctx)
        out_dim = self._init_output(ctx, covariance, flow)
        self.net = mlp(ctx.data_dim, hidden, out_dim, activation, where="guide")

    def _init_output(self, ctx, covariance, flow) -> int:
        """Set up the covariance and flow; returns the encoder's output width."""
        self.covariance = _checks.one_of("guide.covariance", covariance, COVARIANCES)
        self.flow = None if flow is None else Flow(ctx.latent_dim, flow, context_dim=ctx.data_dim)
        return ctx.latent_dim + _num_raw(ctx.latent_dim, covariance)

    def distribution(self, x, idx=None):
        out = self.net(x)
        q = gaussian(out[..., : self.latent_dim], out[..., self.latent_dim :], self.covariance)
        return q if self.flow is None else self.flow(q, context=x)


@register("guide", "conv")
class ConvGuide(AmortizedGuide):
    """An amortized guide whose encoder g[x, θ] is convolutional (:mod:`ppl_vae.parts.conv`).

    Everything but the network is :class:`AmortizedGuide`'s: the Gaussian (diagonal
    or full covariance) and the optional x-conditioned ``flow``. ``hidden`` are the
    fully connected widths after the convolutions (Higgins et al., 2017: ``[256]``).
    """

    def __init__(self, ctx, *, image_shape=None, channels=conv.CHANNELS, hidden=(256,),
                 activation="relu", covariance="diagonal", flow=None):
        Guide.__init__(self, ctx)
        channels = conv.check_channels(channels, where="guide")
        shape = conv.image_shape_of(ctx.data_dim, image_shape, channels, where="guide")
        out_dim = self._init_output(ctx, covariance, flow)
        self.net = conv.ConvEncoder(shape, channels, hidden, out_dim, activation, where="guide")


#: Copies of a local guide's parameters while training: values, gradients, Adam's moments.
LOCAL_COPIES = 4


@register("guide", "local")
class LocalGuide(Guide):
    """q(z | θᵢ): free variational parameters for every training datapoint.

    The parameters are sized to the training set by :meth:`initialize` (called
    by ``pv.fit``); ``idx`` selects the datapoints of a minibatch. Evaluating on
    other data needs new local parameters (see ``pv.infer.fit_local_guide``).
    """

    def __init__(self, ctx, *, covariance="diagonal", init_scale=0.1, flow=None):
        super().__init__(ctx)
        self.covariance = _checks.one_of("guide.covariance", covariance, COVARIANCES)
        self.init_scale = _checks.positive_float("guide.init_scale", init_scale)
        # a flow on a local guide is shared by all datapoints (unconditional transforms)
        self.flow = None if flow is None else Flow(ctx.latent_dim, flow)
        self.loc = nn.Parameter(torch.zeros(0, ctx.latent_dim))
        self.raw = nn.Parameter(torch.zeros(0, _num_raw(ctx.latent_dim, covariance)))

    @property
    def num_data(self) -> int:
        return self.loc.shape[0]

    def resize(self, n: int) -> None:
        """Fresh parameters for ``n`` datapoints: loc 0, scale ``init_scale``."""
        latent, like = self.latent_dim, self.loc  # new parameters follow the old device/dtype
        raw = like.new_zeros(n, _num_raw(latent, self.covariance))
        raw[:, :latent] = inverse_softplus(self.init_scale)
        self.loc = nn.Parameter(like.new_zeros(n, latent))
        self.raw = nn.Parameter(raw)

    def initialize(self, x):
        """Parameters for the ``len(x)`` training points; a ValueError, before any is
        allocated, when training them (values, gradients and Adam's two moments:
        :data:`LOCAL_COPIES`) would exceed the memory budget."""
        n, width = x.shape[0], self.latent_dim + _num_raw(self.latent_dim, self.covariance)
        _checks.within_budget(
            f"guide 'local' with parameters for {n} datapoints ({width} values each)",
            LOCAL_COPIES * n * width * self.loc.element_size(), _checks.memory_budget(),
            "train on fewer rows, or use an amortized guide (an encoder, whose size does not "
            "grow with the data: guide={'kind': 'amortized'})", option=False)
        if self.num_data != n:
            self.resize(n)

    def fits(self, x) -> bool:
        """True when the guide holds parameters for exactly ``len(x)`` datapoints."""
        return self.num_data == len(x)

    def distribution(self, x, idx=None):
        if idx is None:
            if x.shape[0] != self.num_data:
                raise ValueError(
                    f"x has {x.shape[0]} rows but the local guide holds parameters for "
                    f"{self.num_data} datapoints: pass the training data, or fit a local "
                    "guide to this data with pv.infer.fit_local_guide"
                )
            q = gaussian(self.loc, self.raw, self.covariance)
        else:
            q = gaussian(self.loc[idx], self.raw[idx], self.covariance)
        return q if self.flow is None else self.flow(q)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Local parameters are sized by the data; adopt the stored size before loading.
        stored = state_dict.get(prefix + "loc")
        if stored is not None and stored.shape[0] != self.num_data:
            self.resize(stored.shape[0])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

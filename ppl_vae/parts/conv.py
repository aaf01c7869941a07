"""Convolutional networks for image data: the encoder g[x, θ] and the decoder f[z, φ].

The architecture is the one of Higgins et al. (2017, β-VAE, Appendix A, Table 1:
the CelebA / chairs networks), also used by Burgess et al. (2018) and in the
convolutional setting of Chen et al. (2018, β-TCVAE): for a 64×64×1 image,

    encoder  conv 4×4 stride 2 with channels 32, 32, 64, 64  (64 → 32 → 16 → 8 → 4)
             → flatten (4·4·64) → FC 256 → out (2·latent for a diagonal Gaussian)
    decoder  FC 256 → FC 4·4·64 → transposed convs 4×4 stride 2 with channels
             64, 32, 32, 1 (4 → 8 → 16 → 32 → 64) → 64×64 likelihood parameters

with ReLU between layers. (Chen et al.'s own convolutional networks end in a 4×4
convolution to 512 channels and use batch normalisation; ``hidden = [512]`` gives
the same width, and batch normalisation is left out here because the inference
utilities evaluate the networks on particles, where batch statistics would mix
datapoints.)

Data stay flat ``[..., D]`` everywhere in the package: the networks reshape rows
to images inside and accept any leading batch dimensions (``[K, N, D]`` particles
of importance sampling), flattening them for the convolutions and restoring them
after. ``image_shape`` is ``[H, W]`` (grayscale) or ``[C, H, W]`` (channels first,
rows flattened in that order); ``None`` takes a square grayscale image of side
``sqrt(data_dim)``. Every side must be divisible by ``2 ** len(channels)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ppl_vae import _checks
from ppl_vae.parts.base import Decoder
from ppl_vae.parts.networks import ACTIVATIONS, mlp
from ppl_vae.registry import register

#: Higgins et al. (2017)'s channels, one stride-2 convolution each.
CHANNELS = (32, 32, 64, 64)
KERNEL, STRIDE, PADDING = 4, 2, 1  # halves an even side exactly


def image_shape_of(data_dim: int, image_shape, channels, *, where: str) -> tuple[int, int, int]:
    """``(C, H, W)`` of one row, validated against ``data_dim`` and the conv stack.

    Raises a ValueError naming ``where`` when the shape does not hold ``data_dim``
    values, or a side does not halve ``len(channels)`` times.
    """
    if image_shape is None:
        side = math.isqrt(data_dim)
        if side * side != data_dim:
            raise ValueError(
                f"{where}.image_shape=None needs a square image, but data_dim={data_dim} is "
                f"not a square number: pass {where}.image_shape = [height, width]"
            )
        shape = (1, side, side)
    else:
        if not isinstance(image_shape, (list, tuple)) or len(image_shape) not in (2, 3):
            raise ValueError(
                f"{where}.image_shape={image_shape!r} is invalid: pass [height, width] or "
                "[channels, height, width], e.g. [64, 64]"
            )
        dims = [_checks.positive_int(f"{where}.image_shape[{i}]", s)
                for i, s in enumerate(image_shape)]
        shape = tuple(dims) if len(dims) == 3 else (1, *dims)
        if math.prod(shape) != data_dim:
            raise ValueError(
                f"{where}.image_shape={list(image_shape)} holds {math.prod(shape)} values but "
                f"data_dim={data_dim}: pass a shape whose product is data_dim"
            )
    factor = 2 ** len(channels)
    for name, side in zip(("height", "width"), shape[1:]):
        if side % factor:
            raise ValueError(
                f"{where}.image_shape: {name} {side} does not fit {len(channels)} stride-2 "
                f"convolutions (it must be divisible by {factor}): pad or resize the images, "
                f"or use fewer {where}.channels"
            )
    return shape


def check_channels(channels, *, where: str) -> tuple[int, ...]:
    if not isinstance(channels, (list, tuple)) or not channels:
        raise ValueError(
            f"{where}.channels={channels!r} is invalid: pass a non-empty list of channel "
            "counts, one per stride-2 convolution, e.g. [32, 32, 64, 64]"
        )
    return tuple(_checks.positive_int(f"{where}.channels[{i}]", c) for i, c in enumerate(channels))


def _flat_batch(x: torch.Tensor, event: int) -> tuple[torch.Tensor, torch.Size]:
    """``x [..., event]`` as ``[B, event]`` and the leading shape to restore."""
    lead = x.shape[:-1]
    return x.reshape(-1, event), lead


class ConvEncoder(nn.Module):
    """Flat images ``[..., C·H·W]`` → ``[..., out_dim]``: stride-2 convs, then an MLP."""

    def __init__(self, image_shape: tuple[int, int, int], channels, hidden, out_dim: int,
                 activation: str, *, where: str):
        super().__init__()
        self.image_shape = image_shape
        act = ACTIVATIONS[_checks.one_of(f"{where}.activation", activation, list(ACTIVATIONS))]
        layers: list[nn.Module] = []
        for c_in, c_out in zip((image_shape[0], *channels), channels):
            layers += [nn.Conv2d(c_in, c_out, KERNEL, STRIDE, PADDING), act()]
        self.convs = nn.Sequential(*layers)
        factor = 2 ** len(channels)
        flat = channels[-1] * (image_shape[1] // factor) * (image_shape[2] // factor)
        self.head = mlp(flat, hidden, out_dim, activation, where=where)

    def forward(self, x):
        rows, lead = _flat_batch(x, math.prod(self.image_shape))
        h = self.convs(rows.reshape(-1, *self.image_shape))  # [B, C', H', W']
        out = self.head(h.flatten(1))  # [B, out]
        return out.reshape(*lead, out.shape[-1])


@register("decoder", "conv")
class ConvDecoder(Decoder):
    """f[z, φ]: an MLP to a small feature map, then stride-2 transposed convolutions.

    The mirror of :class:`ConvEncoder`: ``z → hidden… → channels[-1]×(H/2ⁿ)×(W/2ⁿ)``,
    then one transposed convolution per entry of ``channels`` read backwards, the
    last one to the image's channels. Returns the likelihood's parameters (e.g.
    Bernoulli logits) as flat rows ``[..., D]``; a likelihood with
    ``params_per_dim = P`` gets P images' worth of channels, flattened block after
    block (``[..., P·D]``).
    """

    def __init__(self, ctx, *, image_shape=None, channels=CHANNELS, hidden=(256,),
                 activation="relu"):
        super().__init__()
        channels = check_channels(channels, where="decoder")
        self.image_shape = image_shape_of(ctx.data_dim, image_shape, channels, where="decoder")
        factor = 2 ** len(channels)
        self.start = (channels[-1], self.image_shape[1] // factor, self.image_shape[2] // factor)
        self.head = mlp(ctx.latent_dim, hidden, math.prod(self.start), activation,
                        where="decoder")
        act = ACTIVATIONS[activation]
        self.params_per_dim = ctx.params_per_dim
        outs = (*reversed(channels[:-1]), self.image_shape[0] * ctx.params_per_dim)  # 64, 32, 32, 1
        layers: list[nn.Module] = [act()]
        for i, (c_in, c_out) in enumerate(zip(reversed(channels), outs)):
            layers.append(nn.ConvTranspose2d(c_in, c_out, KERNEL, STRIDE, PADDING))
            if i < len(channels) - 1:
                layers.append(act())
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z):
        rows, lead = _flat_batch(z, z.shape[-1])
        h = self.head(rows).reshape(-1, *self.start)  # [B, C, H/2ⁿ, W/2ⁿ]
        out = self.deconvs(h)  # [B, P·C, H, W]
        return out.reshape(*lead, self.params_per_dim * math.prod(self.image_shape))

"""Multilayer perceptrons and the MLP decoder f[z, φ]."""

from __future__ import annotations

from torch import nn

from ppl_vae import _checks
from ppl_vae.parts.base import Decoder
from ppl_vae.registry import register

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "leaky_relu": nn.LeakyReLU,
}


def mlp(in_dim: int, hidden, out_dim: int, activation: str, *, where: str) -> nn.Sequential:
    """``in → hidden… → out`` with ``activation`` between layers; ``hidden=[]`` is linear."""
    _checks.one_of(f"{where}.activation", activation, list(ACTIVATIONS))
    if not isinstance(hidden, (list, tuple)):
        raise ValueError(f"{where}.hidden={hidden!r} is invalid: pass a list of widths, e.g. [256]")
    _checks.shallow(f"{where}.hidden", len(hidden) + 1)
    widths = [_checks.positive_int(f"{where}.hidden[{i}]", h) for i, h in enumerate(hidden)]
    layers: list[nn.Module] = []
    for w_in, w_out in zip([in_dim, *widths], widths):
        layers += [nn.Linear(w_in, w_out), ACTIVATIONS[activation]()]
    layers.append(nn.Linear(widths[-1] if widths else in_dim, out_dim))
    return nn.Sequential(*layers)


@register("decoder", "mlp")
class MLPDecoder(Decoder):
    """f[z, φ]: an MLP from the latent to the likelihood's parameters (linear when hidden=[]).

    Outputs ``ctx.params_per_dim · data_dim`` values: the likelihood's parameter blocks.
    """

    def __init__(self, ctx, *, hidden=(256,), activation="relu"):
        super().__init__()
        out_dim = ctx.data_dim * ctx.params_per_dim
        self.net = mlp(ctx.latent_dim, hidden, out_dim, activation, where="decoder")

    @property
    def is_linear(self) -> bool:
        return len(self.net) == 1

    def forward(self, z):
        return self.net(z)

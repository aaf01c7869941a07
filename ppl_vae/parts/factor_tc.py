"""FactorVAE's total-correlation penalty, estimated by the density-ratio trick (Kim &
Mnih 2018, "Disentangling by Factorising", ICML, arXiv:1802.05983, Section 3 and
Algorithm 1).

The total correlation of the aggregate posterior, TC = KL(q(z) ‖ q̄(z)) with
q̄(z) = Π_j q(z_j), is estimated with a discriminator D: an MLP from z to one logit,
trained to tell samples of q(z) (label 1) from samples of q̄(z) (label 0). A sample of
q̄ is a batch of q(z) samples with each dimension permuted across the batch on its own
(:func:`permute_dims`). The Bayes-optimal D has logit log q(z) − log q̄(z), so

    TC ≈ E_q(z)[logit D(z)],

and the model's loss per datapoint is −ELBO + γ · logit D(z), z ~ q(z|x), with
γ = ``weight`` (a ``pyro.factor`` site ``penalty_factor_tc``, skipped by ``pv.infer``).

Two optimisers, each on its own parameters. In the model the logit is computed with
D's parameters detached, so the VAE's loss moves the encoder through z but never D;
``pv.fit`` leaves D's parameters out of the model's optimiser (the part declares
``auxiliary = True``) and after every step calls :meth:`FactorTC.auxiliary_step`:
one Adam step on the binary cross-entropy of D, on samples of q(z|x') for a batch x'
other than the step's (the next step's rows), against a fresh dimension-wise
permutation of them, z detached (so D's loss never moves the VAE). D's parameters
are part of the model's state; the optimiser's state is saved in training checkpoints.

Settings. Kim & Mnih: D is 6 layers of 1000 units with leaky ReLU, trained by Adam
with lr = 1e-4 and β = (0.5, 0.9); these are the defaults here. Locatello et al. 2019
("Challenging Common Assumptions in the Unsupervised Learning of Disentangled
Representations", ICML) sweep γ ∈ {10, 20, 30, 40, 50, 100}; the default γ is the
sweep's smallest, 10.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ppl_vae import _checks
from ppl_vae.parts.base import Penalty
from ppl_vae.parts.networks import ACTIVATIONS, mlp
from ppl_vae.registry import register


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each column of ``z`` ``[B, L]`` permuted across the rows on its own: a sample of
    Π_j q(z_j) from a sample of q(z) (Kim & Mnih 2018, Algorithm 2).

    Examples
    --------
    >>> import torch
    >>> from ppl_vae.parts.factor_tc import permute_dims
    >>> z = torch.arange(8.0).reshape(4, 2)
    >>> zp = permute_dims(z, torch.Generator().manual_seed(0))
    >>> [sorted(col) == sorted(orig) for col, orig in zip(zp.T.tolist(), z.T.tolist())]
    [True, True]
    """
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"permute_dims needs a batch z [B, latent] with B >= 2, got shape "
                         f"{tuple(z.shape)}: use batch_size >= 2")
    noise = torch.rand(z.shape, generator=generator, device=None if generator else z.device)
    return z.gather(0, noise.to(z.device).argsort(dim=0))


def _hidden(value) -> list[int]:
    where = "penalty.discriminator_hidden"
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where}={value!r} is invalid: pass a list of layer widths, "
                         "e.g. [1000, 1000, 1000, 1000, 1000, 1000]")
    fix = "pass a list of positive integer layer widths, e.g. [1000, 1000]"
    return [_checks.positive_int(f"{where}[{i}]", h, fix=fix) for i, h in enumerate(value)]


def _betas(value) -> tuple[float, float]:
    where = "penalty.discriminator_betas"
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        not isinstance(b, bool) and isinstance(b, (int, float)) and 0 <= b < 1 for b in value)
    if not ok:
        raise ValueError(f"{where}={value!r} is invalid: pass Adam's two decay rates, each in "
                         "[0, 1), e.g. [0.5, 0.9]")
    return float(value[0]), float(value[1])


@register("penalty", "factor_tc")
class FactorTC(Penalty):
    """γ · logit D(z): FactorVAE's TC estimate with a discriminator (module docstring).

    Parameters
    ----------
    weight : float, default 10
        γ, the weight of the TC estimate (Locatello et al. 2019's smallest).
    discriminator_hidden : list of int, default six layers of 1000
        Hidden widths of the discriminator MLP (Kim & Mnih's).
    discriminator_activation : str, default "leaky_relu"
        Its activation.
    discriminator_lr : float, default 1e-4
        Adam's learning rate for the discriminator.
    discriminator_betas : [float, float], default [0.5, 0.9]
        Adam's decay rates for the discriminator.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("factor_vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]},
    ...                  penalty=[{"kind": "factor_tc", "discriminator_hidden": [16]}])
    >>> part = model.penalties[0]
    >>> part.auxiliary, part.weight, part.discriminator_betas
    (True, 10.0, (0.5, 0.9))
    >>> z = torch.randn(64, 2)
    >>> part.discriminator_loss(z).shape, part.tc_estimate(z).shape   # scalars
    (torch.Size([]), torch.Size([]))
    """

    auxiliary = True

    def __init__(self, ctx, *, weight=10.0, discriminator_hidden=(1000,) * 6,
                 discriminator_activation="leaky_relu", discriminator_lr=1e-4,
                 discriminator_betas=(0.5, 0.9)):
        super().__init__(ctx, weight=weight)
        if ctx.latent_dim < 2:
            raise ValueError(
                f"penalty.kind='factor_tc' needs latent_dim >= 2 (one dimension has no total "
                f"correlation), got latent_dim={ctx.latent_dim}: use latent_dim >= 2")
        hidden = _hidden(discriminator_hidden)
        _checks.one_of("penalty.discriminator_activation", discriminator_activation,
                       list(ACTIVATIONS))
        _checks.network_within_budget("penalty.discriminator_hidden",
                                      [ctx.latent_dim, *hidden, 1])
        self.discriminator_lr = _checks.positive_float("penalty.discriminator_lr",
                                                       discriminator_lr)
        self.discriminator_betas = _betas(discriminator_betas)
        self.discriminator = mlp(ctx.latent_dim, hidden, 1, discriminator_activation,
                                 where="penalty.discriminator")

    def logit(self, z: torch.Tensor, *, train_discriminator: bool = False) -> torch.Tensor:
        """D's logit of "z is from q(z)" for ``z`` ``[..., latent]``, shape ``z.shape[:-1]``;
        D's parameters are detached unless ``train_discriminator``."""
        if train_discriminator:
            return self.discriminator(z).squeeze(-1)
        params = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        return torch.func.functional_call(self.discriminator, params, (z,)).squeeze(-1)

    def tc_estimate(self, z: torch.Tensor) -> torch.Tensor:
        """E_q[logit D(z)] over samples ``z`` ``[..., latent]`` of q(z): the TC estimate (nats)."""
        return self.logit(z).mean()

    def forward(self, inputs):
        return self.logit(inputs.z)

    def discriminator_loss(self, z: torch.Tensor) -> torch.Tensor:
        """D's binary cross-entropy: ``z`` ``[B, latent]`` (detached) labelled 1, a fresh
        :func:`permute_dims` of it labelled 0, each half weighted ½."""
        z = z.detach().reshape(-1, z.shape[-1])
        real = self.logit(z, train_discriminator=True)
        fake = self.logit(permute_dims(z), train_discriminator=True)
        return 0.5 * (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                      + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))

    def auxiliary_parameters(self) -> list:
        return list(self.discriminator.parameters())

    def auxiliary_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.auxiliary_parameters(), lr=self.discriminator_lr,
                                betas=self.discriminator_betas)

    def auxiliary_step(self, model, x, y, optimizer) -> torch.Tensor:
        """One Adam step of D on z ~ q(z|x) (no gradient to the encoder)."""
        with torch.no_grad():
            z = model.q.distribution(x).sample()
        loss = self.discriminator_loss(z)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    def check_compatible(self, model) -> None:
        self.require_amortized_guide(
            model, "trains its discriminator on q(z|x) of other minibatches")

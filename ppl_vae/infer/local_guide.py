"""Per-datapoint Gaussian guides fitted to a trained model with its weights held fixed.

The best Gaussian q(z | θᵢ) for each datapoint separately, found by
maximising that datapoint's ELBO over (μᵢ, σᵢ) alone. Comparing its ELBO with
the amortized encoder's measures the *amortization gap* (Cremer, Li &
Duvenaud, 2018, "Inference suboptimality in variational autoencoders",
section 3): log p(x) − ELBO[q*] is the approximation gap and
ELBO[q*] − ELBO[q_encoder] the amortization gap.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.infer import Trace_ELBO

from ppl_vae import _checks, _runtime, _seed
from ppl_vae.infer import _trace
from ppl_vae.infer.latent_space import LATENT_SITE, site_distribution

INITS = ("encoder", "prior")
_MIN_SCALE = 1e-4


class LocalGaussianGuide:
    """q(z | θᵢ) = Norm[μᵢ, diag σᵢ²] for the N datapoints it was fitted to.

    Call it like any guide: ``guide(x, y=None, **kwargs)`` with the same ``x``
    (N rows). Attributes ``loc`` and ``scale`` are ``[N, latent]``; ``history``
    lists the mean negative ELBO per optimisation step.
    """

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor):
        self.loc = loc.detach().clone().requires_grad_(True)
        self.raw = _inverse_softplus(scale - _MIN_SCALE).detach().clone().requires_grad_(True)
        self.history: list[float] = []

    @property
    def num_data(self) -> int:
        return self.loc.shape[0]

    @property
    def scale(self) -> torch.Tensor:
        return F.softplus(self.raw) + _MIN_SCALE

    def distribution(self):
        return dist.Normal(self.loc, self.scale).to_event(1)

    def __call__(self, x, y=None, **kwargs):
        if x.shape[0] != self.num_data:
            raise ValueError(
                f"x has {x.shape[0]} rows but this local guide was fitted to {self.num_data}: "
                "pass the data given to fit_local_guide, or fit a new guide"
            )
        with pyro.plate(_trace.DATA_PLATE, x.shape[0], dim=-1):
            return pyro.sample(LATENT_SITE, self.distribution())


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    y = y.clamp_min(1e-6)
    return y + torch.log(-torch.expm1(-y))


def _initial(model_fn, guide_fn, x, y, init, kwargs):
    """(loc, scale) ``[N, latent]`` from the guide (``"encoder"``) or the prior."""
    with torch.no_grad():
        if init == "encoder":
            try:
                q = site_distribution(guide_fn, LATENT_SITE, x, y, **kwargs)
                return q.mean, q.stddev
            except (ValueError, NotImplementedError, IndexError, RuntimeError):
                pass  # the guide cannot take this x (e.g. a local guide): use the prior
        p = site_distribution(model_fn, LATENT_SITE, x, y, **kwargs)
        shape = (x.shape[0],) + tuple(p.event_shape)
        return p.mean.expand(shape), p.stddev.expand(shape)


def fit_local_guide(
    model,
    x,
    y=None,
    *,
    steps: int = 500,
    lr: float = 0.05,
    seed=None,
    init: str = "encoder",
    num_particles: int = 1,
    guide=None,
    **model_kwargs,
) -> LocalGaussianGuide:
    """Optimise a free Gaussian q(z | θᵢ) per datapoint for a fixed model.

    Parameters
    ----------
    model
        A trained ppl_vae model, or a raw Pyro model callable (then pass ``guide=``
        when ``init="encoder"``; otherwise any ``guide`` may be None).
    x : array [N, D]
    y : array [N], optional
    steps : int
        Adam steps on the sum of the N per-datapoint negative ELBOs (each
        datapoint's parameters only receive its own gradient).
    lr : float
        Initial Adam learning rate, decayed linearly to ``lr / 10``.
    seed : int, optional
        Seeds the reparameterised draws.
    init : {"encoder", "prior"}
        Start from the guide's q(z | x) (Cremer et al.'s setting: the local
        optimum nearest the encoder), or from the prior.
    num_particles : int
        Draws per step of the ELBO gradient estimate.

    Returns
    -------
    LocalGaussianGuide
        A guide callable to pass as ``guide=`` to ``elbo``, ``log_likelihood``, …
    """
    steps = _checks.positive_int("steps", steps)
    lr = _checks.positive_float("lr", lr)
    num_particles = _checks.positive_int("num_particles", num_particles)
    _checks.one_of("init", init, INITS)
    if callable(getattr(model, "model", None)):
        model_fn, guide_fn, owner = model.model, guide or getattr(model, "guide", None), model
    else:
        model_fn, guide_fn, owner = model, guide, None
    x, y = _trace.check_data(owner, x, y)
    if guide_fn is None:
        init = "prior"
    nesting = getattr(owner, "max_plate_nesting", 1)
    with _seed.seeded(seed):
        loc, scale = _initial(model_fn, guide_fn, x, y, init, model_kwargs)
        local = LocalGaussianGuide(loc, scale)
        loss_fn = Trace_ELBO(num_particles=num_particles, vectorize_particles=num_particles > 1,
                             max_plate_nesting=nesting)
        opt = torch.optim.Adam([local.loc, local.raw], lr=lr)
        # Decay to lr/10: the gradient is stochastic, so a constant step keeps jittering.
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 - 0.9 * t / steps)
        params = [local.loc, local.raw]
        with _runtime.no_penalties():
            for _ in range(steps):
                loss = loss_fn.differentiable_loss(model_fn, local, x, y, **model_kwargs)
                grads = torch.autograd.grad(loss, params)  # model weights stay untouched
                for p, g in zip(params, grads):
                    p.grad = g
                opt.step()
                sched.step()
                local.history.append(float(loss.detach()) / x.shape[0])
    local.loc.requires_grad_(False)
    local.raw.requires_grad_(False)
    return local

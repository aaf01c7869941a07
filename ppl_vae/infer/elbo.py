"""Per-datapoint ELBO: E_q[log p(x, z) − log q(z | x)] by Monte Carlo."""

from __future__ import annotations

import torch

from ppl_vae import _checks, _seed
from ppl_vae.infer import _trace


def elbo(model, x, y=None, *, guide=None, num_particles: int = 1, seed=None, **model_kwargs):
    """ELBO per datapoint in nats, ``Tensor[N]``.

    The lecture notes' ELBO[θ, φ] = ∫ q(z|x,θ) log[Pr(x, z|φ) / q(z|x,θ)] dz,
    averaged over ``num_particles`` draws of the guide. Penalty terms of the
    training objective (β weights, TC, repulsion) are not included: this is
    the bound on log p(x) itself.

    Parameters
    ----------
    model
        A ppl_vae model, or a raw Pyro model callable (then pass ``guide=``).
    x : array [N, D]
    y : array [N], optional
        Labels for class-structured models (then the bound is on log p(x, y)).
    guide : callable, optional
        A different guide for a ppl_vae model, or the guide of a raw model.
    num_particles : int
        Draws of z per datapoint.
    seed : int, optional
    **model_kwargs
        Extra keyword arguments for model and guide (e.g. ``idx`` for local guides).
    """
    num_particles = _checks.positive_int("num_particles", num_particles)
    model_fn, guide_fn, owner = _trace.resolve(model, guide)
    x, y = _trace.check_data(owner, x, y)
    nesting = _trace.plate_nesting(owner, model_fn, guide_fn, x, y, model_kwargs)
    with _seed.seeded(seed), torch.no_grad():
        lw = _trace.log_weights(
            model_fn, guide_fn, x, y, num_particles=num_particles, nesting=nesting,
            kwargs=model_kwargs,
        )
    return lw.mean(0)

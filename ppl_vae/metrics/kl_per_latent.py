"""KL per latent: each latent's share of the ELBO's KL term (one number per layer of a graph).

    KL_i = E_x E_q[log q(z_i | ·) − log p(z_i | parents)]

By Monte Carlo over ``num_particles`` guide draws per datapoint (read from the traces
by :func:`ppl_vae.infer.elbo_terms`); the KLs and the reconstruction term add up to
the ELBO. For a one-latent model it is the average KL(q(z|x) ‖ p(z)).
"""

from __future__ import annotations

from ppl_vae.infer import elbo_terms


def kl_per_latent(model, x, y=None, *, num_particles: int = 16, seed=0) -> dict[str, float]:
    """``{latent: mean KL in nats}`` over the rows of ``x``, and ``"reconstruction"``:
    the mean E_q[log p(x | ·)] (so ELBO = reconstruction − Σ KL).

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=6, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((16, 6), 0.5))
    >>> terms = pv.metrics.kl_per_latent(model, x, num_particles=2)
    >>> sorted(terms), bool(terms["z"] >= 0)
    (['reconstruction', 'z'], True)
    """
    terms = elbo_terms(model, x, y, num_particles=num_particles, seed=seed)
    out = {name: float(value.mean()) for name, value in terms.kl.items()}
    out["reconstruction"] = float(sum(terms.reconstruction.values()).mean())
    return out

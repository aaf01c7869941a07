"""Active units: how many latent dimensions the encoder uses (Burda et al. 2016, Section 5.2).

    A_u = Cov_x( E_{u ~ q(u | x)}[u] ) > 10⁻²

Burda, Grosse & Salakhutdinov (2016), "Importance Weighted Autoencoders", ICLR: a
dimension whose posterior mean does not move across the data is inactive (its
posterior is the prior); they count them per stochastic layer. Here
``latent="z2"`` picks a layer of a model graph; the posterior mean integrates
out the latents the guide draws first (:func:`ppl_vae.infer.posterior_mean`).
"""

from __future__ import annotations

import torch

from ppl_vae import _checks
from ppl_vae.infer import posterior_mean

#: Burda et al.'s threshold on the variance of a dimension's posterior mean.
THRESHOLD = 1e-2


def active_units(model, x, *, latent: str | None = None, y=None, threshold: float = THRESHOLD,
                 num_samples: int = 16, seed=0) -> int:
    """The number of dimensions of ``latent`` whose posterior mean varies over ``x`` by more
    than ``threshold`` (population variance over the rows).

    Parameters
    ----------
    model
        A ppl_vae model (or model/guide pair) with a guide.
    x : array [N, D]
    latent : str, optional
        The latent site (needed when the model has several, e.g. ``"z1"``, ``"z2"``).
    y : array, optional
        Labels or inputs the model takes.
    threshold : float
        10⁻², Burda et al.'s.
    num_samples : int
        Guide passes averaged for E_q[z | x].
    seed : int, optional

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=6, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((16, 6), 0.5))
    >>> n = pv.metrics.active_units(model, x, num_samples=2)
    >>> isinstance(n, int), 0 <= n <= 2
    (True, True)
    """
    threshold = _checks.positive_float("threshold", threshold)
    variance = unit_variances(model, x, latent=latent, y=y, num_samples=num_samples, seed=seed)
    return int((variance > threshold).sum())


def unit_variances(model, x, **options) -> torch.Tensor:
    """Var_x(E_q[z | x]) per dimension, ``Tensor[latent]`` (``options`` as for posterior_mean).

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=6, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((16, 6), 0.5))
    >>> pv.metrics.unit_variances(model, x, num_samples=2).shape
    torch.Size([2])
    """
    means = posterior_mean(model, x, **options)
    if means.shape[0] < 2:
        raise ValueError(f"x has {means.shape[0]} row: the variance over the data needs >= 2 rows")
    return means.double().var(0, unbiased=False)

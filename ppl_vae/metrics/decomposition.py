"""The ELBO and its KL term decomposed over a whole dataset (Chen et al. 2018, Eq. (2)).

    Chen, Li, Grosse & Duvenaud (2018), "Isolating Sources of Disentanglement in
    Variational Autoencoders", NeurIPS, arXiv:1802.04942.

For a dataset x_1..x_N with amortized diagonal Gaussian posteriors q(z|x_n), the
aggregate posterior is the mixture q(z) = (1/N) Σ_n q(z|x_n) with per-dimension
marginals q(z_l) = (1/N) Σ_n q(z_l|x_n). For samples z ~ q(z|x_i),

    ELBO = E[log p(x|z)] − E_x KL(q(z|x) ‖ p(z))                     (reconstruction − KL)
    E_x KL(q(z|x) ‖ p(z)) = E[log q(z|x) − log q(z)]                 index-code MI  (i)
                          + E[log q(z) − Σ_l log q(z_l)]             total correlation (ii)
                          + E[Σ_l log q(z_l) − log p(z_l)]           dimension-wise KL (iii)

Here q(z) and q(z_l) are the *exact* mixtures over all N posteriors (logsumexp over
the N components, evaluated ``batch_size`` rows at a time), i.e. the minibatch
estimators of :mod:`ppl_vae.estimators` at B = N; the only error left is the Monte
Carlo error of the ``num_samples`` draws per datapoint. Per sample, (i)+(ii)+(iii)
equals log q(z|x) − log p(z) exactly, so the three means add up to a Monte Carlo
estimate of the average KL, reported in closed form as ``kl`` where torch has one.
"""

from __future__ import annotations

import torch

from ppl_vae import _checks, _device, _seed
from ppl_vae.estimators import diagonal_normal, kl_terms, log_mixture
from ppl_vae.infer import latent_space


def posterior_normal(model, x, **options) -> tuple[torch.Tensor, torch.Tensor,
                                                  torch.distributions.Distribution]:
    """``(loc, scale)`` ``[N, L]`` of the diagonal Gaussian q(z|x) and q itself.

    A model with ``encode(x)`` is asked directly; any other Pyro model/guide pair is read
    from its trace (``options``: ``guide=``, ``latent=``, ``data_plate=``, ... as for
    :func:`ppl_vae.infer.aggregate_posterior`).
    """
    if callable(getattr(model, "encode", None)):
        q = model.encode(x)
    else:
        q = _pair_view(model, x, options).posterior()
    loc, scale = diagonal_normal(q, needed_by="elbo_decomposition")
    return loc, scale, q


def factorised_prior(model, x=None, **options) -> tuple[torch.distributions.Distribution,
                                                        torch.distributions.Distribution]:
    """p(z) and its per-dimension factors p(z_l) (an ``Independent`` prior is required).

    A model without a ``prior`` part is read from its trace at the latent site (``x``
    needed), whose prior must be an ``Independent(Normal)`` equal for every datapoint.
    """
    prior = getattr(model, "prior", None)
    if callable(getattr(prior, "distribution", None)):
        return prior.distribution(), prior.factors(needed_by="elbo_decomposition")
    if x is None:
        raise ValueError(f"model of type {type(model).__name__} has no prior part: pass x")
    return _trace_prior(_pair_view(model, x, options))


def _pair_view(model, x, options):
    options = dict(options)
    guide = options.pop("guide", None)
    return latent_space._view_of(model, x, None, guide, options)


def _trace_prior(view):
    """p(z) at the view's latent site (batch-free) and its per-dimension Normal factors."""
    fn = view.prior_site["fn"]
    base = getattr(fn, "base_dist", None)
    lead = len(fn.batch_shape)
    if not isinstance(base, torch.distributions.Normal) or len(fn.event_shape) != 1:
        raise ValueError(
            f"elbo_decomposition needs a prior at latent site {view.latent!r} that factorises "
            f"over dimensions (Normal(...).to_event(1)), but it is {type(fn).__name__}"
        )
    loc = base.loc.expand(fn.batch_shape + fn.event_shape).reshape(-1, fn.event_shape[0])
    scale = base.scale.expand(fn.batch_shape + fn.event_shape).reshape(-1, fn.event_shape[0])
    if lead and not (torch.equal(loc, loc[:1].expand_as(loc))
                     and torch.equal(scale, scale[:1].expand_as(scale))):
        raise ValueError(
            f"the prior at latent site {view.latent!r} differs between datapoints (a "
            "conditional prior): elbo_decomposition needs one p(z) for the whole data set"
        )
    factors = torch.distributions.Normal(loc[0], scale[0])
    return torch.distributions.Independent(factors, 1), factors


def _decompose(z, loc, scale, log_pzl, *, chunk: int) -> dict[str, torch.Tensor]:
    """Per-sample terms (i)-(iii) for samples ``z`` ``[S, N, L]`` of the posteriors ``loc, scale`` ``[N, L]``."""
    s, n, latent = z.shape
    flat = z.reshape(s * n, latent)
    agg = log_mixture(flat, loc, scale, chunk_size=chunk)  # exact (1/N) Σ_j q(z|x_j)
    log_qz_x = torch.distributions.Normal(loc, scale).log_prob(z).sum(-1).reshape(-1)  # [S*N]
    terms = kl_terms(log_qz_x, agg, log_pzl(flat).sum(-1))
    return {name: getattr(terms, name) for name in ("mutual_information", "total_correlation", "dimwise_kl")}


def elbo_decomposition(
    model, x, *, num_samples: int = 1, seed: int | None = None, batch_size: int = 256,
    device=None, **options,
) -> dict[str, float]:
    """ELBO, KL and the KL's three terms, averaged over ``x`` (nats per datapoint).

    Parameters
    ----------
    model
        A model with an amortized diagonal Gaussian guide: ``encode(x)`` returning
        ``Independent(Normal)``, ``decode(z)`` returning a Distribution over x, and
        a ``prior`` part whose ``distribution()`` factorises over dimensions.
    x : array ``[N, D]``
        The dataset. Its N posteriors form the aggregate posterior q(z); all N are
        used (not a minibatch), so the cost is O(num_samples · N² · L).
    num_samples : int, default 1
        Draws z ~ q(z|x_n) per datapoint for the Monte Carlo averages.
    seed : int, optional
        Seeds those draws.
    batch_size : int, default 256
        Rows evaluated at a time (memory ~ batch_size · N · L floats).
    device : str or torch.device, optional
        Where to compute (``None``: where the model is; ``"auto"``: CUDA when
        available); the model is moved there.
    **options
        For a Pyro model/guide pair (no ``encode``): ``guide=``, ``latent=``,
        ``observed=``, ``data_plate=``, ``model_kwargs=``, ``guide_kwargs=``; the
        pair is read from its trace (see :func:`ppl_vae.infer.aggregate_posterior`).

    Returns
    -------
    dict of float
        ``reconstruction`` E[log p(x|z)]; ``kl`` average KL(q(z|x) ‖ p(z)) (closed
        form where available); ``elbo`` = reconstruction − kl; and Chen et al. (2018)
        Eq. (2)'s ``mutual_information``, ``total_correlation`` and ``dimwise_kl``,
        which add up to ``kl`` up to Monte Carlo error.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=6, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((16, 6), 0.5))
    >>> terms = pv.metrics.elbo_decomposition(model, x, seed=0)
    >>> sorted(terms)
    ['dimwise_kl', 'elbo', 'kl', 'mutual_information', 'reconstruction', 'total_correlation']
    >>> bool(terms["elbo"] <= terms["reconstruction"])    # KL >= 0
    True
    """
    num_samples = _checks.positive_int("num_samples", num_samples)
    batch_size = _checks.positive_int("batch_size", batch_size)
    if not callable(getattr(model, "encode", None)):
        return _pair_decomposition(model, x, num_samples=num_samples, seed=seed,
                                   batch_size=batch_size, device=device, options=options)
    check = getattr(model, "check_data", None)
    x = check(x)[0] if callable(check) else _checks.data_tensor("x", x)
    dev, dtype = _device.place(model, device)
    x = _device.move(x, dev, dtype)
    p, p_dim = factorised_prior(model)
    with torch.no_grad(), _seed.seeded(seed):
        loc, scale, q = posterior_normal(model, x)
        z = q.sample((num_samples,))  # [S, N, L]
        recon = torch.cat(
            [
                model.decode(z[:, i : i + batch_size]).log_prob(x[i : i + batch_size])
                for i in range(0, x.shape[0], batch_size)
            ],
            dim=1,
        )  # [S, N]
    return _summary(recon, z, q, p, loc, scale, p_dim, batch_size)


def _pair_decomposition(model, x, *, num_samples, seed, batch_size, device, options):
    """The same numbers for a Pyro model/guide pair, read from its trace.

    log p(x | z) is log p(x, z) − log p(z) from the trace reader, so the model's masks and
    scales apply as in :func:`ppl_vae.infer.elbo`; a second latent is refused there.
    """
    with torch.no_grad(), _seed.seeded(seed):
        view = _pair_view(model, x, {**options, "device": device})
        loc, scale = diagonal_normal(view.posterior(), needed_by="elbo_decomposition")
        q = torch.distributions.Independent(torch.distributions.Normal(loc, scale), 1)
        p, p_dim = _trace_prior(view)
        z = q.sample((num_samples,))  # [S, N, L]
        recon = torch.stack([latent_space.log_joint(view, zs) - p.log_prob(zs) for zs in z])
    return _summary(recon, z, q, p, loc, scale, p_dim, batch_size)


def _summary(recon, z, q, p, loc, scale, p_dim, batch_size) -> dict[str, float]:
    with torch.no_grad():
        try:
            kl = torch.distributions.kl_divergence(q, p)  # [N]
        except NotImplementedError:
            kl = (q.log_prob(z) - p.log_prob(z)).mean(0)
        terms = _decompose(z, loc, scale, p_dim.log_prob, chunk=batch_size)
    out = {"reconstruction": float(recon.mean()), "kl": float(kl.mean())}
    out["elbo"] = out["reconstruction"] - out["kl"]
    out.update({name: float(value.mean()) for name, value in terms.items()})
    return out

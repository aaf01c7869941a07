"""Per-datapoint ELBO: E_q[log p(x, z) − log q(z | x)] by Monte Carlo, whole or per site."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ppl_vae import _checks, _seed
from ppl_vae.infer import _program, _trace
from ppl_vae.infer.importance import _check_vectorize, check_budget


def elbo(
    model,
    x,
    y=None,
    *,
    guide=None,
    num_particles: int = 1,
    seed=None,
    data_plate: str | None = None,
    model_kwargs: dict | None = None,
    guide_kwargs: dict | None = None,
    vectorize: bool | None = None,
    device=None,
    **kwargs,
) -> torch.Tensor:
    """ELBO per datapoint in nats, ``Tensor[N]``.

    The lecture notes' ELBO[θ, φ] = ∫ q(z|x,θ) log[Pr(x, z|φ) / q(z|x,θ)] dz,
    averaged over ``num_particles`` draws of the guide, with Pyro's semantics
    for every site (as ``TraceEnum_ELBO`` per datapoint): discrete latents
    enumerated in the model are summed out exactly; a discrete latent
    enumerated in the guide is averaged exactly under q, Σ_y q(y|x)[…]. Penalty
    terms of the training objective (β weights, TC, repulsion) are not
    included: this is the bound on log p(x) itself.

    Parameters
    ----------
    model
        A ppl_vae model, an object with ``model``/``guide`` methods, or a Pyro
        model callable (then pass ``guide=``).
    x : array [N, D]
    y : array, optional
        Labels as the model takes them (then the bound is on log p(x, y)).
    guide : callable, optional
        A different guide for a ppl_vae model, or the guide of a raw model.
    num_particles : int
        Draws of z per datapoint.
    seed : int, optional
    data_plate, model_kwargs, guide_kwargs, vectorize, device, **kwargs
        As for :func:`~ppl_vae.infer.log_likelihood`.

    Examples
    --------
    The ELBO equals log p(x) under the exact posterior and falls short of it by
    KL(q ‖ posterior) = 0.15 nats under a guide twice as wide (in variance):

    >>> import torch, pyro, pyro.distributions as dist
    >>> import ppl_vae as pv
    >>> def model(x):                      # z ~ Norm[0, 1], x | z ~ Norm[z, 1]: p(x) = Norm[0, 2]
    ...     with pyro.plate("data", x.shape[0]):
    ...         z = pyro.sample("z", dist.Normal(torch.zeros(1), 1.0).to_event(1))
    ...         pyro.sample("x", dist.Normal(z, 1.0).to_event(1), obs=x)
    >>> def guide(x):                      # the exact posterior Norm[x / 2, 1 / 2]
    ...     with pyro.plate("data", x.shape[0]):
    ...         pyro.sample("z", dist.Normal(x / 2, 0.5 ** 0.5).to_event(1))
    >>> def wide(x):                       # the posterior mean, too wide a scale
    ...     with pyro.plate("data", x.shape[0]):
    ...         pyro.sample("z", dist.Normal(x / 2, 1.0).to_event(1))
    >>> x = torch.tensor([[-1.0], [0.0], [2.0]])
    >>> exact = dist.Normal(0.0, 2 ** 0.5).log_prob(x[:, 0])
    >>> bool(torch.allclose(pv.infer.elbo(model, x, guide=guide, seed=0), exact, atol=1e-5))
    True
    >>> gap = exact - pv.infer.elbo(model, x, guide=wide, num_particles=2000, seed=0)
    >>> gap.shape, bool(((gap > 0.1) & (gap < 0.2)).all())
    (torch.Size([3]), True)
    """
    num_particles = _checks.positive_int("num_particles", num_particles)
    _check_vectorize(vectorize)
    prog = _program.program(model, guide, model_kwargs=model_kwargs, guide_kwargs=guide_kwargs,
                            kwargs=kwargs)
    x, y = _program.check_data(prog, x, y, device=device)
    check_budget("num_particles", num_particles, x)
    with _seed.seeded(seed), torch.no_grad():
        st = _program.structure(prog, x, y, data_plate=data_plate)
        log_w, log_q, _ = _trace.log_weights(
            prog, x, y, st, num_particles=num_particles, vectorize=vectorize,
            keep_guide_enum=True,
        )
    if log_q is not None:
        # average over the guide-enumerated values under q: Σ_y q(y)·(value − log q(y))
        q = log_q.exp()
        log_w = q * (log_w - log_q)
        while log_w.dim() > 2:
            log_w = log_w.sum(0)
    return log_w.mean(0)


@dataclass
class ELBOTerms:
    """The per-datapoint ELBO split by site (nats, ``Tensor[N]`` each).

    ``reconstruction[x]`` = E_q[log p(x | parents)] for each observed site;
    ``kl[z]`` = E_q[log q(z | ·) − log p(z | parents)] for each latent the guide samples
    (for a model graph: one KL per layer). ``elbo`` = Σ reconstruction − Σ kl.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.tensor([[0.0, 0, 1, 1], [1, 1, 0, 0], [1, 0, 1, 0]])
    >>> terms = pv.infer.elbo_terms(model, x, seed=0)
    >>> type(terms).__name__, sorted(terms.reconstruction), sorted(terms.kl)
    ('ELBOTerms', ['x'], ['z'])
    >>> bool(torch.allclose(terms.elbo, terms.reconstruction["x"] - terms.kl["z"]))
    True
    """

    reconstruction: dict
    kl: dict

    @property
    def elbo(self) -> torch.Tensor:
        return sum(self.reconstruction.values()) - sum(self.kl.values())


def elbo_terms(model, x, y=None, *, num_particles: int = 1, seed=None, guide=None,
               data_plate: str | None = None, device=None, **kwargs) -> ELBOTerms:
    """The ELBO per datapoint and per site: :class:`ELBOTerms`.

    Its ``elbo`` equals :func:`elbo` with the same ``seed`` and ``num_particles``.
    A program that enumerates a discrete latent has no such split (its terms are
    summed out jointly) and is refused: pass the labels ``y``. The other arguments are
    :func:`elbo`'s.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.tensor([[0.0, 0, 1, 1], [1, 1, 0, 0], [1, 0, 1, 0]])
    >>> terms = pv.infer.elbo_terms(model, x, num_particles=4, seed=0)
    >>> terms.reconstruction["x"].shape, terms.kl["z"].shape         # nats per datapoint
    (torch.Size([3]), torch.Size([3]))
    >>> bool(torch.allclose(terms.elbo, pv.infer.elbo(model, x, num_particles=4, seed=0)))
    True
    """
    num_particles = _checks.positive_int("num_particles", num_particles)
    prog = _program.program(model, guide, kwargs=kwargs)
    x, y = _program.check_data(prog, x, y, device=device)
    with _seed.seeded(seed), torch.no_grad():
        st = _program.structure(prog, x, y, data_plate=data_plate)
        if st.has_enumeration or st.subsample_size < st.size:
            why = "enumerates a discrete latent" if st.has_enumeration else "subsamples its data plate"
            raise ValueError(
                f"the program {why}, so its ELBO does not split into per-site terms here: "
                "pass the labels y= of an enumerated latent, or evaluate without subsampling"
            )
        m, g = _trace.run(prog, x, y, st, particles=num_particles)
        layout = _trace._Layout(st, num_particles, x.shape[0])
        m.compute_log_prob()
        g.compute_log_prob()
        guided = {n for n, s in _program.sample_sites(g) if not s["is_observed"]}
        terms = ELBOTerms({}, {})
        for name, site in _program.sample_sites(m):
            if name in st.point_masses or name in st.labels:
                continue
            log_p = layout.reduce(site["log_prob"])
            if site["is_observed"]:
                terms.reconstruction[name] = layout.finish(log_p).mean(0)
            elif name in guided:
                log_q = layout.reduce(g.nodes[name]["log_prob"])
                terms.kl[name] = layout.finish(log_q - log_p).mean(0)
    return terms

"""Per-datapoint log-weights log p(x, z) − log q(z | x), vectorised over particles.

The one place where the inference utilities look inside a Pyro program. It
knows only the conventions of DESIGN.md: datapoints live in a plate named
``"data"``, penalty factors are named ``penalty*`` (and skipped), sites the
guide does not sample come from the prior (their log p cancels with the
proposal), and sites marked ``infer={"enumerate": "parallel"}`` are summed out
exactly (the Gaussian mixture's z).

Particles are a tensor dimension: guide and model run once per chunk inside
``pyro.plate("_particles", K)`` placed left of the model's own plates.
"""

from __future__ import annotations

import pyro
import torch
from pyro import poutine

from ppl_vae import _runtime

DATA_PLATE = "data"


def resolve(model, guide=None):
    """``(model_fn, guide_fn, owner)`` from a ppl_vae model or raw Pyro callables."""
    if hasattr(model, "model") and callable(model.model):
        return model.model, (guide if guide is not None else model.guide), model
    if not callable(model):
        raise ValueError(
            f"model of type {type(model).__name__} is neither a ppl_vae model nor a callable"
        )
    if guide is None:
        raise ValueError("guide=None with a raw Pyro model: pass guide=<the guide callable>")
    return model, guide, None


def check_data(owner, x, y=None):
    """Validate data with the model's own checks when it has them."""
    from ppl_vae import _checks

    if owner is not None and hasattr(owner, "check_data"):
        return owner.check_data(x, y)
    x = _checks.data_tensor("x", x)
    if y is not None:
        y = _checks.label_tensor("y", y, n=x.shape[0])
    return x, y


def plate_nesting(owner, model_fn, guide_fn, x, y, kwargs) -> int:
    """Number of plates in the program (read from the model, else from one trace)."""
    nesting = getattr(owner, "max_plate_nesting", None)
    if nesting is not None:
        return int(nesting)
    with _runtime.no_penalties(), torch.no_grad():
        g = poutine.trace(guide_fn).get_trace(x, y, **kwargs)
        m = poutine.trace(poutine.replay(model_fn, trace=g)).get_trace(x, y, **kwargs)
    dims = [
        -f.dim
        for tr in (g, m)
        for site in tr.nodes.values()
        if site["type"] == "sample"
        for f in site["cond_indep_stack"]
        if f.vectorized and f.dim is not None
    ]
    return max(dims, default=1)


def _data_dim(trace) -> int | None:
    for site in trace.nodes.values():
        for frame in site.get("cond_indep_stack", ()):
            if frame.name == DATA_PLATE and frame.dim is not None:
                return frame.dim
    return None


def log_weights(model_fn, guide_fn, x, y, *, num_particles, nesting, proposal="guide", kwargs=None):
    """Log importance weights ``[K, N]`` for ``num_particles`` = K draws per datapoint."""
    kwargs = kwargs or {}
    particle_dim = -(nesting + 1)
    with _runtime.no_penalties(), pyro.plate("_particles", num_particles, dim=particle_dim):
        if proposal == "guide":
            g = poutine.trace(guide_fn).get_trace(x, y, **kwargs)
            program = poutine.replay(model_fn, trace=g)
        else:
            g, program = None, model_fn
        program = poutine.enum(program, first_available_dim=particle_dim - 1)
        m = poutine.trace(program).get_trace(x, y, **kwargs)

    guided = set()
    if g is not None:
        guided = {n for n, s in g.nodes.items() if s["type"] == "sample" and not s["is_observed"]}
    terms = []
    for name, site in m.nodes.items():
        if site["type"] != "sample" or name.startswith(_runtime.PENALTY_PREFIX):
            continue
        enumerated = site["infer"].get("_enumerate_dim") is not None
        if site["is_observed"] or enumerated or name in guided:
            terms.append(site["fn"].log_prob(site["value"]))
    for name in guided:
        site = g.nodes[name]
        terms.append(-site["fn"].log_prob(site["value"]))
    if not terms:
        raise ValueError("the model has no observed or latent sites to weigh")

    # Add the terms one by one: elementwise, in a fixed order, so a particle's
    # weight does not depend on how many particles share the pass (a stacked
    # .sum(0) picks its accumulation order by tensor size).
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    # Sum out enumerated discrete latents (dims left of the particle dim).
    while total.dim() > nesting + 1:
        total = torch.logsumexp(total, dim=0)
    total = total.expand((num_particles,) + total.shape[1:]) if total.dim() else total
    # Keep the data plate's dim, sum any other plate dims (e.g. plates nested in "data").
    data_dim = _data_dim(m)
    if data_dim is None:
        raise ValueError(
            f"no plate named {DATA_PLATE!r} in the model: put datapoints in "
            f"pyro.plate({DATA_PLATE!r}, N) so per-datapoint estimates are defined"
        )
    keep = total.dim() + data_dim
    other = [d for d in range(1, total.dim()) if d != keep]
    if other:
        total = total.sum(dim=other)
    n = x.shape[0]
    return total.reshape(num_particles, -1).expand(num_particles, n)

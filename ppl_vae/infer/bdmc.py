"""Bidirectional Monte Carlo (Grosse et al., 2015): AIS bounds on both sides of log p(x).

On data simulated from the model, (z, x) ~ p(z) p(x | z), the simulated z is an
exact sample of the posterior p(z | x). Forward AIS (β from 0 to 1, started at p0)
gives a stochastic lower bound on log p(x); reverse AIS (β from 1 to 0, started at
the simulated z) estimates 1/p(x) without bias, so minus the log of its mean weight
is a stochastic upper bound. The gap between them bounds the error of forward AIS
with the same schedule on these data, and shrinks to 0 as the number of steps grows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from pyro import poutine

from ppl_vae import _checks, _runtime, _seed
from ppl_vae.infer import _ais_target, _program
from ppl_vae.infer.ais import (
    AISResult,
    _chunk,
    _options,
    _prepare,
    _result,
    _run,
    check_memory,
    temperatures,
)


@dataclass
class BDMCResult:
    """Forward and reverse AIS on simulated data.

    Attributes
    ----------
    x : Tensor [n, D]
        The simulated data.
    z : dict
        The simulated continuous latents, ``{site: Tensor}``.
    lower, upper : Tensor [n]
        Stochastic lower (forward AIS) and upper (reverse AIS) bounds on log p(x).
    forward, reverse : AISResult

    Examples
    --------
    >>> import torch, pyro, pyro.distributions as dist
    >>> import ppl_vae as pv
    >>> def model(x):                      # z ~ Norm[0, 1], x | z ~ Norm[z, 1]: p(x) = Norm[0, 2]
    ...     with pyro.plate("data", x.shape[0]):
    ...         z = pyro.sample("z", dist.Normal(torch.zeros(1), 1.0).to_event(1))
    ...         pyro.sample("x", dist.Normal(z, 1.0).to_event(1), obs=x)
    >>> b = pv.infer.bdmc(model, 3, x_like=torch.zeros(1, 1), num_steps=5, num_chains=2, seed=0)
    >>> type(b).__name__, b.x.shape, b.z["z"].shape, b.lower.shape
    ('BDMCResult', torch.Size([3, 1]), torch.Size([3, 1]), torch.Size([3]))
    >>> bool(torch.equal(b.gap, b.upper - b.lower)), b.reverse.direction
    (True, 'reverse')
    """

    x: torch.Tensor
    z: dict
    lower: torch.Tensor
    upper: torch.Tensor
    forward: AISResult
    reverse: AISResult

    @property
    def gap(self) -> torch.Tensor:
        """``upper − lower`` per datapoint, in nats."""
        return self.upper - self.lower

    def summary(self) -> dict:
        """Mean bounds and gap, and the largest gap."""
        return {
            "lower": float(self.lower.mean()),
            "upper": float(self.upper.mean()),
            "gap": float(self.gap.mean()),
            "gap_max": float(self.gap.max()),
            "num_steps": self.forward.num_steps,
            "num_chains": self.forward.num_chains,
        }


def simulate(prog, x_like: torch.Tensor, st, names) -> tuple[torch.Tensor, dict]:
    """One ancestral draw of the program with its observation unobserved: ``(x, {z})``.

    Enumerated discrete sites are drawn too (so z is an exact posterior sample given
    x, marginally over them); point-estimate globals keep their values.
    """
    if len(st.observed) != 1:
        raise ValueError(
            f"the model observes {len(st.observed)} sites {list(st.observed)}: bdmc simulates "
            "one observed site (the data x); pass a model with one observation"
        )
    model = poutine.condition(poutine.uncondition(prog.run_model), data=st.point_values)
    with _runtime.no_penalties(), torch.no_grad():
        trace = poutine.trace(model).get_trace(x_like, None)
    value = trace.nodes[st.observed[0]]["value"]
    if value.numel() != x_like.numel():
        raise ValueError(
            f"observed site {st.observed[0]!r} has {value.numel()} values for {x_like.shape[0]} "
            f"rows of x_like {tuple(x_like.shape)}: pass x_like shaped like the data"
        )
    return value.reshape(x_like.shape), {name: trace.nodes[name]["value"] for name in names}


def _with_chains(sites, values: dict, chains: int, nesting: int) -> torch.Tensor:
    """Simulated values ``[n, ...]`` -> the flat state ``[C, n, P]`` of every chain."""
    out = {}
    for s in sites:
        v = values[s.name]
        event = s.event_dim if s.transform is None else s.transform.codomain.event_dim
        batch = v.dim() - event
        v = v.reshape((1,) * (nesting + 1 - batch) + tuple(v.shape))
        out[s.name] = v.expand((chains,) + tuple(v.shape[1:]))
    return _ais_target.pack(sites, out)


def _template(prog, n: int, x_like):
    if x_like is not None:
        x_like = _checks.data_tensor("x_like", x_like)
        return x_like[:1].expand((n,) + tuple(x_like.shape[1:])).clone()
    owner = prog.owner
    if owner is None or not hasattr(owner, "data_dim"):
        raise ValueError(
            "bdmc needs the shape of a datapoint to simulate: pass x_like=<an array of one or "
            "more datapoints> (only its shape and dtype are used)"
        )
    return torch.zeros(n, owner.data_dim)


def bdmc(
    model,
    n: int,
    *,
    guide=None,
    x_like=None,
    num_steps: int = 1000,
    num_chains: int = 16,
    schedule="sigmoid",
    init: str = "prior",
    num_leapfrog: int = 5,
    step_size: float = 0.1,
    target_accept: float = 0.65,
    chunk_size: int | None = None,
    seed=None,
    data_plate: str | None = None,
    model_kwargs: dict | None = None,
    guide_kwargs: dict | None = None,
    device=None,
    **kwargs,
) -> BDMCResult:
    """Simulate ``n`` datapoints from the model and sandwich their log p(x) by AIS.

    ``x_like`` gives a datapoint's shape (needed for a plain Pyro model; a ppl_vae
    model knows its ``data_dim``); the model is run with its observation
    unobserved (``poutine.uncondition``), so its observed site must be sampleable.
    The other arguments are those of :func:`~ppl_vae.infer.ais`, shared by both
    directions (the reverse run draws its own random numbers).

    Examples
    --------
    >>> import torch, pyro, pyro.distributions as dist, ppl_vae as pv
    >>> def model(x):
    ...     with pyro.plate("data", x.shape[0]):
    ...         z = pyro.sample("z", dist.Normal(torch.zeros(1), 1.0).to_event(1))
    ...         pyro.sample("x", dist.Normal(z, 1.0).to_event(1), obs=x)
    >>> b = pv.infer.bdmc(model, 3, x_like=torch.zeros(1, 1), num_steps=20, num_chains=4, seed=0)
    >>> sorted(b.summary())[:3]
    ['gap', 'gap_max', 'lower']
    """
    n = _checks.positive_int("n", n)
    num_steps = _checks.positive_int("num_steps", num_steps)
    num_chains = _checks.positive_int("num_chains", num_chains)
    betas = temperatures(schedule, num_steps)
    with _seed.seeded(seed):
        opts = _options(num_leapfrog, step_size, target_accept, seed)
        prog0 = _program.program(model, guide, model_kwargs=model_kwargs, guide_kwargs=guide_kwargs,
                                 kwargs=kwargs, require_guide=init == "guide")
        like, _ = _program.check_data(prog0, _template(prog0, n, x_like), device=device)
        prog, like, _, st, names = _prepare(model, like, None, guide, init, data_plate,
                                            model_kwargs, guide_kwargs, device, kwargs)
        x, z = simulate(prog, like, st, names)
        sites, u0 = _ais_target.initial(prog, x, None, st, names, init, num_chains)
        chunk = _chunk(chunk_size, n, num_chains, x)
        check_memory(u0, x, 2 * len(betas), chunk)  # both directions' rates are kept
        fwd = _run(prog, x, None, st, names, u0, sites, betas, init, opts, chunk)
        start = _with_chains(sites, z, num_chains, st.nesting)
        rev = _run(prog, x, None, st, names, start, sites, betas.flip(0), init,
                   dataclasses.replace(opts, seed=opts.seed ^ 0x5EED), chunk)
    forward = _result(*fwd, num_steps, init, "forward", x)
    reverse = _result(*rev, num_steps, init, "reverse", x)
    return BDMCResult(x=x, z=z, lower=forward.log_px, upper=reverse.log_px,
                      forward=forward, reverse=reverse)

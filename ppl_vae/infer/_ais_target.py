"""The annealing path of AIS, read off a program through the trace reader.

log f_β(z) = (1 − β) log p0(z) + β log p̃(x, z), with p0 the prior p(z) or the
guide q(z | x), and p̃(x, z) the model's joint as the trace reader weighs it:
the latents conditioned on z, observations and every site's mask and scale as
Pyro applies them, enumerated discrete sites summed out. The continuous latents
move in unconstrained space (``biject_to(support)``); the log-Jacobian enters
both ends of the path alike, so it cancels in the AIS weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pyro
import torch
from pyro import poutine
from torch.distributions import biject_to, constraints

from ppl_vae import _runtime
from ppl_vae.infer import _program, _trace
from ppl_vae.infer.hmc import State


@dataclass(frozen=True)
class Site:
    """One continuous latent: its transform to ℝ and where its coordinates sit in the state."""

    name: str
    transform: object  # None for a real-valued site
    event_dim: int  # of the unconstrained value
    size: int  # coordinates per (chain, datapoint)
    rest: tuple  # the unconstrained value's shape without its chain and datapoint dims
    perm: tuple  # moves (chain, datapoint) to the front


def _support_is_real(support) -> bool:
    while isinstance(support, constraints.independent):
        support = support.base_constraint
    return support is constraints.real


def check_latents(st: _program.Structure, m, g, init: str) -> tuple[str, ...]:
    """The continuous latents that AIS moves; enumerated ones are summed out in the target.

    Refuses (naming the site) a sampled discrete latent, a guide that cannot be the
    starting distribution for ``init='guide'``, and a subsampled datapoint plate.
    """
    if st.subsample_size < st.size:
        raise ValueError(
            f"plate {st.data_plate!r} is subsampled (subsample_size={st.subsample_size}): AIS "
            "evaluates the whole datapoint plate in each pass; run the model without "
            "subsample_size"
        )
    moved = []
    for name in st.latents:
        site = m.nodes[name]
        enumerated = site["infer"].get("enumerate") == "parallel"
        if site["fn"].support.is_discrete:
            if not enumerated:
                raise ValueError(
                    f"latent site {name!r} is discrete and sampled: AIS moves continuous latents "
                    "only; mark it infer={'enumerate': 'parallel'} in the model so it is summed "
                    "out exactly"
                )
            continue
        moved.append(name)
    if not moved:
        raise ValueError("the model has no continuous latent site: AIS has nothing to anneal "
                         "(use log_likelihood, which is exact when every latent is enumerated)")
    if init == "guide":
        _check_guide(g, moved)
    return tuple(moved)


def _check_guide(g, moved) -> None:
    if g is None:
        raise ValueError("init='guide' needs a guide: pass guide=, or use init='prior'")
    for name, site in _program.sample_sites(g):
        if site["infer"].get("is_auxiliary") or site["infer"].get("enumerate") == "parallel":
            raise ValueError(
                f"guide site {name!r} is auxiliary or enumerated: init='guide' needs a guide "
                "whose density at any z can be evaluated site by site; use init='prior'"
            )
    for name in moved:
        if name not in g.nodes:
            raise ValueError(
                f"latent site {name!r} is not sampled by the guide: init='guide' starts every "
                "latent from the guide; use init='prior'"
            )
        if _program.is_point_mass(g.nodes[name]["fn"]):
            raise ValueError(
                f"guide site {name!r} is a point mass (Delta): it has no density to start "
                "AIS from; use init='prior'"
            )


def site_layout(name: str, site, value: torch.Tensor, st: _program.Structure) -> Site:
    """Where the chain and datapoint dims of ``value`` (drawn under the particle plate) lie."""
    support = site["fn"].support
    transform = None if _support_is_real(support) else biject_to(support)
    u = value if transform is None else transform.inv(value)
    event_dim = site["fn"].event_dim if transform is None else transform.domain.event_dim
    batch = u.dim() - event_dim
    if batch > st.nesting + 1:
        raise ValueError(
            f"latent site {name!r} depends on an enumerated discrete site (its value has "
            f"{batch - st.nesting - 1} enumeration dim(s)): init='prior' cannot draw it; "
            "use init='guide' with a guide that samples it"
        )
    pc, pd = u.dim() - event_dim - (st.nesting + 1), u.dim() - event_dim + st.plate_dim
    perm = (pc, pd) + tuple(i for i in range(u.dim()) if i not in (pc, pd))
    rest = tuple(u.shape[i] for i in perm[2:])
    size = 1
    for r in rest:
        size *= r
    return Site(name, transform, event_dim, size, rest, perm)


def pack(sites, values: dict) -> torch.Tensor:
    """Constrained site values -> the flat unconstrained state ``[C, N, P]``."""
    parts = []
    for s in sites:
        v = values[s.name]
        u = v if s.transform is None else s.transform.inv(v)
        u = u.permute(s.perm)
        parts.append(u.reshape(u.shape[0], u.shape[1], -1))
    return torch.cat(parts, -1)


def unpack(sites, u: torch.Tensor):
    """The flat state -> ``{name: unconstrained value}`` in each site's own layout."""
    out, start = {}, 0
    for s in sites:
        part = u[..., start:start + s.size].reshape(u.shape[0], u.shape[1], *s.rest)
        inv = [0] * len(s.perm)
        for i, p in enumerate(s.perm):
            inv[p] = i
        out[s.name] = part.permute(inv)
        start += s.size
    return out


class Target:
    """Evaluates log p0, log p̃(x, z) and log|J| with gradients for one block of datapoints."""

    def __init__(self, prog, x, y, st, sites, init: str, chains: int):
        n = x.shape[0]
        self.prog, self.x, self.y, self.sites, self.init = prog, x, y, sites, init
        self.st = dataclasses.replace(st, size=n, subsample_size=n)
        self.chains, self.n = chains, n
        self.layout = _trace._Layout(self.st, chains, n)

    def evaluate(self, u: torch.Tensor) -> State:
        with torch.enable_grad():
            u = u.detach().requires_grad_()
            values, log_jac = {}, torch.zeros(u.shape[:2], dtype=u.dtype, device=u.device)
            for s in self.sites:
                part = unpack([s], u[..., self._offset(s):self._offset(s) + s.size])[s.name]
                if s.transform is None:
                    values[s.name] = part
                else:
                    values[s.name] = z = s.transform(part)
                    log_jac = log_jac + self.layout.reduce(s.transform.log_abs_det_jacobian(part, z))
            m, _ = _trace.run(self.prog, self.x, self.y, self.st, particles=self.chains,
                              proposal="prior", condition=values)
            joint, _ = _trace.weigh(m, None, self.st, particles=self.chains, n=self.n)
            log_p0 = self._log_guide(values) if self.init == "guide" else self._sum_unscaled(m)
            base, incr = log_p0 + log_jac, joint - log_p0
            g_incr = torch.autograd.grad(incr.sum(), u, retain_graph=True, allow_unused=True)[0]
            g_base = torch.autograd.grad(base.sum(), u, allow_unused=True)[0]
        zero = torch.zeros_like(u)
        return State(u.detach(), base.detach(), incr.detach(),
                     zero if g_base is None else g_base, zero if g_incr is None else g_incr)

    def _offset(self, site: Site) -> int:
        start = 0
        for s in self.sites:
            if s is site:
                return start
            start += s.size
        raise KeyError(site.name)

    def _sum_unscaled(self, trace) -> torch.Tensor:
        """Σ over the moved latents of their unscaled, unmasked log-density: a normalised p0."""
        total = 0.0
        for s in self.sites:
            total = total + self.layout.reduce(trace.nodes[s.name]["unscaled_log_prob"])
        return total

    def _log_guide(self, values: dict) -> torch.Tensor:
        st = self.st
        guide = poutine.condition(self.prog.run_guide, data={**st.point_values, **values})
        with _runtime.no_penalties(), pyro.plate(_trace.PARTICLES, self.chains, dim=-(st.nesting + 1)):
            g = poutine.trace(guide).get_trace(self.x, self.y)
        names = {s.name for s in self.sites}
        g.compute_log_prob(lambda name, _: name in names)
        return self._sum_unscaled(g)


def initial(prog, x, y, st, names, init: str, chains: int):
    """``(sites, u0 [C, N, P])``: the starting draws from the prior or the guide, no gradients."""
    with torch.no_grad():
        m, g = _trace.run(prog, x, y, st, particles=chains, proposal=init)
    trace = g if init == "guide" else m
    values = {name: trace.nodes[name]["value"].detach() for name in names}
    sites = tuple(site_layout(name, m.nodes[name], values[name], st) for name in names)
    u0 = pack(sites, values)
    if not bool(torch.isfinite(u0).all()):
        bad = next(s.name for s in sites if not bool(torch.isfinite(pack([s], values)).all()))
        raise ValueError(
            f"latent site {bad!r}: the {init}'s draws lie outside the model's support "
            f"({m.nodes[bad]['fn'].support}); give the {init} the model's support"
        )
    return sites, u0

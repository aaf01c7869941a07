"""The one trace reader: per-datapoint log-weights log p(x, z) − log q(z | x).

Every estimator and latent-space tool in :mod:`ppl_vae.infer` reads a program
through this module, with Pyro's own semantics for each site:

- a site's log-density carries its ``poutine.scale`` and its mask
  (``poutine.mask``, ``Distribution.mask``) exactly as ``Trace.compute_log_prob``
  applies them, and is summed over every dim except the particle and datapoint
  dims (so pixels in a plate nested inside the datapoint plate add up);
- sites marked ``infer={"enumerate": "parallel"}``, in the model or in the
  guide, are summed out exactly by ``pyro.ops.contract.contract_to_tensor``,
  the tensor contraction ``TraceEnum_ELBO`` performs, with the datapoint plate
  as target ordinal; as there, factors that touch an enumerated dim are masked
  inside and scaled outside the log-sum-exp, with one common scale;
- a latent the guide does not sample is drawn from its prior, so it is part of
  the proposal and its prior term cancels; point-estimate globals (``Delta``
  guide sites outside the datapoint plate) are conditioned on, like
  parameters; auxiliary guide draws (AutoNormal's ``*_unconstrained``) weigh in
  the guide's log-density together with their ``Delta``'s log-Jacobian, as in
  ``Trace_ELBO``; a point-mass proposal for a local latent is refused;
  penalty factors (``penalty*``) are left out;
- a subsampled datapoint plate is evaluated whole, in blocks of its subsample
  size, without the N/B subsampling scale.

Particles are a tensor dimension (``pyro.plate("_particles", K)`` left of the
program's plates) when the program broadcasts; otherwise one particle per pass.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import OrderedDict

import pyro
import torch
from pyro import poutine
from pyro.ops import packed
from pyro.ops.contract import contract_to_tensor
from pyro.ops.rings import LogRing
from pyro.poutine.enum_messenger import EnumMessenger
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import prune_subsample_sites, site_is_subsample

from ppl_vae import _runtime
from ppl_vae.infer._program import Program, Structure, sample_sites

PARTICLES = "_particles"


class _Subsample(Messenger):
    """Fix the datapoint plate's subsample indices to one block of the data."""

    def __init__(self, plate: str, indices: torch.Tensor):
        super().__init__()
        self.plate, self.indices = plate, indices

    def _pyro_sample(self, msg):
        if msg["name"] == self.plate and site_is_subsample(msg):
            msg["value"] = self.indices


def blocks(st: Structure, device=None):
    """``(indices, keep)`` per pass: the whole data at once, or subsample-size blocks."""
    n, b = st.size, st.subsample_size
    if b >= n:
        return [(None, n)]
    out = []
    for start in range(0, n, b):
        idx = torch.arange(start, start + b, device=device) % n  # wrap the last block
        out.append((idx, min(b, n - start)))
    return out


def run(prog: Program, x, y, st: Structure, *, particles: int | None, proposal: str = "guide",
        block=None, condition: dict | None = None):
    """Trace the guide (with enumeration) and the model replayed against it.

    ``particles=None`` runs one particle per pass (no particle plate).
    Returns ``(model_trace, guide_trace or None)`` with subsample sites pruned.
    """
    first_dim = -(st.nesting + (2 if particles else 1))
    model_fn, guide_fn = prog.run_model, prog.guide and prog.run_guide
    if st.point_values:
        # point estimates are parameters: the same values in every pass, without particles
        model_fn = poutine.condition(model_fn, data=st.point_values)
        guide_fn = guide_fn and poutine.condition(guide_fn, data=st.point_values)
    if condition:
        model_fn = poutine.condition(model_fn, data=condition)
    if block is not None:
        model_fn = _Subsample(st.data_plate, block)(model_fn)
        guide_fn = guide_fn and _Subsample(st.data_plate, block)(guide_fn)
    with _runtime.no_penalties():
        plate = pyro.plate(PARTICLES, particles, dim=-(st.nesting + 1)) if particles else None
        with plate if plate is not None else contextlib.nullcontext():
            g = None
            if guide_fn is not None and proposal == "guide":
                g = poutine.trace(EnumMessenger(first_available_dim=first_dim)(guide_fn)).get_trace(x, y)
            if g is None:
                model = EnumMessenger(first_available_dim=first_dim)(model_fn)
            else:
                # as TraceEnum_ELBO: replay outside enumeration (a replayed site is not
                # enumerated, and pyro.markov's enum bookkeeping sees every site), with
                # the model's enum dims allocated left of the guide's
                model = poutine.replay(EnumMessenger()(model_fn), trace=g)
            m = poutine.trace(model).get_trace(x, y)
    m = prune_subsample_sites(m)
    g = prune_subsample_sites(g) if g is not None else None
    return m, g


def _enumerated(site) -> bool:
    return site["infer"].get("_enumerate_dim") is not None


def _terms(m, g, st: Structure):
    """``(model_terms, guide_terms, guide_enumerated)``: the sites whose log-densities weigh.

    Model: observed, enumerated and guided sites (a latent drawn from its prior is
    part of the proposal: its term cancels). Guide: its sampled (not enumerated)
    latents. Point estimates are parameters and weigh nothing.
    """
    guided = {}
    if g is not None:
        guided = {n: s for n, s in sample_sites(g) if not s["is_observed"]}
    guide_enum = {n for n, s in guided.items() if _enumerated(s)}
    model_terms = [
        (n, s) for n, s in sample_sites(m)
        if n not in st.point_masses and (s["is_observed"] or _enumerated(s) or n in guided)
    ]
    guide_terms = [(n, s) for n, s in guided.items()
                   if n not in guide_enum and n not in st.point_masses]
    names = {n for n, _ in model_terms}
    m.compute_log_prob(lambda name, _: name in names)
    if g is not None:
        g.compute_log_prob(lambda name, _: name in guided)
    return model_terms, guide_terms, guide_enum


def weigh(m, g, st: Structure, *, particles: int | None, n: int, keep_guide_enum: bool = False):
    """Per-datapoint log-weights from a model trace and its guide trace.

    Returns ``(total, log_q_enum)``: ``total`` is ``[K, n]`` (``[n]`` without a
    particle plate), or with ``keep_guide_enum`` ``[E..., K, n]`` over the
    guide-enumerated values, then ``log_q_enum`` holds their guide log-probs.
    """
    model_terms, guide_terms, guide_enum = _terms(m, g, st)
    layout = _Layout(st, particles, n)
    signed = [(1.0, s) for _, s in model_terms] + [(-1.0, s) for _, s in guide_terms]
    for name, site in model_terms + guide_terms:
        layout.check(name, site)
    if not (guide_enum or any(_enumerated(s) for _, s in sample_sites(m))):
        return layout.finish(_add(layout, signed)), None
    return _contract(m, g, st, layout, signed, guide_enum, keep_guide_enum)


def _add(layout, signed, total=None):
    """Σ ± term, each reduced to the particle and datapoint dims, in a fixed order."""
    for sign, site in signed:
        term = layout.reduce(site["log_prob"])
        total = sign * term if total is None else total + sign * term
    return total


def _contract(m, g, st, layout, signed, guide_enum, keep_guide_enum):
    """Sum out enumerated sites with ``contract_to_tensor``, as ``TraceEnum_ELBO`` does.

    Factors that touch an enumerated dim are masked inside and scaled outside the
    log-sum-exp, with one scale common to all of them; the others are added as usual.
    """
    if g is not None:
        g.pack_tensors()
    m.pack_tensors(g.plate_to_symbol if g is not None else None)
    symbol_to_dim = {**(g.symbol_to_dim if g is not None else {}), **m.symbol_to_dim}
    plate_symbols = (g if g is not None else m).plate_to_symbol
    traces = (m, g) if g is not None else (m,)
    sum_dims = {s["infer"]["_enumerate_symbol"]
                for t in traces for _, s in sample_sites(t) if _enumerated(s)}
    keep = {g.nodes[name]["infer"]["_enumerate_symbol"] for name in guide_enum} \
        if keep_guide_enum else set()
    plates = ((PARTICLES,) if layout.particles else ()) + (st.data_plate,)
    target = frozenset(plate_symbols[p] for p in plates)

    def ordinal(site):
        return frozenset(plate_symbols[f.name] for f in site["cond_indep_stack"] if f.vectorized)

    factors, scales, plain = OrderedDict(), [], []
    for sign, site in signed:
        if sum_dims.isdisjoint(site["packed"]["log_prob"]._pyro_dims):
            plain.append((sign, site))
            continue
        unscaled = packed.scale_and_mask(site["packed"]["unscaled_log_prob"],
                                         mask=site["packed"]["mask"])
        factors.setdefault(ordinal(site), []).append(unscaled if sign > 0 else packed.neg(unscaled))
        scales.append(site["scale"])
    if any(not o >= target for o in factors):
        raise Refusal(
            f"an enumerated site or a term depending on one lies outside plate "
            f"{st.data_plate!r}: per-datapoint log p(x) needs enumerated discrete latents "
            "inside the datapoint plate"
        )
    sizes = {plate_symbols[st.data_plate]: layout.n}
    if layout.particles:
        sizes[plate_symbols[PARTICLES]] = layout.particles
    for terms in factors.values():
        for term in terms:
            sizes.update(zip(term._pyro_dims, term.shape))
    contracted = contract_to_tensor(factors, sum_dims, target_ordinal=target, target_dims=keep,
                                    ring=LogRing(dim_to_size=sizes))
    contracted = packed.unpack(contracted, symbol_to_dim) * _common_scale(scales)
    total = _add(layout, plain, layout.reduce(contracted, keep_left=True))
    if not keep:
        return layout.finish(total), None
    log_q = 0.0
    for name in guide_enum:
        site = g.nodes[name]
        if ordinal(site) != target:
            raise Refusal(
                f"guide site {name!r} is enumerated inside a plate nested in "
                f"{st.data_plate!r}: the per-datapoint ELBO supports guide enumeration at the "
                "datapoint level only (log_likelihood handles it at any level)"
            )
        log_q = log_q + layout.reduce(site["unscaled_log_prob"], keep_left=True)
    return layout.finish(total, keep_left=True), layout.finish(log_q, keep_left=True)


def _common_scale(scales):
    values = set()
    for s in scales:
        if isinstance(s, torch.Tensor) and s.dim():
            raise Refusal("enumeration only supports a scalar poutine.scale (as TraceEnum_ELBO)")
        values.add(float(s))
    if len(values) > 1:
        raise Refusal(
            "the sites that depend on an enumerated variable have different poutine.scale "
            f"values {sorted(values)}: as in TraceEnum_ELBO they must share one scale"
        )
    return scales[0] if scales else 1.0


class _Layout:
    """Reduces site tensors to ``[K, N]`` (or ``[N]``) by Pyro's dim conventions."""

    def __init__(self, st: Structure, particles: int | None, n: int):
        self.st, self.particles, self.n = st, particles, n
        self.width = st.nesting + (1 if particles else 0)  # plate dims incl. particles

    def check(self, name, site):
        """Refuse a batch dim that no plate explains (it would be broadcast, not summed)."""
        shape = site["log_prob"].shape
        sizes = {f.dim: f.size for f in site["cond_indep_stack"] if f.vectorized and f.dim is not None}
        if self.particles:
            sizes[-(self.st.nesting + 1)] = self.particles
        enum_dims = set(site["infer"].get("_dim_to_id", {}))
        for dim in range(-len(shape), 0):
            size = shape[dim]
            if size == 1 or dim in enum_dims or sizes.get(dim) in (size, -1):
                continue
            if dim < -self.width and self.st.has_enumeration:
                continue  # an enumeration dim of an upstream site
            raise ValueError(
                f"site {name!r} has batch shape {tuple(site['fn'].batch_shape)}, whose dim {dim} "
                f"(size {size}) is no plate around it: declare independent coordinates with "
                ".to_event(...) or a nested pyro.plate, so they are summed, not broadcast"
            )

    def reduce(self, t: torch.Tensor, keep_left: bool = False) -> torch.Tensor:
        """Sum every plate dim except particles and data; keep enum dims left if asked."""
        if not isinstance(t, torch.Tensor) or t.dim() == 0:
            t = torch.as_tensor(t).reshape((1,) * self.width)
        while t.dim() < self.width:
            t = t.unsqueeze(0)
        lead = t.dim() - self.width  # enumeration dims left of the plates
        if not keep_left and t.shape[:lead].numel() > 1:
            raise ValueError("internal: an enumerated dim survived the contraction")
        keep = {self.width + self.st.plate_dim} | ({0} if self.particles else set())
        drop = [lead + d for d in range(self.width) if d not in keep]
        if drop:
            t = t.sum(dim=drop, keepdim=True)
        shape = t.shape[:lead] + tuple(t.shape[lead + d] for d in sorted(keep))
        t = t.reshape(shape)
        return t if keep_left else t.reshape(t.shape[lead:])

    def finish(self, t: torch.Tensor, keep_left: bool = False) -> torch.Tensor:
        shape = ((self.particles,) if self.particles else ()) + (self.n,)
        if t.shape[-1] not in (1, self.n) or (self.particles and t.dim() >= 2
                                               and t.shape[-2] not in (1, self.particles)):
            raise ValueError(
                f"the log-weights came out with shape {tuple(t.shape)}, expected {shape}: the "
                "program does not broadcast over particles"
            )
        if keep_left:
            return t.expand(t.shape[: t.dim() - len(shape)] + shape)
        return t.expand(shape)


class Refusal(ValueError):
    """A program the estimators cannot evaluate exactly (never retried per particle)."""


def refuse_point_masses(st: Structure, what: str = "importance sampling and the ELBO") -> None:
    """Refuse a point-mass (``Delta``) guide site for a per-datapoint latent.

    With q(z|x) = δ(z − ẑ) every weight is log p(x, ẑ): neither log p(x) nor a bound
    on it (the ELBO of a point mass is −∞), so no number is returned.
    """
    if st.local_point_masses:
        name = min(st.local_point_masses)
        raise Refusal(
            f"guide site {name!r} is a point mass (a Delta, e.g. AutoDelta) inside plate "
            f"{st.data_plate!r}: {what} need a proposal with a density, and a point mass "
            f"gives log p(x, z_MAP), not log p(x). Use a guide with a density for {name!r} "
            "(a Gaussian guide, e.g. AutoNormal), log_likelihood(..., proposal='prior'), "
            "or pv.infer.ais(..., init='prior')"
        )


_FALLBACK_ERRORS = (RuntimeError, ValueError, IndexError, TypeError)


def log_weights(prog: Program, x, y, st: Structure, *, num_particles: int, proposal: str = "guide",
                vectorize: bool | None = None, keep_guide_enum: bool = False):
    """Log-weights ``[K, N]`` for ``num_particles`` = K proposal draws per datapoint.

    Returns ``(log_w, log_q_enum, vectorized)``; with ``keep_guide_enum`` the
    guide-enumerated values stay as leading dims of ``log_w`` and
    ``log_q_enum`` holds their guide log-probabilities (for the ELBO).
    ``vectorized`` says which path ran, so the caller's next chunk takes the same.
    """
    if proposal == "guide":
        refuse_point_masses(st)
    if vectorize is not False:
        try:
            return (*_over_blocks(prog, x, y, st, num_particles, proposal, keep_guide_enum, True),
                    True)
        except Refusal:
            raise
        except torch.OutOfMemoryError as err:
            raise ValueError(
                f"out of memory evaluating {num_particles} particles in one pass: pass fewer "
                "particles per pass (log_likelihood's chunk_size=, elbo's num_particles=)"
            ) from err
        except _FALLBACK_ERRORS as err:
            if vectorize:
                raise ValueError(
                    f"the program does not broadcast over a leading particle dimension "
                    f"({type(err).__name__}: {str(err).splitlines()[0][:200]}); write its networks "
                    "for inputs of any batch shape (e.g. use x @ W instead of torch.mm, "
                    "torch.cat(..., dim=-1)), or pass vectorize=None to evaluate one particle per pass"
                ) from err
            warnings.warn(
                f"evaluating one particle per pass (slower): the program does not broadcast over "
                f"a leading particle dimension ({type(err).__name__}: "
                f"{str(err).splitlines()[0][:160]}). Write its networks for inputs of any batch "
                "shape (x @ W rather than torch.mm, torch.cat(..., dim=-1)) to get the fast path.",
                UserWarning, stacklevel=3,
            )
    parts = [_over_blocks(prog, x, y, st, None, proposal, keep_guide_enum, False)
             for _ in range(num_particles)]
    log_w = torch.stack([p[0] for p in parts], -2)
    log_q = None if parts[0][1] is None else torch.stack([p[1] for p in parts], -2)
    return log_w, log_q, False


def _over_blocks(prog, x, y, st, particles, proposal, keep_guide_enum, vectorized):
    outs, qs = [], []
    for block, keep in blocks(st, device=x.device):
        n = st.subsample_size if block is not None else st.size
        m, g = run(prog, x, y, st, particles=particles, proposal=proposal, block=block)
        total, log_q = weigh(m, g, st, particles=particles, n=n, keep_guide_enum=keep_guide_enum)
        if block is not None:
            # the plate scaled every site inside it by N/B; evaluated whole, the scale is 1
            total = total * (st.subsample_size / st.size)
        outs.append(total[..., :keep])
        qs.append(None if log_q is None else log_q[..., :keep])
    total = outs[0] if len(outs) == 1 else torch.cat(outs, -1)
    log_q = None if qs[0] is None else (qs[0] if len(qs) == 1 else torch.cat(qs, -1))
    return total, log_q

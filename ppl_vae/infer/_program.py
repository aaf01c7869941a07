"""How the inference utilities call a model/guide pair, and what they learn from one trace.

A :class:`Program` is a model and a guide (a ppl_vae model, an object with
``model``/``guide`` methods, or two plain Pyro callables) together with the
arguments each side takes. Callables are called the way they are written:
``model(x)`` gets ``x`` only, ``model(x, y=None)`` also gets the labels when
given, and keyword arguments go to the side that accepts them.

:func:`structure` runs the pair once and reads off what the estimators need:
the datapoint plate (the plate of size ``N = len(x)`` that holds every
observation), the plate nesting, the latent and observed sites, and the global
point estimates (``Delta`` guide sites outside the datapoint plate, e.g. an
``AutoDelta`` guide), which the estimators condition on like parameters: their
values are read once, here, and held fixed in model and guide. A ``Delta``
computed from auxiliary draws (``infer={"is_auxiliary": True}``, AutoNormal's
``<name>_unconstrained``) is a latent with a density, not a point estimate; a
point mass inside the datapoint plate is recorded so that the estimators refuse
it. What has no per-datapoint meaning is refused with a ``ValueError`` naming the site.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample

from ppl_vae import _checks, _device, _runtime


# -- calling convention ----------------------------------------------------------
@dataclass(frozen=True)
class Signature:
    """What a callable accepts, read once: positional slots, keyword names, ``**kwargs``,
    and the name of a required second positional parameter (the labels' slot)."""

    name: str
    positional: int = 99
    names: frozenset = frozenset()
    var_kw: bool = True
    second: str | None = None

    @classmethod
    def of(cls, fn) -> Signature:
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            return cls(name)  # unknown: accept everything
        positional, names, var_kw = 0, set(), False
        for p in params:
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                positional += 1
            elif p.kind == p.VAR_POSITIONAL:
                positional = 99
            elif p.kind == p.VAR_KEYWORD:
                var_kw = True
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                names.add(p.name)
        second = None
        if len(params) >= 2:
            p = params[1]
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
                second = p.name
        return cls(name, positional, frozenset(names), var_kw, second)

    def takes(self, key: str) -> bool:
        return self.var_kw or key in self.names

    def args(self, x, y, kwargs) -> tuple:
        """Positional arguments: ``(x,)``, or ``(x, y)`` when labels are given.

        Without labels, ``None`` fills a required second parameter that no keyword
        supplies (``model(x, y)`` written for labelled and unlabelled data).
        """
        if y is None:
            return (x, None) if self.second is not None and self.second not in kwargs else (x,)
        if self.positional < 2:
            raise ValueError(
                f"y was given but {self.name} takes only x: drop y, or write the program as "
                f"{self.name}(x, y=None)"
            )
        return (x, y)


def _split_kwargs(model_sig: Signature, guide_sig: Signature | None, shared: dict):
    """Route each shared keyword to the side(s) whose signature accepts it."""
    to_model, to_guide = {}, {}
    for key, value in shared.items():
        in_model = model_sig.takes(key)
        in_guide = guide_sig is not None and guide_sig.takes(key)
        if not (in_model or in_guide):
            raise ValueError(
                f"keyword argument {key}={_checks._short(value)} is accepted by neither the "
                "model nor the guide: check its name, or pass it as model_kwargs= / guide_kwargs="
            )
        if in_model:
            to_model[key] = value
        if in_guide:
            to_guide[key] = value
    return to_model, to_guide


@dataclass(frozen=True)
class Program:
    """A model and a guide with the keyword arguments each side receives.

    Their signatures are read once, here, not on every pass.
    """

    model: object
    guide: object | None
    owner: object | None = None
    model_kwargs: dict = field(default_factory=dict)
    guide_kwargs: dict = field(default_factory=dict)
    model_sig: Signature = field(init=False, repr=False, compare=False)
    guide_sig: Signature | None = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "model_sig", Signature.of(self.model))
        object.__setattr__(self, "guide_sig",
                           None if self.guide is None else Signature.of(self.guide))

    def run_model(self, x, y):
        return self.model(*self.model_sig.args(x, y, self.model_kwargs), **self.model_kwargs)

    def run_guide(self, x, y):
        return self.guide(*self.guide_sig.args(x, y, self.guide_kwargs), **self.guide_kwargs)


def program(model, guide=None, *, model_kwargs=None, guide_kwargs=None, kwargs=None,
            require_guide: bool = True) -> Program:
    """A :class:`Program` from a ppl_vae model, a module with ``model``/``guide``, or callables."""
    owner = None
    if callable(getattr(model, "model", None)):
        owner = model
        model_fn = model.model
        if guide is None:
            guide = getattr(model, "guide", None)
    elif callable(model):
        model_fn = model
    else:
        raise ValueError(
            f"model of type {type(model).__name__} is neither a ppl_vae model, an object with "
            "model/guide methods, nor a Pyro model callable"
        )
    if guide is not None and not callable(guide):
        raise ValueError(f"guide of type {type(guide).__name__} is not callable: pass the guide function")
    if guide is None and require_guide:
        raise ValueError("guide=None with a raw Pyro model: pass guide=<the guide callable>")
    for name, value in (("model_kwargs", model_kwargs), ("guide_kwargs", guide_kwargs)):
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"{name}={_checks._short(value)} is invalid: pass a dict of keyword arguments")
    to_model, to_guide = _split_kwargs(Signature.of(model_fn),
                                       None if guide is None else Signature.of(guide),
                                       dict(kwargs or {}))
    return Program(
        model_fn, guide, owner,
        {**to_model, **(model_kwargs or {})}, {**to_guide, **(guide_kwargs or {})},
    )


def check_data(prog: Program, x, y=None, *, device=None):
    """Validated data on the model's device and dtype (``device=`` moves the model first).

    The model's own checks run when it has them; labels are kept as the user gives them.
    """
    owner = prog.owner
    dev, dtype = _device.place(owner, device)  # the model first: its checks then move x once
    if owner is not None and callable(getattr(owner, "check_data", None)):
        x, y = owner.check_data(x, y)
    else:
        x = _checks.data_tensor("x", x)
        if y is not None:
            y = torch.as_tensor(y)
            if y.dim() == 0 or y.shape[0] != x.shape[0]:
                raise ValueError(
                    f"y has shape {tuple(y.shape)} but x has {x.shape[0]} rows: pass one label "
                    "(or one one-hot row) per datapoint"
                )
    return _device.move(x, dev, dtype), _device.move(y, dev)


# -- structure read off one trace ---------------------------------------------------
@dataclass(frozen=True)
class Structure:
    """What one run of the pair says about its sites and plates.

    ``plate_dim`` is the (negative) dim of the datapoint plate; ``nesting`` the
    number of plate dims (``max_plate_nesting``); ``subsample_size`` the
    plate's subsample size (``size`` when it is not subsampled).
    """

    data_plate: str
    plate_dim: int
    size: int
    subsample_size: int
    nesting: int
    latents: tuple[str, ...]
    observed: tuple[str, ...]
    labels: tuple[str, ...]
    point_masses: frozenset[str]
    has_enumeration: bool
    point_values: dict = field(default_factory=dict, compare=False, repr=False)
    local_point_masses: frozenset[str] = frozenset()
    auxiliary: frozenset[str] = frozenset()
    drivers: dict = field(default_factory=dict, compare=False, repr=False)


def is_point_mass(fn) -> bool:
    """A ``Delta`` distribution, possibly wrapped in ``Independent`` / masking / expansion."""
    while True:
        if isinstance(fn, dist.Delta):
            return True
        inner = getattr(fn, "base_dist", None)
        if inner is None or inner is fn:
            return False
        fn = inner


def is_auxiliary(site) -> bool:
    """A guide site marked ``infer={"is_auxiliary": True}`` (e.g. AutoNormal's ``*_unconstrained``)."""
    return bool(site["infer"].get("is_auxiliary"))


class _AuxiliaryLeaves(Messenger):
    """Give each continuous auxiliary site's value a fresh leaf that records gradients."""

    def __init__(self):
        super().__init__()
        self.leaves = {}

    def _postprocess_message(self, msg):
        value = msg["value"]
        if (msg["type"] == "sample" and is_auxiliary(msg) and isinstance(value, torch.Tensor)
                and value.is_floating_point()):
            msg["value"] = self.leaves[msg["name"]] = value.detach().requires_grad_()


def auxiliary_drivers(prog: Program, x, y, deltas) -> dict:
    """``{delta site: auxiliary sites its value is a function of}`` from one guide run.

    A ``Delta`` whose value is computed from auxiliary draws (AutoNormal's model sites:
    ``biject_to(support)`` of ``<name>_unconstrained``, its ``log_density`` the
    log-Jacobian) is a random variable with a density; one that depends on no auxiliary
    draw is a point mass. The dependence is read from the autograd graph.
    """
    leaves = _AuxiliaryLeaves()
    devices = [x.device] if x.device.type == "cuda" else []
    with _runtime.no_penalties(), torch.enable_grad(), torch.random.fork_rng(devices=devices):
        g = poutine.trace(leaves(prog.run_guide)).get_trace(x, y)
        names, tensors = list(leaves.leaves), list(leaves.leaves.values())
        out = {}
        for name in deltas:
            value = g.nodes[name]["value"]
            if not (tensors and isinstance(value, torch.Tensor) and value.requires_grad):
                out[name] = ()
                continue
            grads = torch.autograd.grad(value.sum(), tensors, allow_unused=True, retain_graph=True)
            out[name] = tuple(n for n, grad in zip(names, grads) if grad is not None)
    return out


def _plates(site) -> list:
    return [f for f in site["cond_indep_stack"] if f.vectorized and f.dim is not None]


def sample_sites(trace):
    """``(name, site)`` for the sample sites that carry probability (no plates, no penalties)."""
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site_is_subsample(site):
            continue
        if name.startswith(_runtime.PENALTY_PREFIX):
            continue
        if site["infer"].get("_deterministic"):
            continue  # pyro.deterministic: a recorded value, log-density 0
        yield name, site


def probe(prog: Program, x, y, *, proposal: str = "guide"):
    """One guide run and the model replayed against it, no enumeration, no gradients.

    The run forks the random state, so probing does not shift the draws that follow.
    """
    devices = [x.device] if x.device.type == "cuda" else []
    with _runtime.no_penalties(), torch.no_grad(), torch.random.fork_rng(devices=devices):
        g = None
        if prog.guide is not None and proposal == "guide":
            g = poutine.trace(prog.run_guide).get_trace(x, y)
        model = prog.run_model if g is None else poutine.replay(prog.run_model, trace=g)
        m = poutine.trace(model).get_trace(x, y)
    return m, g


def structure(prog: Program, x, y=None, *, data_plate: str | None = None,
              proposal: str = "guide", traces: bool = False):
    """Find the datapoint plate, latent and observed sites of ``prog`` from one trace.

    Returns the :class:`Structure`, or ``(structure, model_trace, guide_trace)``
    with ``traces=True``.
    """
    m, g = probe(prog, x, y, proposal=proposal)
    n = x.shape[0]
    observed = [(name, s) for name, s in sample_sites(m) if s["is_observed"]]
    labels = [name for name, s in observed if _is_labels(s["value"], y)]
    if not observed:
        raise ValueError("the model has no observed site: pass the data as obs=x to pyro.sample")
    plate = _find_data_plate(m, observed, n, data_plate)
    frame = next(f for name, s in observed for f in _plates(s) if f.name == plate)
    globals_, locals_, auxiliary, drivers = _classify_guide(prog, x, y, g, plate)
    latents = _latents(m, g, plate, globals_ | auxiliary)
    for name, s in observed:
        if not _inside(s, plate):
            raise ValueError(
                f"observed site {name!r} lies outside plate {plate!r}: its log-density has no "
                f"per-datapoint share; put it inside the plate (or name a penalty factor "
                f"'{_runtime.PENALTY_PREFIX}...' to leave it out of log p(x))"
            )
    nesting = max((-f.dim for t in (g, m) if t is not None
                   for _, s in sample_sites(t) for f in _plates(s)), default=1)
    enumerated = any(
        s["infer"].get("enumerate") == "parallel"
        for t in (g, m) if t is not None for _, s in sample_sites(t) if not s["is_observed"]
    )
    st = Structure(
        data_plate=plate, plate_dim=frame.dim, size=n,
        subsample_size=n if frame.size == -1 else frame.size, nesting=nesting, latents=tuple(latents),
        observed=tuple(name for name, _ in observed if name not in labels),
        labels=tuple(labels), point_masses=globals_,
        has_enumeration=enumerated,
        point_values={name: g.nodes[name]["value"] for name in globals_},
        local_point_masses=locals_, auxiliary=auxiliary, drivers=drivers,
    )
    return (st, m, g) if traces else st


def _inside(site, plate: str) -> bool:
    return any(f.name == plate for f in _plates(site))


def _classify_guide(prog: Program, x, y, g, plate: str):
    """``(global point masses, local point masses, auxiliary sites, drivers)`` of the guide.

    A ``Delta`` computed from auxiliary draws is a latent with a density (``drivers``
    names its auxiliary sites); any other ``Delta`` is a point mass: outside the
    datapoint plate a point estimate to condition on, inside it a point-mass proposal.
    An auxiliary draw outside the plate is one joint latent over all datapoints.
    """
    if g is None:
        return frozenset(), frozenset(), frozenset(), {}
    sites = [(name, s) for name, s in sample_sites(g) if not s["is_observed"]]
    auxiliary = frozenset(name for name, s in sites if is_auxiliary(s))
    deltas = [name for name, s in sites if name not in auxiliary and is_point_mass(s["fn"])]
    drivers = auxiliary_drivers(prog, x, y, deltas) if auxiliary and deltas else {}
    for name in deltas:
        shared = [a for a in drivers.get(name, ()) if not _inside(g.nodes[a], plate)]
        if shared and _inside(g.nodes[name], plate):
            raise ValueError(
                f"guide site {shared[0]!r} is an auxiliary draw outside plate {plate!r} that "
                f"sets the per-datapoint site {name!r}: one joint latent for all datapoints "
                "together (as AutoDiagonalNormal, AutoMultivariateNormal and "
                "AutoLowRankMultivariateNormal draw), so there is no per-datapoint q(z|x) and no "
                "per-datapoint log p(x). Use AutoNormal (one Normal per datapoint inside the "
                "plate) or an amortized guide q(z|x)"
            )
    points = [name for name in deltas if not drivers.get(name)]
    inside = {name for name in points if _inside(g.nodes[name], plate)}
    return (frozenset(points) - inside, frozenset(inside), auxiliary,
            {name: drivers[name] for name in deltas if drivers.get(name)})


def _latents(m, g, plate: str, skip) -> list:
    """The latent sites, guide's first; refuses a random latent outside the datapoint plate
    and a guide latent the model does not have."""
    latents = []
    for trace in (g, m) if g is not None else (m,):
        for name, s in sample_sites(trace):
            if s["is_observed"] or name in skip or name in latents:
                continue
            if trace is g and name not in m.nodes:
                raise ValueError(
                    f"guide site {name!r} has no counterpart in the model: importance weights "
                    "need every guide latent to be a model latent"
                )
            if not _inside(s, plate) and trace is g and _plates(s) and _inside(m.nodes[name], plate):
                raise ValueError(
                    f"guide site {name!r} lies in plate(s) {[f.name for f in _plates(s)]} but the "
                    f"model's datapoint plate is {plate!r}: the plate names differ, so the guide's "
                    f"draws are not matched to the model's datapoints; name the guide's plate "
                    f"{plate!r} as in the model"
                )
            if not _inside(s, plate):
                raise ValueError(
                    f"latent site {name!r} lies outside plate {plate!r}: it is shared by every "
                    "datapoint, so a per-datapoint log p(x) is not defined. Make it a point "
                    "estimate (pyro.param, or a Delta/AutoDelta guide site, which are conditioned "
                    "on) or move it inside the plate"
                )
            latents.append(name)
    return latents


def _is_labels(value, y) -> bool:
    """An observed site whose value is the labels ``y`` the caller passed."""
    if y is None or not isinstance(value, torch.Tensor):
        return False
    return value is y or (value.shape == y.shape and bool(torch.equal(value, y.to(value.dtype))))


def _find_data_plate(trace, observed, n: int, requested: str | None) -> str:
    common = None
    for _, site in observed:
        names = {f.name: f for f in _plates(site)}
        common = names if common is None else {k: v for k, v in common.items() if k in names}
    common = common or {}
    sequential = sorted({f.name for _, site in observed for f in site["cond_indep_stack"]
                         if not f.vectorized})
    if sequential and not common:
        raise ValueError(
            f"plate(s) {sequential} are iterated sequentially (for i in pyro.plate(...)): a "
            "sequential datapoint plate is not supported; write the vectorised "
            f"`with pyro.plate({sequential[0]!r}, {n}):` around the observations"
        )
    if requested is not None:
        every = {f.name for _, s in trace.nodes.items() if s["type"] == "sample" for f in _plates(s)}
        if requested not in every:
            raise ValueError(
                f"data_plate={requested!r} is not a plate of the model (plates: {sorted(every)})"
            )
        if requested not in common:
            raise ValueError(
                f"data_plate={requested!r} does not contain every observed site: the "
                "datapoint plate must hold the observations"
            )
        return requested
    # a plate declared without a size (pyro.plate("data")) takes its size from the data
    sized = [name for name, f in common.items() if (f.full_size or f.size) in (n, -1)]
    if len(sized) == 1:
        return sized[0]
    if not sized:
        raise ValueError(
            f"no plate of size {n} (the number of rows of x) contains every observed site "
            f"(plates around them: {sorted(common)}): put the datapoints in "
            f"pyro.plate('data', {n}) or pass data_plate="
        )
    # several plates of size N: the outermost (leftmost dim) holds the datapoints
    raise ValueError(
        f"several plates of size {n} contain the observations ({sorted(sized)}): pass "
        "data_plate=<name of the datapoint plate>"
    )

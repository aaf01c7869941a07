"""The bounds :func:`ppl_vae.fit` maximises (``bound=``): the ELBO, the IWAE bound, Rényi bounds.

* ``"elbo"`` — Pyro's ``Trace_ELBO`` (``TraceEnum_ELBO`` for enumerated models),
  penalties and β included through the model's own ``pyro.factor``/scale sites.
* ``"iwae"`` — the importance-weighted bound of order K (Burda, Grosse &
  Salakhutdinov, 2016, eq. 8), per datapoint:
  ``L_K = E[log (1/K) Σ_k p(x, z_k) / q(z_k | x)]``, ``z_k ~ q(z | x)``.
  L_1 is the ELBO and L_K ≤ log p(x) rises with K.
* ``"renyi"`` — the variational Rényi bound of order α (Li & Turner, 2016, eq. 5
  with the K-sample estimator): ``(1/(1-α)) log (1/K) Σ_k w_k^(1-α)``; α = 0 is IWAE,
  the same quantity as Pyro's ``RenyiELBO``, computed per datapoint.

The IWAE and Rényi bounds weigh each datapoint of a minibatch on its own
(:func:`log_weights`, differentiable and aware of the subsampled data plate), so
they apply to continuous, reparameterised latents inside the ``"data"`` plate. They are refused for models that
enumerate a discrete latent, carry penalty terms, or weight the KL (β ≠ 1),
where the bound would silently differ from the objective the model declares.

KL warm-up multiplies the log-densities of the latent site in model *and* guide
(Pyro's ``scale`` semantics, the same mechanism as the model's own β), so the
objective is ``E[log p(x|z)] − β_t·KL`` with β_t rising linearly to the model's β.
"""

from __future__ import annotations

import math
import numbers

import pyro
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceEnum_ELBO
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample

from ppl_vae import _checks, _runtime
from ppl_vae import math as pv_math

KINDS = ("elbo", "iwae", "renyi")
DATA_PLATE = "data"  # the datapoint plate of the package's conventions
DEFAULT_PARTICLES = 5  # Burda et al. report K = 5 and K = 50; 5 keeps a step cheap


def parse(bound, num_particles: int) -> dict:
    """Normalise ``bound`` to ``{"kind", "num_samples", "alpha"}``.

    ``num_samples`` is K: the ELBO's particles per step (``num_particles``), the order
    of the IWAE/Rényi bound. For ``"iwae"``/``"renyi"`` given as a string, K is
    ``num_particles`` when that is above 1, else 5 (Burda et al.'s smallest K);
    ``{"kind": "iwae", "num_samples": K}`` says it explicitly (``num_particles`` is
    accepted there as K's former name). α defaults to 0.5 for ``"renyi"``.
    """
    table = {"kind": bound} if isinstance(bound, str) else bound
    if not isinstance(table, dict) or "kind" not in table:
        raise ValueError(
            f"bound={bound!r} is invalid: pass 'elbo', 'iwae', 'renyi', or a dict "
            "such as {'kind': 'iwae', 'num_samples': 5}"
        )
    kind = _checks.one_of("bound", table["kind"], KINDS)
    table = dict(table)
    if "num_particles" in table:
        if "num_samples" in table:
            raise ValueError("bound has num_samples and num_particles: keep num_samples (K)")
        table["num_samples"] = table.pop("num_particles")
    valid = {"kind", "num_samples"} | ({"alpha"} if kind == "renyi" else set())
    extra = set(table) - valid
    if extra:
        raise ValueError(
            f"bound key {min(extra)!r} is not recognised for kind {kind!r}; "
            f"valid keys: {', '.join(sorted(valid))}"
        )
    default_k = num_particles if (kind == "elbo" or num_particles > 1) else DEFAULT_PARTICLES
    k = _checks.positive_int("bound num_samples", table.get("num_samples", default_k))
    out = {"kind": kind, "num_samples": k, "alpha": None}
    if kind == "iwae":
        out["alpha"] = 0.0
    elif kind == "renyi":
        alpha = table.get("alpha", 0.5)
        if (
            isinstance(alpha, bool)
            or not isinstance(alpha, numbers.Real)
            or not math.isfinite(alpha)
            or alpha < 0
            or alpha == 1
        ):
            raise ValueError(
                f"bound alpha={alpha!r} is invalid: pass a number >= 0 other than 1 "
                "(alpha = 1 is the ELBO: use bound='elbo')"
            )
        out["alpha"] = float(alpha)
    return out


def check_applicable(parsed: dict, model, *, kl_warmup: int) -> None:
    """Refuse combinations whose bound would not be the one the model declares."""
    enumerated = bool(model.enumerate)
    if parsed["kind"] != "elbo":
        why = None
        if enumerated:
            why = "the model enumerates a discrete latent (its exact marginal is already the ELBO)"
        elif model.penalized:
            why = "the model's objective adds terms or penalties, which are defined on the ELBO only"
        elif model.kl_weight != 1.0:
            why = f"the model weights its KL term (beta={model.kl_weight:g}), which only the ELBO has"
        elif kl_warmup:
            why = f"kl_warmup={kl_warmup} scales the ELBO's KL term, which the IWAE bound has not"
        if why:
            raise ValueError(
                f"bound={parsed['kind']!r} does not apply here: {why}; use bound='elbo'"
            )
    if kl_warmup and enumerated:
        raise ValueError(
            f"kl_warmup={kl_warmup} does not apply: the model enumerates its latent and has no "
            "KL term to warm up; pass kl_warmup=0"
        )


def elbo_loss(model, num_particles: int):
    """Pyro's ``Trace_ELBO``, or ``TraceEnum_ELBO`` when the model enumerates a latent."""
    nesting = model.max_plate_nesting
    cls = TraceEnum_ELBO if model.enumerate else Trace_ELBO
    return cls(num_particles=num_particles, max_plate_nesting=nesting)


class LatentScale(Messenger):
    """Multiply the log-density of the named unobserved sample sites by ``factor``."""

    def __init__(self, sites, factor: float):
        super().__init__()
        self.sites = frozenset(sites)
        self.factor = factor

    def _process_message(self, msg):
        if msg["type"] == "sample" and msg["name"] in self.sites and not msg["is_observed"]:
            msg["scale"] = self.factor * msg["scale"]


def warmup_factor(step: int, kl_warmup: int) -> float:
    """β_t / β at (0-based) ``step``: rises linearly from 0 to 1 over ``kl_warmup`` steps."""
    if kl_warmup <= 0 or step >= kl_warmup:
        return 1.0
    return step / kl_warmup


class Bound:
    """Callable ``(model, x, y, idx, num_data, step) -> loss`` (a scalar tensor whose
    value is minus the bound on the batch, scaled to the whole dataset)."""

    def __init__(self, parsed: dict, model, *, kl_warmup: int = 0):
        self.parsed = parsed
        self.kl_warmup = kl_warmup
        self.latent_sites = tuple(model.latent_sites)
        self.nesting = model.max_plate_nesting
        self.plate = model.data_plate
        k = parsed["num_samples"]
        if parsed["kind"] == "elbo":
            self.elbo = elbo_loss(model, k)

    def __call__(self, model, x, y, idx, num_data: int, step: int) -> torch.Tensor:
        if self.parsed["kind"] == "elbo":
            model_fn, guide_fn = model.model, model.guide
            if self.kl_warmup and step < self.kl_warmup:
                scale = LatentScale(self.latent_sites, warmup_factor(step, self.kl_warmup))
                model_fn, guide_fn = scale(model_fn), scale(guide_fn)
            return self.elbo.differentiable_loss(model_fn, guide_fn, x, y, idx=idx, num_data=num_data)
        bound = renyi_bound(
            model.model, model.guide, x, y,
            num_particles=self.parsed["num_samples"], alpha=self.parsed["alpha"],
            nesting=self.nesting, kwargs={"idx": idx, "num_data": num_data}, plate=self.plate,
        )
        return -bound.sum() * (num_data / x.shape[0])


def renyi_bound(model_fn, guide_fn, x, y=None, *, num_particles: int, alpha: float = 0.0,
                nesting: int = 1, kwargs=None, plate: str = DATA_PLATE) -> torch.Tensor:
    """Per-datapoint Rényi bound ``[N]`` of order ``alpha`` with K = ``num_particles``
    draws (``alpha = 0``: the IWAE bound L_K), differentiable in the parameters.

    Works on any Pyro model/guide pair whose sites all live in a plate named
    ``"data"`` (subsampled or not) and whose guide latents are reparameterised.
    """
    lw = log_weights(model_fn, guide_fn, x, y, num_particles=num_particles, nesting=nesting,
                     kwargs=kwargs, plate=plate)  # [K, N]
    return pv_math.renyi_mean(lw, alpha, dim=0)


def log_weights(model_fn, guide_fn, x, y=None, *, num_particles: int, nesting: int = 1,
                kwargs=None, plate: str = DATA_PLATE) -> torch.Tensor:
    """``[K, N]`` log p(x, z_k) − log q(z_k | x) per datapoint, differentiable.

    Training needs what the inference utilities do not offer: gradients, and a
    subsampled data plate (a minibatch of a larger dataset). Log-densities are
    Pyro's unscaled ``fn.log_prob`` (the plate's N/B scale is applied by the
    caller once); penalty sites are skipped; particles are a plate left of the
    model's own plates, as in Pyro's vectorised ELBOs.
    """
    kwargs = kwargs or {}
    args = (x,) if y is None else (x, y)
    with _runtime.no_penalties(), pyro.plate("_particles", num_particles, dim=-(nesting + 1)):
        g = poutine.trace(guide_fn).get_trace(*args, **kwargs)
        m = poutine.trace(poutine.replay(model_fn, trace=g)).get_trace(*args, **kwargs)
    total = 0.0
    for trace, sign in ((m, 1.0), (g, -1.0)):
        for name, site in trace.nodes.items():
            if site["type"] != "sample" or name.startswith(_runtime.PENALTY_PREFIX):
                continue
            if site_is_subsample(site) or (sign < 0 and site["is_observed"]):
                continue
            if sign < 0 and not site["fn"].has_rsample:
                raise ValueError(
                    f"guide site {name!r} is not reparameterisable: the IWAE/Rényi bound "
                    "needs reparameterised latents; use bound='elbo'"
                )
            total = total + sign * _per_datapoint(name, site, nesting, plate)
    return total.expand(num_particles, x.shape[0])


def _per_datapoint(name: str, site, nesting: int, plate: str) -> torch.Tensor:
    """A site's unscaled log-density reduced to ``[K, B]`` (plates nested in ``plate`` summed)."""
    frames = [f for f in site["cond_indep_stack"] if f.name == plate]
    if not frames or frames[0].dim is None:
        raise ValueError(
            f"site {name!r} is outside the plate {plate!r}: the IWAE/Rényi bound "
            "weighs each datapoint on its own and needs every site inside it; use bound='elbo'"
        )
    lp = site["fn"].log_prob(site["value"])
    lp = lp.reshape((1,) * (nesting + 1 - lp.dim()) + tuple(lp.shape))  # [K, ...plates]
    keep = nesting + 1 + frames[0].dim
    other = [d for d in range(1, lp.dim()) if d != keep]
    return lp.sum(dim=other) if other else lp

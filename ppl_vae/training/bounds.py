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

The IWAE and Rényi bounds weigh each datapoint of a minibatch on its own, with the
log-weights of ``pv.infer``'s one trace reader (``infer/_trace.log_weights``, the
engine of importance sampling too: differentiable, the minibatch evaluated as a data
set of its own and scaled by N/B once), so they apply to reparameterised latents
inside the datapoint plate. They are refused for models that enumerate a discrete
latent, carry penalty terms, or weight the KL (β ≠ 1), where the bound would silently
differ from the objective the model declares.

KL warm-up multiplies the log-densities of the latent site in model *and* guide
(Pyro's ``scale`` semantics, the same mechanism as the model's own β), so the
objective is ``E[log p(x|z)] − β_t·KL`` with β_t rising linearly to the model's β.
"""

from __future__ import annotations

import math
import numbers

import torch
from pyro.infer import Trace_ELBO, TraceEnum_ELBO
from pyro.poutine.messenger import Messenger

from ppl_vae import _checks
from ppl_vae import math as pv_math
from ppl_vae.infer import _program, _trace

KINDS = ("elbo", "iwae", "renyi")
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
            name = {"iwae": "IWAE", "renyi": "Rényi"}.get(parsed["kind"], parsed["kind"])
            why = f"kl_warmup={kl_warmup} scales the ELBO's KL term, which the {name} bound has not"
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
        self.structures: dict = {}  # batch size -> the program's Structure, read once
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
        # the batch as a data set of its own (idx still picks local parameters); the
        # plate's N/B scale is applied once, here
        prog = _program.program(model.model, model.guide, kwargs={"idx": idx})
        st = self.structures.get(x.shape[0])
        if st is None:
            st = self.structures[x.shape[0]] = _structure(prog, x, y)
        bound = _renyi(prog, x, y, st, self.parsed["num_samples"], self.parsed["alpha"])
        return -bound.sum() * (num_data / x.shape[0])


def renyi_bound(model_fn, guide_fn, x, y=None, *, num_particles: int, alpha: float = 0.0,
                kwargs=None) -> torch.Tensor:
    """Per-datapoint Rényi bound ``[N]`` of order ``alpha`` with K = ``num_particles``
    draws (``alpha = 0``: the IWAE bound L_K), differentiable in the parameters.

    The log-weights are ``pv.infer``'s (the one trace reader: masks, scales, nested
    plates, enumerated sites summed out), so any pair ``log_likelihood`` accepts has
    these bounds; the guide's latents must be reparameterised for useful gradients.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> from ppl_vae.training import renyi_bound
    >>> model = pv.build("vae", data_dim=6, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((16, 6), 0.5))
    >>> iwae = renyi_bound(model.model, model.guide, x, num_particles=4)   # alpha=0: L_K
    >>> iwae.shape, iwae.requires_grad
    (torch.Size([16]), True)
    """
    prog = _program.program(model_fn, guide_fn, kwargs=kwargs)
    return _renyi(prog, x, y, _structure(prog, x, y), num_particles, alpha)


def _structure(prog, x, y):
    """The program's Structure; a guide latent without ``rsample`` is refused (the
    bound's gradient would ignore how its draws depend on the parameters)."""
    st, _, g = _program.structure(prog, x, y, traces=True)
    for name, site in _program.sample_sites(g) if g is not None else ():
        if not site["is_observed"] and not site["fn"].has_rsample and not site["infer"].get(
                "enumerate"):
            raise ValueError(
                f"guide site {name!r} is not reparameterisable: the IWAE/Rényi bound needs "
                "reparameterised latents; use bound='elbo'"
            )
    return st


def _renyi(prog, x, y, st, num_particles: int, alpha: float) -> torch.Tensor:
    lw, _, _ = _trace.log_weights(prog, x, y, st, num_particles=num_particles, vectorize=True)
    return pv_math.renyi_mean(lw, alpha, dim=0)  # [N]

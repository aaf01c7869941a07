"""The β-TCVAE family: a VAE whose total correlation carries its own weight.

Chen, Li, Grosse & Duvenaud (2018), "Isolating Sources of Disentanglement in
Variational Autoencoders", NeurIPS, arXiv:1802.04942. Eq. (4) with α = γ = 1:

    L_β-TC = E_q[log p(x|z)] − I_q(x; z) − β KL(q(z) ‖ Π_l q(z_l)) − Σ_l KL(q(z_l) ‖ p(z_l))
           = ELBO − (β − 1) · TC

so the model keeps the plain ELBO (KL weight 1) and carries one
``total_correlation`` penalty (:mod:`ppl_vae.parts.penalties`) whose weight is
β − 1; Pyro's ``Trace_ELBO`` then optimises L_β-TC with no custom loss.

``beta`` is the single source of the TC weight:

- the spec's ``total_correlation`` penalty may omit ``weight``; the resolved spec
  leaves it out too (it is derived, not stored), so ``pv.build(model.spec)``
  round-trips and ``pv.build(model.spec, beta=2)`` changes the TC weight;
- a ``weight`` given together with ``beta`` must equal ``beta - 1``, otherwise
  ``pv.build`` raises a ValueError naming both (there is no silent winner);
- a spec without a ``total_correlation`` penalty gets one (``estimator = "mss"``),
  so ``pv.build("tcvae", penalty=[...])`` cannot drop the TC term by accident;
  two of them are an error. Other penalties (e.g. ``mutual_information`` for
  Eq. (4)'s α) keep their own weights.

``beta = 1`` gives the plain VAE (TC weight 0); ``0 < beta < 1`` rewards TC.
"""

from __future__ import annotations

import copy
import math

from ppl_vae.models.families import LatentFamily
from ppl_vae.registry import register

TC_KIND = "total_correlation"


@register("family", "tcvae")
class TCVAEFamily(LatentFamily):
    """β-TCVAE: ELBO − (β − 1)·TC; ``beta`` weighs the total correlation, not the KL."""

    def resolve(self, raw):
        raw = dict(raw)
        penalties = raw.get("penalty", [])
        penalties = [penalties] if isinstance(penalties, dict) else list(penalties)
        tc = [i for i, p in enumerate(penalties) if isinstance(p, dict) and p.get("kind") == TC_KIND]
        if len(tc) > 1:
            raise ValueError(
                f"the tcvae family takes one [[penalty]] of kind {TC_KIND!r} (its weight is "
                f"beta - 1) but the spec has {len(tc)} (penalty{tc}): remove the extra ones"
            )
        if not tc:
            penalties.append({"kind": TC_KIND})
            tc = [len(penalties) - 1]
        raw["penalty"] = penalties
        out = super().resolve(raw)
        target = out["beta"] - 1.0
        given = penalties[tc[0]].get("weight")
        if given is not None and not math.isclose(float(given), target, rel_tol=1e-9, abs_tol=1e-12):
            raise ValueError(
                f"penalty[{tc[0]}].weight={given!r} conflicts with beta={out['beta']!r}: in the "
                f"tcvae family the total-correlation weight is beta - 1 = {target:g}; remove "
                f"penalty[{tc[0]}].weight, or set beta = {float(given) + 1.0:g}"
            )
        # Derived from beta at build time, never stored: a later beta override wins.
        out["penalty"][tc[0]].pop("weight", None)
        return out

    def build(self, spec):
        weighted = copy.deepcopy(spec)
        for penalty in weighted["penalty"]:
            if penalty["kind"] == TC_KIND:
                penalty["weight"] = spec["beta"] - 1.0
        model = super().build(weighted)
        model.spec = spec
        return model

    def kl_weight(self, spec) -> float:
        return 1.0

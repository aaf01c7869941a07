"""The training objective: the ELBO's terms with one weight each, plus penalties.

The loss that ``Trace_ELBO`` minimises, per datapoint (the lecture notes'
L_new = −ELBO + λ₁ r₁ + λ₂ r₂, in the terms of Chen et al. 2018, Eq. (2)):

    loss = −E_q[log p(x|z)] + kl · KL(q(z|x) ‖ p(z))
           + mi · I_q(x; z) + tc · KL(q(z) ‖ Π_l q(z_l)) + dimwise_kl · Σ_l KL(q(z_l) ‖ p(z_l))
           + Σ_k weight_k · penalty_k

    Chen, Li, Grosse & Duvenaud (2018), "Isolating Sources of Disentanglement in
    Variational Autoencoders", NeurIPS, arXiv:1802.04942.

Each weight means one thing: how much its term adds to the loss. The defaults
(``kl = 1``, the others 0, no penalties) give −ELBO. Since KL = MI + TC + dimwise
KL, Chen et al.'s Eq. (4) with (α, β, γ) is ``kl = 1, mi = α − 1, tc = β − 1,
dimwise_kl = γ − 1``; a β-VAE is ``kl = β``. The spec's top-level ``beta`` is an
alias of one weight, fixed by the family (``Family.beta_term``).

How the terms reach Pyro: ``kl`` scales the ``z`` sites of model and guide
(``poutine.scale``), so the ELBO's own KL carries it; ``mi``, ``tc`` and
``dimwise_kl`` are estimated on the minibatch (:func:`ppl_vae.estimators.kl_decomposition`,
``estimator`` = ``"mss"`` | ``"mws"``) and added with the penalties as
``pyro.factor`` sites named ``penalty_<term>``, which inference utilities skip.
"""

from __future__ import annotations

import math

import pyro
import torch
from torch import nn

from ppl_vae import _checks, _runtime
from ppl_vae.estimators import ESTIMATORS, diagonal_normal, kl_decomposition
from ppl_vae.parts.base import PenaltyInputs

#: Weights of the ``[objective]`` table and their defaults (the plain −ELBO).
WEIGHTS = {"kl": 1.0, "mi": 0.0, "tc": 0.0, "dimwise_kl": 0.0}
#: Keys of the ``[objective]`` table.
KEYS = {**WEIGHTS, "estimator": "mss"}
#: Objective weight -> field of :class:`ppl_vae.estimators.KLDecomposition`.
_TERMS = {"mi": "mutual_information", "tc": "total_correlation", "dimwise_kl": "dimwise_kl"}
#: Penalty kinds of earlier specs that are now objective weights.
_OLD_PENALTIES = {"total_correlation": "tc", "mutual_information": "mi"}


def _weight(where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}={value!r} is invalid: pass a finite number")
    return float(value)


def resolve(raw: dict, *, beta, beta_term: str | None) -> tuple[dict, list]:
    """The resolved ``[objective]`` table and the remaining ``[[penalty]]`` list.

    ``raw`` is the top-level spec; ``beta`` (or None) is its alias of the weight
    ``beta_term``: ``"kl"`` (β-VAE, kl = β) or ``"tc"`` (β-TCVAE, β is the total
    weight of TC in the loss, tc = β − kl). A ``total_correlation`` or
    ``mutual_information`` ``[[penalty]]`` of an earlier spec becomes the weight
    ``tc`` / ``mi`` (same estimator, same value); a ``kl`` penalty is refused
    with what to write instead.
    """
    table = raw.get("objective") or {}
    if not isinstance(table, dict):
        raise ValueError(f"[objective] must be a table of weights, got {table!r}")
    for key in table:
        if key not in KEYS:
            raise ValueError(
                f"unknown key objective.{key!r}; valid keys: {', '.join(sorted(KEYS))}"
            )
    obj = {**KEYS, **table}
    given = set(table)
    penalties = raw.get("penalty", [])
    penalties = [penalties] if isinstance(penalties, dict) else list(penalties)
    kept = []
    for i, p in enumerate(penalties):
        kind = p.get("kind") if isinstance(p, dict) else None
        if kind == "kl":
            raise ValueError(
                f"penalty[{i}] of kind 'kl' is now the objective's kl weight: remove it and "
                f"write [objective] kl = {1.0 + _weight(f'penalty[{i}].weight', p.get('weight', 1.0)):g} "
                "(1 + its weight)"
            )
        if kind not in _OLD_PENALTIES:
            kept.append(p)
            continue
        term = _OLD_PENALTIES[kind]
        extra = set(p) - {"kind", "weight", "estimator"}
        if extra:
            raise ValueError(
                f"unknown key penalty[{i}].{min(extra)!r}; valid keys: estimator, kind, weight"
            )
        if "estimator" in p:
            obj["estimator"] = p["estimator"]
        if "weight" in p:
            if term in given:
                raise ValueError(
                    f"penalty[{i}] of kind {kind!r} and objective.{term} both set the {kind} "
                    f"weight: keep only objective.{term}"
                )
            obj[term] = p["weight"]
            given.add(term)
        elif term != beta_term:
            raise ValueError(
                f"penalty[{i}] of kind {kind!r} has no weight: write [objective] {term} = <weight>"
            )
    for key in WEIGHTS:
        obj[key] = _weight(f"objective.{key}", obj[key])
    obj["kl"] = _checks.positive_float("objective.kl", obj["kl"])
    obj["estimator"] = _checks.one_of("objective.estimator", obj["estimator"], ESTIMATORS)
    if beta is not None and beta_term is not None:
        target = beta if beta_term == "kl" else beta - obj["kl"]
        agree = math.isclose(obj[beta_term], target, rel_tol=1e-9, abs_tol=1e-12)
        if beta_term in given and not agree:
            meaning = "kl = beta" if beta_term == "kl" else "tc = beta - kl"
            raise ValueError(
                f"objective.{beta_term}={obj[beta_term]!r} conflicts with beta={beta!r}: in this "
                f"family beta is an alias ({meaning} = {target:g}); write only one of them"
            )
        obj[beta_term] = float(target)
    return obj, kept


def beta_of(objective: dict, beta_term: str | None):
    """The ``beta`` alias read back from a resolved objective (None without an alias)."""
    if beta_term == "kl":
        return objective["kl"]
    if beta_term == "tc":
        return objective["tc"] + objective["kl"]
    return None


class Objective(nn.Module):
    """The weights of a resolved ``[objective]`` table and the model's penalty parts.

    Examples
    --------
    >>> import ppl_vae as pv
    >>> model = pv.build("tcvae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> model.objective.kl, model.objective.terms, model.objective.active
    (1.0, {'tc': 5.0}, True)
    """

    def __init__(self, table: dict, penalties):
        super().__init__()
        self.weights = {key: float(table[key]) for key in WEIGHTS}
        self.estimator = table["estimator"]
        self.penalties = nn.ModuleList(penalties)
        self.terms = {k: w for k, w in self.weights.items() if k in _TERMS and w != 0.0}

    @property
    def kl(self) -> float:
        """Weight of KL(q(z|x) ‖ p(z)): the scale of the ``z`` sites."""
        return self.weights["kl"]

    @property
    def needs_posterior(self) -> bool:
        return bool(self.terms) or any(p.needs_posterior for p in self.penalties)

    @property
    def auxiliary_parts(self) -> tuple:
        """The penalties that train parameters of their own (``Penalty.auxiliary``)."""
        return tuple(p for p in self.penalties if p.auxiliary)

    @property
    def active(self) -> bool:
        """True when the objective adds factor sites (decomposition terms or penalties)."""
        return bool(self.terms) or len(self.penalties) > 0

    def check_compatible(self, model) -> None:
        """Raise a ValueError if a term or penalty cannot work with ``model``'s parts."""
        if self.terms:
            name = ", ".join(f"objective.{k}" for k in self.terms)
            if not model.q.amortized:
                raise ValueError(
                    f"{name} needs an amortized guide (the minibatch estimate of q(z) pairs "
                    f"every sample with every encoder output), but guide.kind="
                    f"{model.spec['guide']['kind']!r}: set guide.kind = 'amortized'"
                )
            covariance = getattr(model.q, "covariance", None)
            if covariance != "diagonal":
                raise ValueError(
                    f"{name} needs diagonal Gaussian posteriors, but guide.covariance="
                    f"{covariance!r}: set guide.covariance = 'diagonal'"
                )
            if "dimwise_kl" in self.terms:
                model.prior.factors(needed_by="objective.dimwise_kl")
        for penalty in self.penalties:
            penalty.check_compatible(model)

    def decomposition(self, inputs: PenaltyInputs) -> dict[str, torch.Tensor]:
        """Per-sample MI, TC and dimension-wise KL, shape ``z.shape[:-1]``.

        Leading dimensions of ``z`` (vectorised particles) are one minibatch each.
        """
        needed_by = "the objective's " + ", ".join(self.terms)
        loc, scale = diagonal_normal(inputs.posterior, needed_by=needed_by)
        log_prior = None
        if "dimwise_kl" in self.terms:
            log_prior = inputs.prior.factors(needed_by="objective.dimwise_kl").log_prob
        flat = inputs.z.reshape(-1, *inputs.z.shape[-2:])  # [S, B, L]
        parts = [
            kl_decomposition(
                zs, loc, scale, inputs.num_data, estimator=self.estimator, log_prior=log_prior
            )
            for zs in flat
        ]
        shape = inputs.z.shape[:-1]
        return {
            k: torch.stack([getattr(p, _TERMS[k]) for p in parts]).reshape(shape)
            for k in self.terms
        }

    def factor_sites(self, inputs: PenaltyInputs) -> None:
        """Add ``pyro.factor(penalty_<name>, −weight · value)`` for every active term."""
        batch = inputs.x.shape[:1]
        prefix = _runtime.PENALTY_PREFIX
        if self.terms:
            values = self.decomposition(inputs)
            for key, weight in self.terms.items():
                pyro.factor(f"{prefix}_{key}", -weight * values[key].expand(batch))
        for penalty in self.penalties:
            value = penalty(inputs).expand(batch)
            pyro.factor(f"{prefix}_{penalty.part_name}", -penalty.weight * value)

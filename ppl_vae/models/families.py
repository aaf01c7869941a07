"""Families: how a resolved spec's top-level keys become a model.

A family validates the top-level keys, resolves the part tables and builds
the model. The built-in presets (``ppl_vae/presets/*.toml``) name a family;
a new family is one registered class plus a preset.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from ppl_vae import _checks, registry
from ppl_vae import spec as spec_mod
from ppl_vae.models import graph_spec
from ppl_vae.models.gmm import GaussianMixture
from ppl_vae.models.graph import build_graph
from ppl_vae.models.latent import LatentVariableModel
from ppl_vae.parts import objective as objective_mod
from ppl_vae.parts.base import Context
from ppl_vae.registry import register


class Family:
    """Base: top-level keys with defaults; subclasses add tables and build.

    ``beta_term`` names the ``[objective]`` weight that the top-level ``beta``
    is an alias of (None: the family has no ``beta``).
    """

    top_keys: ClassVar[dict] = {"data_dim": 64, "seed": 0}
    tables: tuple = ()
    beta_term: ClassVar[str | None] = None

    def resolve(self, raw: dict) -> dict:
        valid = {"family", *self.top_keys, *self.tables}
        if "training" in raw:
            raise ValueError(
                "the spec has a [training] table, which pv.build does not read (it builds the "
                "model only): pass those options to pv.fit(model, x, ...), or train with "
                "`ppl-vae train --spec FILE`, which reads the table"
            )
        spec_mod.check_keys(raw, valid, "")
        out = {"family": raw["family"]}
        for key, default in self.top_keys.items():
            out[key] = raw.get(key, default)
        out["data_dim"] = _checks.positive_int("data_dim", out["data_dim"])
        out["seed"] = _checks.seed("seed", out["seed"])
        return out

    def build(self, spec: dict):
        raise NotImplementedError


@register("family", "vae")
class LatentFamily(Family):
    """Continuous latent composed of parts: VAE / β-VAE (``beta`` = ``objective.kl``)."""

    top_keys: ClassVar[dict] = {"data_dim": 64, "latent_dim": 8, "beta": None, "seed": 0}
    tables = ("prior", "likelihood", "decoder", "guide", "objective", "penalty")
    beta_term = "kl"
    model_class = LatentVariableModel
    #: True when a spec may declare a model graph (``[latent.*]`` tables) in this family.
    graphs: ClassVar[bool] = True

    def resolve(self, raw):
        if "latent" in raw:
            return self._resolve_graph(raw)
        out = super().resolve(raw)
        out["latent_dim"] = _checks.positive_int(
            "latent_dim", out["latent_dim"], fix="pass an integer >= 1 (e.g. latent_dim=8)"
        )
        beta = out.pop("beta")
        if beta is not None:
            beta = _checks.positive_float("beta", beta)
        for table in spec_mod.PART_TABLES:
            if table not in raw:
                raise ValueError(f"spec has no [{table}] table; add one with a 'kind' key")
            out[table] = spec_mod.resolve_part(table, raw[table], where=table)
        out["objective"], penalties = objective_mod.resolve(
            raw, beta=beta, beta_term=self.beta_term
        )
        out["beta"] = objective_mod.beta_of(out["objective"], self.beta_term)
        out["penalty"] = [
            spec_mod.resolve_part("penalty", p, where=f"penalty[{i}]")
            for i, p in enumerate(penalties)
        ]
        return out

    def _objective(self, raw):
        """``(objective, beta, penalties)`` of a raw spec, with this family's ``beta`` alias."""
        beta = raw.get("beta")
        if beta is not None:
            beta = _checks.positive_float("beta", beta)
        objective, penalties = objective_mod.resolve(raw, beta=beta, beta_term=self.beta_term)
        return objective, objective_mod.beta_of(objective, self.beta_term), penalties

    def _resolve_graph(self, raw):
        if not self.graphs:
            raise ValueError(
                f"family {raw['family']!r} has no model graphs: declare [latent.*] tables with "
                "family = 'vae'"
            )
        if "training" in raw:
            super().resolve(raw)  # the same refusal as a one-latent spec
        return graph_spec.resolve(raw, objective_of=self._objective)

    def context(self, spec) -> Context:
        return Context(spec["data_dim"], spec["latent_dim"], spec.get("num_classes"))

    def build(self, spec):
        if "latent" in spec:
            return build_graph(spec)
        ctx = self.context(spec)

        def make(kind, table):
            options = {k: v for k, v in table.items() if k != "kind"}
            return registry.get(kind, table["kind"])(ctx, **options)

        prior = make("prior", spec["prior"])
        likelihood = make("likelihood", spec["likelihood"])
        # The decoder (and every part made after it: `make` reads `ctx` when called)
        # sees how many values per data dimension the likelihood takes.
        ctx = dataclasses.replace(ctx, params_per_dim=likelihood.params_per_dim)
        parts = {
            "context": ctx,
            "prior": prior,
            "likelihood": likelihood,
            "decoder": make("decoder", spec["decoder"]),
            "guide": make("guide", spec["guide"]),
            "objective": objective_mod.Objective(
                spec["objective"], [make("penalty", p) for p in spec["penalty"]]
            ),
        }
        model = self.model_class(spec, parts)
        model.objective.check_compatible(model)
        return model


@register("family", "tcvae")
class TCVAEFamily(LatentFamily):
    """β-TCVAE (Chen et al. 2018): the vae family with ``beta`` the total weight of TC.

    The whole difference is the alias: ``objective.tc = beta − objective.kl``, so
    with ``kl = 1`` the loss is −ELBO + (β − 1)·TC, Chen et al.'s Eq. (4) with
    α = γ = 1. The preset (``presets/tcvae.toml``) holds the rest.
    """

    beta_term = "tc"
    graphs = False


@register("family", "lvm")
class NonlinearLVMFamily(LatentFamily):
    """The lecture notes' nonlinear latent variable model: normal likelihood, σ² known."""


@register("family", "gmm")
class GMMFamily(Family):
    """Gaussian mixture with an enumerated discrete latent."""

    top_keys: ClassVar[dict] = {"data_dim": 64, "num_components": 10, "seed": 0}

    def resolve(self, raw):
        out = super().resolve(raw)
        out["num_components"] = _checks.positive_int("num_components", out["num_components"])
        return out

    def build(self, spec):
        return GaussianMixture(spec)

"""Inference utilities shared by every model (and raw Pyro model/guide pairs).

They never import ``ppl_vae.models``: they rely only on the conventions of
DESIGN.md (a ``"data"`` plate, latent site ``"z"``, observed site ``"x"``).
"""

from ppl_vae.infer.elbo import elbo
from ppl_vae.infer.exact import exact_log_likelihood
from ppl_vae.infer.importance import ISResult, log_likelihood, pareto_khat
from ppl_vae.infer.latent_space import (
    aggregate_posterior,
    attribute_vector,
    project,
    resynthesize,
    sample_aggregate_posterior,
    traverse,
)
from ppl_vae.infer.local_guide import LocalGaussianGuide, fit_local_guide

__all__ = [
    "ISResult",
    "LocalGaussianGuide",
    "aggregate_posterior",
    "attribute_vector",
    "elbo",
    "exact_log_likelihood",
    "fit_local_guide",
    "log_likelihood",
    "pareto_khat",
    "project",
    "resynthesize",
    "sample_aggregate_posterior",
    "traverse",
]

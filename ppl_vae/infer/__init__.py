"""Inference utilities shared by every model (and raw Pyro model/guide pairs).

They never import ``ppl_vae.models``: they rely only on the conventions of
DESIGN.md (a ``"data"`` plate, latent site ``"z"``, observed site ``"x"``).
"""

from ppl_vae.infer.elbo import elbo
from ppl_vae.infer.exact import exact_log_likelihood
from ppl_vae.infer.importance import ISResult, log_likelihood, pareto_khat

__all__ = ["ISResult", "elbo", "exact_log_likelihood", "log_likelihood", "pareto_khat"]

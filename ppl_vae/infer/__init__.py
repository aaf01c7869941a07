"""Inference utilities for any Pyro model/guide pair, ppl_vae's models included.

They never import ``ppl_vae.models``. A program is read through one trace
reader (``_trace``) with Pyro's semantics for masks, scales, enumeration and
subsampling; the datapoint plate, latent and observed sites are found from the
trace (``data_plate=``, ``latent=``, ``observed=`` override). What has no exact
per-datapoint answer is refused with a ``ValueError`` naming the site.
"""

from ppl_vae.infer._psis import khat_threshold, pareto_khat
from ppl_vae.infer.ais import AISResult, ais
from ppl_vae.infer.bdmc import BDMCResult, bdmc
from ppl_vae.infer.elbo import ELBOTerms, elbo, elbo_terms
from ppl_vae.infer.exact import exact_log_likelihood
from ppl_vae.infer.importance import ISResult, log_likelihood
from ppl_vae.infer.latent_space import (
    aggregate_posterior,
    attribute_vector,
    posterior_mean,
    project,
    resynthesize,
    sample_aggregate_posterior,
    traverse,
)
from ppl_vae.infer.local_guide import (
    LocalFlowGuide,
    LocalGaussianGuide,
    LocalJointGuide,
    fit_local_guide,
)

__all__ = [
    "AISResult",
    "BDMCResult",
    "ELBOTerms",
    "ISResult",
    "LocalFlowGuide",
    "LocalGaussianGuide",
    "LocalJointGuide",
    "aggregate_posterior",
    "ais",
    "attribute_vector",
    "bdmc",
    "elbo",
    "elbo_terms",
    "exact_log_likelihood",
    "fit_local_guide",
    "khat_threshold",
    "log_likelihood",
    "pareto_khat",
    "posterior_mean",
    "project",
    "resynthesize",
    "sample_aggregate_posterior",
    "traverse",
]

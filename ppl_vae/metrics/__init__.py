"""Metrics: arrays in, floats, dicts or DataFrames out.

One file per metric; each public function validates its inputs and labels its
result, over a private array-only core.
"""

from ppl_vae.metrics._sampling import ArraySampler, GridSampler
from ppl_vae.metrics.active_units import active_units, unit_variances
from ppl_vae.metrics.betavae_score import betavae_score
from ppl_vae.metrics.dci import dci
from ppl_vae.metrics.decomposition import elbo_decomposition
from ppl_vae.metrics.factorvae_score import factorvae_score
from ppl_vae.metrics.kl_per_latent import kl_per_latent
from ppl_vae.metrics.mig import mig, mig_details
from ppl_vae.metrics.modularity import modularity_explicitness
from ppl_vae.metrics.ood import ood_auroc
from ppl_vae.metrics.sap import sap, sap_details
from ppl_vae.metrics.sbc import check_simulations, rank_counts, rank_uniformity, sbc_ranks
from ppl_vae.metrics.score import score

__all__ = [
    "ArraySampler",
    "GridSampler",
    "active_units",
    "betavae_score",
    "check_simulations",
    "dci",
    "elbo_decomposition",
    "factorvae_score",
    "kl_per_latent",
    "mig",
    "mig_details",
    "modularity_explicitness",
    "ood_auroc",
    "rank_counts",
    "rank_uniformity",
    "sap",
    "sap_details",
    "sbc_ranks",
    "score",
    "unit_variances",
]

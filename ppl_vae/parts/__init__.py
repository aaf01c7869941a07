"""The parts a spec composes: priors (of one latent or of a graph's latents), likelihoods,
decoders, guides, the objective, penalties.

Importing this package registers the built-in parts.
"""

from ppl_vae.parts import (  # noqa: F401
    capacity,
    conv,
    dip,
    discretized,
    factor_tc,
    graph_priors,
    guides,
    likelihoods,
    networks,
    objective,
    priors,
    repulsion,
)
from ppl_vae.parts.base import Context, Decoder, Guide, Likelihood, Penalty, PenaltyInputs, Prior
from ppl_vae.parts.objective import Objective

__all__ = ["Context", "Decoder", "Guide", "Likelihood", "Objective", "Penalty", "PenaltyInputs",
           "Prior"]

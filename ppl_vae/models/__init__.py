"""Model families and ``build``. Importing this package registers the built-in families."""

from ppl_vae.models import families, rdvae  # noqa: F401
from ppl_vae.models.build import build
from ppl_vae.models.gmm import GaussianMixture
from ppl_vae.models.latent import LatentVariableModel
from ppl_vae.models.protocol import Model

__all__ = ["GaussianMixture", "LatentVariableModel", "Model", "build"]

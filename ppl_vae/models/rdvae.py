"""The Regularized Discriminative VAE (lecture notes, last section): family and model.

A VAE whose prior holds one Gaussian per class, Norm_z[μ_c, s_c² I]
(``prior.kind = "class_conditional"``), trained on labelled data with

    Total loss = Reconstruction loss + KL loss + weight · L_rep

where L_rep (the ``repulsion`` penalty) keeps the class means at least √ρ apart.
Classes then separate in the latent space while each keeps what is needed to
reconstruct its members, so the model classifies (``class_log_prob``,
``predict``), keeps sub-classes inside a class Gaussian (``ppl_vae.analysis.find_subclasses``),
and flags out-of-domain inputs (``ppl_vae.analysis.ood_score``: any model's −log p(x), and
the latent scores of a class-structured prior).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ppl_vae import _checks, _seed
from ppl_vae.math import log_mean_exp
from ppl_vae.models.families import LatentFamily
from ppl_vae.models.latent import LatentVariableModel
from ppl_vae.registry import register


class RDVAE(LatentVariableModel):
    """A latent variable model with a class-conditional prior; build with ``pv.build("rdvae")``."""

    requires_labels = True

    def __init__(self, spec, parts):
        super().__init__(spec, parts)
        if not self.prior.class_structured:
            raise ValueError(
                f"prior.kind={spec['prior']['kind']!r} has no class Gaussians: family 'rdvae' "
                "needs prior.kind='class_conditional'"
            )
        if not self.q.amortized:
            raise ValueError(
                f"guide.kind={spec['guide']['kind']!r} is invalid for family 'rdvae': "
                "classification and OOD scores need an encoder, use guide.kind='amortized'"
            )

    def _codes(self, x, num_samples: int, seed) -> torch.Tensor:
        """Encoder means ``[1, N, L]`` (num_samples=0) or draws from q(z|x) ``[K, N, L]``."""
        q = self.encode(x)
        if num_samples == 0:
            return q.mean.unsqueeze(0)
        with _seed.seeded(seed):
            return q.sample((num_samples,))

    @torch.no_grad()
    def class_log_prob(self, x, *, num_samples: int = 32, seed: int | None = 0) -> torch.Tensor:
        """log p(c | x) ``[N, C]``: Bayes' rule in the latent space, averaged over q(z|x).

        p(c | x) ≈ (1/K) Σ_k p(c | z_k), z_k ~ q(z|x),
        with p(c | z) ∝ π_c Norm_z[μ_c, s_c² I].

        Parameters
        ----------
        x : array [N, D]
        num_samples : int
            K draws from q(z|x); 0 uses the encoder mean alone.
        seed : int, optional
        """
        num_samples = _checks.positive_int("num_samples", num_samples, minimum=0)
        z = self._codes(x, num_samples, seed)  # [K, N, L]
        log_post = self.prior.class_log_posterior(z)  # [K, N, C]
        return log_mean_exp(log_post, dim=0)

    def predict(self, x, *, num_samples: int = 32, seed: int | None = 0) -> torch.Tensor:
        """Most probable class ``[N]`` under :meth:`class_log_prob`."""
        return self.class_log_prob(x, num_samples=num_samples, seed=seed).argmax(-1)


@register("family", "rdvae")
class RDVAEFamily(LatentFamily):
    """Regularized Discriminative VAE: class-conditional prior + repulsion penalty.

    Top-level ``num_classes`` (required, >= 2) sets the number of class Gaussians;
    training needs labels 0..num_classes-1 (``pv.fit(model, x, y=labels)``).
    """

    top_keys: ClassVar[dict] = {**LatentFamily.top_keys, "num_classes": None}
    model_class = RDVAE
    graphs = False

    def resolve(self, raw):
        out = super().resolve(raw)
        out["num_classes"] = _checks.positive_int(
            "num_classes",
            out["num_classes"],
            minimum=2,
            fix="pass the number of in-domain classes, an integer >= 2 (e.g. num_classes=5)",
        )
        return out

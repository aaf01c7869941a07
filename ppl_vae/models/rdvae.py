"""The Regularized Discriminative VAE (lecture notes, last section): family and model.

A VAE whose prior holds one Gaussian per class, Norm_z[μ_c, s_c² I]
(``prior.kind = "class_conditional"``), trained on labelled data with

    Total loss = Reconstruction loss + KL loss + weight · L_rep

where L_rep (the ``repulsion`` penalty) keeps the class means at least √ρ apart.
Classes then separate in the latent space while each keeps what is needed to
reconstruct its members, so the model classifies (``class_log_prob``,
``predict``), keeps sub-classes inside a class Gaussian (``ppl_vae.analysis.find_subclasses``),
and flags out-of-domain inputs (``ood_score``).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ppl_vae import _checks, _seed
from ppl_vae.math import log_mean_exp
from ppl_vae.models.families import LatentFamily
from ppl_vae.models.latent import LatentVariableModel
from ppl_vae.registry import register

#: ``ood_score`` methods; see :meth:`RDVAE.ood_score`.
OOD_METHODS = ("log_px", "latent_density", "latent_distance")
#: Chosen by ``benchmarks/rdvae_ood_digits.py`` (digits 0-4 vs 5-9, three seeds): the
#: class-marginal importance-sampled log p(x) separates best; the latent scores see
#: only the encoder mean and miss OOD digits the encoder maps into a class Gaussian.
DEFAULT_OOD_METHOD = "log_px"


class RDVAE(LatentVariableModel):
    """A latent variable model with a class-conditional prior; build with ``pv.build("rdvae")``."""

    requires_labels = True

    def __init__(self, spec, parts):
        super().__init__(spec, parts)
        if not hasattr(self.prior, "class_log_posterior"):
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

    @torch.no_grad()
    def log_marginal(
        self, x, *, num_samples: int = 256, seed: int | None = 0, chunk_size: int = 64
    ) -> torch.Tensor:
        """Importance-sampled log p(x) ``[N]`` of the class-marginal model, from its own parts.

        log p̂(x) = log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x),  z_k ~ q(z|x),

        with p(z) = Σ_c π_c Norm_z[μ_c, s_c² I]: the importance-weighted bound of
        order K (Burda et al., 2016), below log p(x) in expectation. ``chunk_size``
        rows are evaluated at a time (memory ~ K · chunk_size · D); the draws are
        made for all rows at once, so the result does not depend on it.
        """
        x, _ = self.check_data(x)
        num_samples = _checks.positive_int("num_samples", num_samples)
        chunk_size = _checks.positive_int("chunk_size", chunk_size)
        q = self.encode(x)
        with _seed.seeded(seed):
            z = q.sample((num_samples,))  # [K, N, L]
        log_w = self.prior.distribution(None).log_prob(z) - q.log_prob(z)  # [K, N]
        log_px = [
            self.decode(z[:, i : i + chunk_size]).log_prob(x[i : i + chunk_size])
            for i in range(0, x.shape[0], chunk_size)
        ]
        return log_mean_exp(log_w + torch.cat(log_px, dim=1), dim=0)

    @torch.no_grad()
    def ood_score(
        self,
        x,
        *,
        method: str = DEFAULT_OOD_METHOD,
        num_samples: int = 256,
        seed: int | None = 0,
    ) -> torch.Tensor:
        """Out-of-domain score ``[N]``, higher = more out-of-domain.

        Parameters
        ----------
        x : array [N, D]
        method : {"log_px", "latent_density", "latent_distance"}
            ``"log_px"``: −log p(x) of the class-marginal model (prior summed over
            classes), by importance sampling with K = ``num_samples`` draws from
            q(z|x) (:meth:`log_marginal`, the IWAE bound; ``pv.infer.log_likelihood``
            with ``y=None`` computes the same estimator with diagnostics).
            ``"latent_density"``: −log Σ_c π_c Norm[g_μ(x); μ_c, s_c² I], the negative
            class-marginal prior density at the encoder mean.
            ``"latent_distance"``: min_c ‖g_μ(x) − μ_c‖² / s_c², the squared
            (scale-normalised) distance from the encoder mean to the nearest class mean.
            The default was chosen by measurement (see ``DEFAULT_OOD_METHOD``).
        num_samples : int
            Importance samples for ``"log_px"``.
        seed : int, optional
        """
        _checks.one_of("method", method, OOD_METHODS)
        x, _ = self.check_data(x)
        if method == "log_px":
            num_samples = _checks.positive_int("num_samples", num_samples)
            return -self.log_marginal(x, num_samples=num_samples, seed=seed)
        mu = self.encode(x).mean  # [N, L]
        if method == "latent_density":
            return -self.prior.distribution(None).log_prob(mu)
        scale2 = self.prior.log_scale.exp().pow(2)  # [C]
        sq = (mu.unsqueeze(1) - self.prior.class_means).pow(2).sum(-1)  # [N, C]
        return (sq / scale2).min(dim=1).values


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

"""Importance-sampling estimates of log p(x) per datapoint, with diagnostics.

    p(x) = E_{q(z)}[p(x|z) p(z) / q(z)] ≈ (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k)

(the lecture notes' "Approximating sample probability through importance
sampling"). With the guide q(z|x) as proposal, log of the K-sample average is
the importance-weighted bound of order K (Burda et al., 2016, eq. 8): a lower
bound on log p(x) in expectation that increases with K towards log p(x).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyro
import torch

from ppl_vae import _checks, _seed
from ppl_vae.infer import _trace
from ppl_vae.math import importance_ess, log_mean_exp

KHAT_THRESHOLD = 0.7  # Vehtari et al. (2024): estimates with k̂ > 0.7 are unreliable


@dataclass
class ISResult:
    """Per-datapoint importance-sampling estimates.

    Attributes
    ----------
    log_px : Tensor [N]
        log of the K-sample importance average (the IWAE bound of order K).
    ess : Tensor [N]
        Importance-sampling effective sample size 1 / Σ w̃_k² (between 1 and K).
    khat : Tensor [N]
        Pareto-smoothed importance sampling shape estimate (Vehtari et al.,
        2024); above 0.7 the estimate cannot be trusted.
    num_samples : int
    proposal : str
    """

    log_px: torch.Tensor
    ess: torch.Tensor
    khat: torch.Tensor
    num_samples: int
    proposal: str = "guide"

    @property
    def reliable(self) -> torch.Tensor:
        """Boolean ``[N]``: k̂ ≤ 0.7."""
        return self.khat <= KHAT_THRESHOLD

    def to_frame(self) -> pd.DataFrame:
        """One row per datapoint: log_px, ess, ess_fraction, khat, reliable."""
        return pd.DataFrame(
            {
                "datapoint": np.arange(len(self.log_px)),
                "log_px": self.log_px.numpy(),
                "ess": self.ess.numpy(),
                "ess_fraction": self.ess.numpy() / self.num_samples,
                "khat": self.khat.numpy(),
                "reliable": self.reliable.numpy(),
                "num_samples": self.num_samples,
                "proposal": self.proposal,
            }
        )

    def summary(self) -> dict:
        """Dataset-level numbers: mean log p(x), mean ESS, share of k̂ > 0.7."""
        return {
            "log_px": float(self.log_px.mean()),
            "log_px_se": float(self.log_px.std() / math.sqrt(len(self.log_px))),
            "ess_mean": float(self.ess.mean()),
            "khat_max": float(self.khat.max()),
            "share_khat_gt_0.7": float((~self.reliable).float().mean()),
            "num_samples": self.num_samples,
        }


def pareto_khat(log_w: torch.Tensor) -> torch.Tensor:
    """PSIS k̂ per datapoint from log-weights ``[K, N]`` via ArviZ.

    ArviZ 0.x ``psislw`` takes the *log importance weights* themselves with
    samples on the last axis (ArviZ 1.x's counterpart takes log-likelihoods of
    LOO and negates them); here the weights are p(x, z)/q(z|x) directly.
    """
    if log_w.shape[0] < 2:
        # one draw has no tail to fit (ArviZ would index out of range); like ArviZ
        # for tails of <= 4 draws (K below about 25), report inf: "cannot tell".
        return torch.full(log_w.shape[1:], float("inf"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import arviz as az

        _, khat = az.psislw(log_w.T.double().numpy(), reff=1.0)
    return torch.as_tensor(np.asarray(khat), dtype=torch.float32)


# torch's CPU normal sampler fills a contiguous tensor of >= 16 floats with one
# uniform per element and transforms them in blocks of 16 (Box-Muller pairs i, i+8);
# a size that is not a multiple of 16 gets its last 16 values redrawn from 16 fresh
# uniforms. So a draw of a·16 values followed by one of b values consumes exactly the
# stream of a single draw of a·16 + b values, and gives the same numbers.
_RNG_BLOCK = 16


def chunk_sizes(num_samples: int, chunk_size: int, n: int) -> list[int]:
    """Particles per pass, aligned so that chunking does not change the random stream.

    Every chunk but the last holds a multiple of ``16 / gcd(16, n)`` particles,
    so it draws a multiple of 16 normal variates for any latent size; a last
    chunk that would draw fewer than 16 variates joins the one before it. With
    these boundaries a proposal whose randomness is one Gaussian draw per pass
    (a single guide site ``z``) gives bit-identical log-weights for every
    ``chunk_size`` under the same seed, on CPU.
    """
    step = _RNG_BLOCK // math.gcd(_RNG_BLOCK, n)
    size = max(step, (chunk_size // step) * step)
    sizes = [size] * (num_samples // size)
    rest = num_samples - size * len(sizes)
    if rest:
        if sizes and rest * n < _RNG_BLOCK:
            sizes[-1] += rest
        else:
            sizes.append(rest)
    return sizes


# Measured on the 784-D benchmark VAE (benchmarks/bench_log_likelihood.py): passes of
# 10-32 MiB per [chunk, N, D] tensor ran ~10 % faster than 64-256 MiB (less memory
# traffic), with no gain below that.
_CHUNK_BYTES = 32 * 2**20


def _default_chunk(num_samples: int, n: int, d: int) -> int:
    """Particles per pass so that one ``[chunk, N, D]`` float32 tensor stays near 32 MiB."""
    per_particle = max(1, n * max(d, 1) * 4)
    return int(max(1, min(num_samples, _CHUNK_BYTES // per_particle)))


def log_likelihood(
    model,
    x,
    y=None,
    *,
    guide=None,
    num_samples: int = 1000,
    proposal: str = "guide",
    chunk_size: int | None = None,
    seed=None,
    diagnostics: bool = True,
    **model_kwargs,
) -> ISResult:
    """Importance-sampling estimate of log p(x) for every datapoint.

    Parameters
    ----------
    model
        A ppl_vae model, or a raw Pyro model callable following the plate
        convention (then pass ``guide=``).
    x : array [N, D]
    y : array [N], optional
        Labels for class-structured models (estimates log p(x, y) then).
    guide : callable, optional
        Proposal guide (defaults to the model's guide).
    num_samples : int
        K, importance samples per datapoint.
    proposal : {"guide", "prior"}
        Draw z from the guide q(z|x), or from the prior p(z).
    chunk_size : int, optional
        Particles per vectorised pass (bounds memory); by default chosen so an
        ``[chunk, N, D]`` tensor takes about 32 MiB. Rounded to a multiple of
        ``16 / gcd(16, N)`` particles (see :func:`chunk_sizes`) so that, with the
        same ``seed``, results do not depend on it when the proposal draws all
        its randomness at one Gaussian site (any ppl_vae guide, or the prior
        proposal of a one-latent model). A proposal with several random sites
        draws them site by site within each pass, so there chunking changes
        which variates go where: the results are then equal in distribution,
        not bit for bit.
    seed : int, optional
    diagnostics : bool
        Compute the PSIS k̂ (costs a sort per datapoint); NaN when False.

    Returns
    -------
    ISResult
        ``log_px``, ``ess``, ``khat`` per datapoint, ``num_samples``, ``to_frame()``.
    """
    num_samples = _checks.positive_int("num_samples", num_samples)
    _checks.one_of("proposal", proposal, ("guide", "prior"))
    model_fn, guide_fn, owner = _trace.resolve(model, guide)
    x, y = _trace.check_data(owner, x, y)
    if chunk_size is None:
        chunk_size = _default_chunk(num_samples, x.shape[0], x.shape[1])
    chunk_size = _checks.positive_int("chunk_size", chunk_size)
    nesting = _trace.plate_nesting(owner, model_fn, guide_fn, x, y, model_kwargs)
    chunks = []
    with _seed.seeded(seed), torch.no_grad():
        for i, k in enumerate(chunk_sizes(num_samples, chunk_size, x.shape[0])):
            # The first pass runs with the caller's validation setting and catches
            # invalid parameters or supports; later passes repeat the same program on
            # new draws, so their support checks (a scan of [chunk, N, D]) are skipped.
            checks = contextlib.nullcontext() if i == 0 else pyro.validation_enabled(False)
            with checks:
                chunks.append(
                    _trace.log_weights(
                        model_fn, guide_fn, x, y, num_particles=k, nesting=nesting,
                        proposal=proposal, kwargs=model_kwargs,
                    )
                )
    log_w = torch.cat(chunks, 0)  # [K, N]
    khat = pareto_khat(log_w) if diagnostics else torch.full((x.shape[0],), float("nan"))
    return ISResult(
        log_px=log_mean_exp(log_w, dim=0),
        ess=importance_ess(log_w, dim=0),
        khat=khat,
        num_samples=num_samples,
        proposal=proposal,
    )

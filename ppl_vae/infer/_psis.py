"""Pareto-smoothed importance sampling diagnostic k̂, vectorised over datapoints.

For each datapoint the largest M = ⌈min(K/5, 3√K)⌉ importance weights are fitted
with a generalized Pareto distribution by the empirical-Bayes estimator of
Zhang & Stephens (2009), with the weakly informative prior on k of Vehtari et
al. (2024, "Pareto smoothed importance sampling", JMLR 25, §3 and appendix C).
This follows ArviZ 0.x ``psislw`` step for step (it is the reference in the
tests, equal to 1e-4) but fits every datapoint at once in torch, on the
weights' device.

Readings (Vehtari et al., 2024, §3.2.4):

- k̂ ≤ min(1 − 1/log10 K, 0.7): the estimate is reliable;
- above it: unreliable (the tail is too heavy for K draws);
- NaN, "cannot tell": K < 21 leaves at most 4 tail draws, too few to fit;
- −inf, "no tail": the top M + 1 weights agree to within ``FLAT`` nats, as they
  do (up to rounding) for a proposal equal to the posterior; such weights are
  bounded, and ArviZ's inf for them would flag a perfect proposal.
"""

from __future__ import annotations

import math

import torch

PRIOR_BS = 3  # Zhang & Stephens' prior scale for the b grid
PRIOR_K = 10  # weight of the prior k = 0.5 (Vehtari et al., 2024, eq. 13)
FLAT = 1e-3  # nats: a tail this flat is bounded, not heavy
MIN_TAIL = 5
_ROWS = 1024  # datapoints fitted per pass: bounds the [rows, grid, tail] buffer


def khat_threshold(num_samples: int) -> float:
    """Sample-size dependent threshold min(1 − 1/log10 K, 0.7) (ArviZ's ``good_k``).

    Examples
    --------
    >>> from ppl_vae.infer import khat_threshold
    >>> khat_threshold(100), round(khat_threshold(1000), 4), khat_threshold(10**6)
    (0.5, 0.6667, 0.7)
    """
    if num_samples < 2:
        return float("nan")
    return min(1.0 - 1.0 / math.log10(num_samples), 0.7)


def tail_length(num_samples: int) -> int:
    """M = ⌈min(K/5, 3√K)⌉ draws in the fitted tail (relative efficiency 1)."""
    return math.ceil(min(num_samples / 5.0, 3 * math.sqrt(num_samples)))


def pareto_khat(log_w: torch.Tensor) -> torch.Tensor:
    """k̂ per datapoint from log-weights ``[K, N]``, ``Tensor[N]`` (float32, same device).

    Examples
    --------
    Three datapoints: flat weights (a perfect proposal), light-tailed weights, and
    weights with a heavy (Cauchy-like) tail:

    >>> import torch
    >>> from ppl_vae.infer import khat_threshold, pareto_khat
    >>> g = torch.Generator().manual_seed(0)
    >>> flat = torch.zeros(1000)
    >>> light = 0.5 * torch.randn(1000, generator=g)
    >>> heavy = 3 * torch.rand(1000, generator=g).reciprocal().log()
    >>> khat = pareto_khat(torch.stack([flat, light, heavy], dim=1))
    >>> khat.shape, khat[0].item()
    (torch.Size([3]), -inf)
    >>> bool(khat[1] < khat_threshold(1000) < khat[2])    # reliable, then unreliable
    True
    """
    if log_w.dim() != 2:
        raise ValueError(f"log_w has shape {tuple(log_w.shape)}: pass log-weights [K, N]")
    k, n = log_w.shape
    out = torch.full((n,), float("nan"), dtype=torch.float64, device=log_w.device)
    m = tail_length(k)
    if m < MIN_TAIL or n == 0:
        return out.float()
    x = log_w.detach().double().T  # [N, K]
    x = x - x.max(dim=1, keepdim=True).values
    xs = torch.sort(x, dim=1).values
    tiny = math.log(torch.finfo(torch.float64).tiny)
    cutoff = xs[:, k - m - 1].clamp_min(tiny)  # [N]
    lengths = (xs > cutoff[:, None]).sum(1)  # the tail is the last `length` sorted values
    out[:] = float("inf")  # ArviZ: too short a tail to fit
    out[-xs[:, k - m - 1] <= FLAT] = -float("inf")
    fit = (lengths >= MIN_TAIL) & (-xs[:, k - m - 1] > FLAT)
    for length in torch.unique(lengths[fit]).tolist():
        rows = torch.nonzero(fit & (lengths == length)).flatten()
        for start in range(0, len(rows), _ROWS):
            r = rows[start: start + _ROWS]
            tail = torch.exp(xs[r, k - length:]) - torch.exp(cutoff[r])[:, None]
            out[r] = _gpd_shape(tail)
    return out.float()


def _gpd_shape(ary: torch.Tensor) -> torch.Tensor:
    """Zhang & Stephens' posterior-mean k for sorted positive tails ``[R, n]``, with prior."""
    n = ary.shape[1]
    grid = 30 + int(n**0.5)
    j = torch.arange(1, grid + 1, dtype=ary.dtype, device=ary.device)
    b = 1 - torch.sqrt(grid / (j - 0.5))  # [grid]
    quartile = ary[:, int(n / 4 + 0.5) - 1]
    b = b[None, :] / (PRIOR_BS * quartile[:, None]) + 1 / ary[:, -1:]  # [R, grid]
    k_grid = torch.log1p(-b[:, :, None] * ary[:, None, :]).mean(-1)  # [R, grid]
    profile = n * (torch.log(-(b / k_grid)) - k_grid - 1)
    weights = torch.softmax(profile, dim=1)
    # ArviZ drops grid points of negligible weight and renormalises
    weights = torch.where(weights >= 10 * torch.finfo(ary.dtype).eps, weights, 0.0)
    weights = weights / weights.sum(1, keepdim=True)
    b_post = (b * weights).sum(1)
    k_post = torch.log1p(-b_post[:, None] * ary).mean(1)
    return (n * k_post + PRIOR_K * 0.5) / (n + PRIOR_K)

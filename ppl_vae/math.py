"""Formulas used across the package, each written once.

Shapes follow torch broadcasting; ``dim`` arguments are explicit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Floor added to every softplus-parameterised scale (guides, local posteriors), so a
#: scale never reaches 0 and log-densities stay finite.
MIN_SCALE = 1e-4


def log_mean_exp(a: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """``log((1/K) Σ_k exp(a_k))`` along ``dim``, computed stably with logsumexp."""
    return torch.logsumexp(a, dim=dim) - math.log(a.shape[dim])


def renyi_mean(log_w: torch.Tensor, alpha: float, dim: int = 0) -> torch.Tensor:
    """``(1/(1-α)) log((1/K) Σ_k exp((1-α) a_k))`` along ``dim``: the Rényi bound's
    K-sample estimator (Li & Turner, 2016, eq. 5) from log-weights ``a_k``.

    α = 0 is :func:`log_mean_exp` (the IWAE bound) and α → 1 the mean of ``a`` (the
    ELBO). Near α = 1 the direct form divides a cancelling difference by 1 − α (at
    |1 − α| = 1e-12 it returns noise or 0); written as ``m + log1p(mean(expm1(s·d)))/s``
    with ``m`` the mean, ``d = a − m`` and ``s = 1 − α``, it is exact to rounding for
    every α ≠ 1, and the direct form is used where ``|s·d|`` could overflow expm1.
    """
    s = 1.0 - alpha
    m = log_w.mean(dim=dim, keepdim=True)
    sd = s * (log_w - m)
    near = sd.detach().abs().amax(dim=dim) < 1.0  # per column: no host read
    # clamped so the branch not taken stays finite (its gradient is masked, not NaN)
    close = torch.log1p(torch.expm1(sd.clamp(-1.0, 1.0)).mean(dim=dim)) / s
    direct = (torch.logsumexp(sd, dim=dim) - math.log(log_w.shape[dim])) / s
    return m.squeeze(dim) + torch.where(near, close, direct)


def normalized_weights(log_w: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Self-normalised importance weights ``w̃_k = w_k / Σ_j w_j`` along ``dim``."""
    return torch.softmax(log_w, dim=dim)


def importance_ess(log_w: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Importance-sampling effective sample size ``1 / Σ_k w̃_k²`` (Kong, 1992)."""
    w = normalized_weights(log_w, dim=dim)
    return 1.0 / (w * w).sum(dim=dim)


def kl_normal_standard(loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """KL(N(loc, diag(scale²)) ‖ N(0, I)), summed over the last dimension.

    The lecture notes' closed form ½(Tr Σ + μᵀμ − D − log det Σ) for diagonal Σ.
    """
    var = scale * scale
    return 0.5 * (var + loc * loc - 1.0 - torch.log(var)).sum(-1)


def log_normal_pairwise(z: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Per-dimension log N(z_i; loc_j, scale_j²) for every pair ``(i, j)``.

    ``z`` is ``[B, L]``, ``loc`` and ``scale`` are ``[M, L]``; returns ``[B, M, L]``.
    Used by the minibatch estimators of the aggregate posterior log q(z).
    """
    diff = (z.unsqueeze(1) - loc.unsqueeze(0)) / scale.unsqueeze(0)
    return -0.5 * diff * diff - torch.log(scale).unsqueeze(0) - 0.5 * math.log(2 * math.pi)


def inverse_softplus(y):
    """The raw value whose softplus is ``y`` (> 0): ``y + log(1 − exp(−y))``, stable.

    Accepts a float (returns a float) or a tensor (returns a tensor); ``y`` is
    clamped to at least 1e-6 so the logarithm stays finite.
    """
    if torch.is_tensor(y):
        y = y.clamp_min(1e-6)
        return y + torch.log(-torch.expm1(-y))
    return float(inverse_softplus(torch.tensor(float(y), dtype=torch.float64)))


def softplus_scale(raw: torch.Tensor) -> torch.Tensor:
    """A positive scale from an unconstrained parameter: ``softplus(raw) + MIN_SCALE``."""
    return F.softplus(raw) + MIN_SCALE

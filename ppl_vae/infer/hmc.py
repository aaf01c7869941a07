"""Vectorised Hamiltonian Monte Carlo transitions for many independent targets at once.

The state is a flat ``[C, N, P]`` tensor: C chains for each of N datapoints, P
unconstrained coordinates. The target factorises over ``(chain, datapoint)``, so
one leapfrog trajectory moves every pair at once and each pair is accepted or
rejected on its own (a product of HMC kernels, each leaving its own factor
invariant). Every datapoint has its own step size ``eps[N]``.

Randomness comes from a counter-based generator (:func:`normal`, :func:`uniform`):
each variate is a hash of (seed, annealing step, purpose, datapoint index, chain,
coordinate), so the numbers a datapoint sees do not depend on which other
datapoints share its pass, nor on the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_MASK = 0xFFFFFFFF


def _mix(h):
    """A 32-bit integer finaliser (lowbias32); ``h`` an int64 tensor or int in [0, 2³²)."""
    h = h ^ (h >> 16)
    h = (h * 0x7FEB352D) & _MASK
    h = h ^ (h >> 15)
    h = (h * 0x846CA68B) & _MASK
    return h ^ (h >> 16)


def _key(seed: int, step: int, purpose: int) -> int:
    h = _mix(seed & _MASK) ^ (seed >> 32)
    for part in (step, purpose):
        h = _mix(h ^ (part & _MASK))
    return h


def uniform(seed: int, step: int, purpose: int, ids: torch.Tensor, dtype) -> torch.Tensor:
    """Uniform(0, 1) variates, one per entry of the int64 counter tensor ``ids``."""
    h = _mix((ids & _MASK) ^ _key(seed, step, purpose))
    h = _mix(h ^ ((ids >> 32) & _MASK))
    return ((h >> 8).to(torch.float64) + 0.5).mul_(2.0**-24).to(dtype)


def normal(seed: int, step: int, purpose: int, ids: torch.Tensor, dtype) -> torch.Tensor:
    """Standard normal variates by Box–Muller from two counter-based uniforms."""
    u1 = uniform(seed, step, purpose, ids, torch.float64)
    u2 = uniform(seed, step, purpose + 1, ids, torch.float64)
    return (torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)).to(dtype)


@dataclass
class State:
    """A position with the two parts of its log-density and their gradients.

    log f_β(u) = base + β·incr; ``base`` = log p0 + log|J|, ``incr`` = log p̃(x, z) − log p0.
    """

    u: torch.Tensor  # [C, N, P]
    base: torch.Tensor  # [C, N]
    incr: torch.Tensor  # [C, N]
    g_base: torch.Tensor  # [C, N, P]
    g_incr: torch.Tensor  # [C, N, P]

    def log_f(self, beta: float) -> torch.Tensor:
        return self.base + beta * self.incr

    def grad(self, beta: float) -> torch.Tensor:
        return self.g_base + beta * self.g_incr

    def where(self, keep: torch.Tensor, other: State) -> State:
        """``self`` where ``keep`` [C, N] is True, else ``other``."""
        k3 = keep.unsqueeze(-1)
        return State(
            torch.where(k3, self.u, other.u), torch.where(keep, self.base, other.base),
            torch.where(keep, self.incr, other.incr), torch.where(k3, self.g_base, other.g_base),
            torch.where(k3, self.g_incr, other.g_incr),
        )


def transition(state: State, evaluate, beta: float, eps: torch.Tensor, num_leapfrog: int,
               momentum: torch.Tensor, log_u: torch.Tensor):
    """One HMC step targeting f_β for every (chain, datapoint): ``(new state, accepted [C, N])``.

    ``evaluate(u) -> State``; ``eps`` [N] step sizes; ``momentum`` [C, N, P] standard
    normal; ``log_u`` [C, N] log-uniforms for the accept test. A proposal whose
    energy is not finite is rejected.
    """
    step = eps.reshape(1, -1, 1)
    p = momentum + 0.5 * step * state.grad(beta)
    new = state
    for i in range(num_leapfrog):
        new = evaluate(state.u + step * p if i == 0 else new.u + step * p)
        scale = 0.5 if i == num_leapfrog - 1 else 1.0
        p = p + scale * step * new.grad(beta)
    h0 = -state.log_f(beta) + 0.5 * momentum.pow(2).sum(-1)
    h1 = -new.log_f(beta) + 0.5 * p.pow(2).sum(-1)
    log_ratio = h0 - h1
    accept = torch.isfinite(log_ratio) & (log_u < log_ratio)
    return new.where(accept, state), accept


def adapt(eps: torch.Tensor, rate: torch.Tensor, target: float, gain: float = 0.5) -> torch.Tensor:
    """Next step sizes from the acceptance rate [N] of the step just taken.

    ε ← ε·exp(gain·(rate − target)): grows when more is accepted than targeted, shrinks
    otherwise. Only past statistics enter, so every transition still leaves its own
    target invariant.
    """
    return (eps * torch.exp(gain * (rate - target))).clamp(1e-6, 10.0)

"""Annealed importance sampling of log p(x) per datapoint (Neal, 2001), and BDMC bounds.

AIS moves C chains per datapoint along the geometric path

    log f_β(z) = (1 − β) log p0(z) + β log p(x, z),   0 = β_0 < β_1 < … < β_T = 1,

from p0 (the prior p(z), or the guide q(z | x)) to the unnormalised posterior.
Each chain's log-weight Σ_t (β_t − β_{t−1})·[log p(x, z_{t−1}) − log p0(z_{t−1})]
is an unbiased estimate of log-weights whose exponential has mean p(x), so
log of the chains' average is a stochastic lower bound on log p(x) that tightens
as T grows. Between steps, z moves by one HMC transition that leaves f_{β_t}
invariant.

Bidirectional Monte Carlo (Grosse et al., 2015): on data simulated from the
model, the simulated latents are an exact posterior sample, so AIS run in
reverse (β from 1 to 0, started there) gives a stochastic *upper* bound; the two
sandwich log p(x) and their gap says how many steps make AIS accurate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyro
import torch

from ppl_vae import _checks, _seed
from ppl_vae.infer import _ais_target, _program, hmc
from ppl_vae.infer.importance import _check_finite, chunk_bytes
from ppl_vae.math import importance_ess, log_mean_exp

SCHEDULES = ("sigmoid", "geometric", "linear")
_SIGMOID_DELTA = 4.0  # Grosse et al. (2015) sigmoidal schedule's width
_GEOMETRIC_START = 1e-4  # the geometric schedule's first positive β
_BLOCKS = 10  # acceptance rates are reported in this many blocks of steps


def temperatures(kind, num_steps: int) -> torch.Tensor:
    """The inverse temperatures β_0 = 0 < … < β_T = 1 (float64, ``num_steps + 1`` values).

    ``"linear"``: evenly spaced; ``"geometric"``: β_1 … β_T evenly spaced in log from
    1e-4 to 1; ``"sigmoid"``: σ(δ(2t/T − 1)) rescaled to [0, 1], δ = 4 (Grosse et al.,
    2015; used by Wu et al., 2017). A sequence is taken as given (checked).
    """
    t = torch.linspace(0.0, 1.0, num_steps + 1, dtype=torch.float64)
    if isinstance(kind, str):
        _checks.one_of("schedule", kind, SCHEDULES)
        if kind == "linear":
            return t
        if kind == "geometric":
            tail = torch.logspace(math.log10(_GEOMETRIC_START), 0.0, num_steps, dtype=torch.float64)
            return torch.cat([torch.zeros(1, dtype=torch.float64), tail])
        s = torch.sigmoid(_SIGMOID_DELTA * (2.0 * t - 1.0))
        return (s - s[0]) / (s[-1] - s[0])
    betas = torch.as_tensor(np.asarray(kind, dtype=np.float64))
    if (betas.dim() != 1 or len(betas) < 2 or float(betas[0]) != 0.0 or float(betas[-1]) != 1.0
            or not bool((betas[1:] > betas[:-1]).all())):
        raise ValueError(
            f"schedule={_checks._short(kind)} is invalid: pass one of {SCHEDULES} or an "
            "increasing sequence of inverse temperatures from 0 to 1"
        )
    return betas


@dataclass
class AISResult:
    """Per-datapoint AIS estimates.

    Attributes
    ----------
    log_px : Tensor [N]
        log of the chains' mean AIS weight: a stochastic lower bound on log p(x)
        (for ``direction="reverse"``: minus log of the mean reverse weight, an upper bound).
    log_weights : Tensor [C, N]
        Each chain's log-weight (reverse: estimates of −log p(x)).
    ess : Tensor [N]
        Effective sample size 1 / Σ w̃_c² of the final weights (between 1 and C).
    acceptance : Tensor [B, N]
        HMC acceptance rate, averaged over chains and over each of B blocks of steps.
    step_size : Tensor [N]
        The HMC step size each datapoint ended with.

    Examples
    --------
    >>> import torch, pyro, pyro.distributions as dist
    >>> import ppl_vae as pv
    >>> def model(x):                      # z ~ Norm[0, 1], x | z ~ Norm[z, 1]: p(x) = Norm[0, 2]
    ...     with pyro.plate("data", x.shape[0]):
    ...         z = pyro.sample("z", dist.Normal(torch.zeros(1), 1.0).to_event(1))
    ...         pyro.sample("x", dist.Normal(z, 1.0).to_event(1), obs=x)
    >>> r = pv.infer.ais(model, torch.zeros(3, 1), num_steps=20, num_chains=4, seed=0)
    >>> type(r).__name__, r.log_weights.shape, r.num_chains, r.direction
    ('AISResult', torch.Size([4, 3]), 4, 'forward')
    >>> bool(((r.ess >= 1 - 1e-4) & (r.ess <= 4 + 1e-4)).all())     # between 1 and C
    True
    >>> bool(((r.acceptance >= 0) & (r.acceptance <= 1)).all())
    True
    >>> r.to_frame().columns.tolist()[:3], sorted(r.summary())[:2]
    (['datapoint', 'log_px', 'ess'], ['acceptance_mean', 'acceptance_min'])
    """

    log_px: torch.Tensor
    log_weights: torch.Tensor
    ess: torch.Tensor
    acceptance: torch.Tensor
    step_size: torch.Tensor
    num_steps: int
    num_chains: int
    init: str = "prior"
    direction: str = "forward"

    def to_frame(self) -> pd.DataFrame:
        """One row per datapoint: log_px, ess, acceptance (mean over steps), step_size."""
        return pd.DataFrame({
            "datapoint": np.arange(len(self.log_px)),
            "log_px": self.log_px.detach().cpu().numpy(),
            "ess": self.ess.detach().cpu().numpy(),
            "acceptance": self.acceptance.mean(0).detach().cpu().numpy(),
            "step_size": self.step_size.detach().cpu().numpy(),
            "num_steps": self.num_steps,
            "num_chains": self.num_chains,
        })

    def summary(self) -> dict:
        """Mean log p(x) and its s.e., mean ESS, acceptance (mean, and lowest datapoint)."""
        rate = self.acceptance.mean(0)
        return {
            "log_px": float(self.log_px.mean()),
            "log_px_se": float(self.log_px.std() / math.sqrt(len(self.log_px)))
            if len(self.log_px) > 1 else float("nan"),
            "ess_mean": float(self.ess.mean()),
            "acceptance_mean": float(rate.mean()),
            "acceptance_min": float(rate.min()),
            "num_steps": self.num_steps,
            "num_chains": self.num_chains,
            "init": self.init,
            "direction": self.direction,
        }


@dataclass(frozen=True)
class _Options:
    num_leapfrog: int
    step_size: float
    target_accept: float
    seed: int


def _options(num_leapfrog, step_size, target_accept, seed) -> _Options:
    num_leapfrog = _checks.positive_int("num_leapfrog", num_leapfrog)
    step_size = _checks.positive_float("step_size", step_size)
    target_accept = _checks.fraction("target_accept", target_accept)
    if not 0.0 < target_accept < 1.0:
        raise ValueError(f"target_accept={target_accept} is invalid: pass a rate in (0, 1), e.g. 0.65")
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)))
    return _Options(num_leapfrog, step_size, target_accept, _checks.seed("seed", seed))


def _anneal(target, u0, betas, first: int, opts: _Options):
    """Run AIS for one block of datapoints; ``first`` is the global index of its first row.

    Returns ``(log_w [C, n], rates [T − 1, n], eps [n])``. The step size of step t is
    set from the acceptance of steps before t only (see :func:`hmc.adapt`).
    """
    c, n = target.chains, target.n
    state = target.evaluate(u0)
    p = u0.shape[-1]
    rows = (first + torch.arange(n, device=u0.device)).reshape(1, n) * c
    chain_ids = rows + torch.arange(c, device=u0.device).reshape(c, 1)  # [C, n]
    coord_ids = chain_ids.unsqueeze(-1) * p + torch.arange(p, device=u0.device)  # [C, n, P]
    eps = torch.full((n,), opts.step_size, dtype=u0.dtype, device=u0.device)
    log_w = torch.zeros(c, n, dtype=torch.float64, device=u0.device)
    rates = []
    with pyro.validation_enabled(False):  # proposals may leave the support: rejected, not raised
        for t in range(1, len(betas)):
            log_w += float(betas[t] - betas[t - 1]) * state.incr.double()
            if t == len(betas) - 1:
                break  # the last transition would not change the weights
            momentum = hmc.normal(opts.seed, t, 0, coord_ids, u0.dtype)
            log_u = torch.log(hmc.uniform(opts.seed, t, 2, chain_ids, u0.dtype))
            state, accepted = hmc.transition(state, target.evaluate, float(betas[t]), eps,
                                             opts.num_leapfrog, momentum, log_u)
            rate = accepted.to(u0.dtype).mean(0)
            rates.append(rate)
            eps = hmc.adapt(eps, rate, opts.target_accept)
    rates = torch.stack(rates) if rates else torch.ones(1, n, dtype=u0.dtype, device=u0.device)
    return log_w, rates, eps


def _blocks(rates: torch.Tensor) -> torch.Tensor:
    """Mean acceptance in up to ``_BLOCKS`` consecutive blocks of steps: ``[B, N]``."""
    parts = torch.tensor_split(rates, min(_BLOCKS, rates.shape[0]), dim=0)
    return torch.stack([b.mean(0) for b in parts])


def _chunk(chunk_size, n: int, chains: int, x: torch.Tensor) -> int:
    if chunk_size is None:
        per_row = chains * max(1, x[0].numel()) * x.element_size()
        return int(max(1, min(n, chunk_bytes(x.device) // per_row)))
    return _checks.positive_int("chunk_size", chunk_size)


def check_memory(u0: torch.Tensor, x: torch.Tensor, num_betas: int, chunk: int) -> None:
    """Refuse a run whose tensors would exceed the memory budget before anything runs:
    the starting states ``[C, N, P]``, the log-weights ``[C, N]`` (a few copies), the
    acceptance rates ``[T, N]``, and one pass of ``[C, chunk, D]`` temporaries."""
    c, n = u0.shape[0], x.shape[0]
    size = x.element_size()
    whole = u0.numel() * u0.element_size() + size * n * (3 * c + num_betas)
    per_pass = 4 * c * min(chunk, n) * max(1, x[0].numel()) * size
    _checks.within_budget(
        f"num_chains={c} × num_steps={num_betas} for {n} row(s)", whole + per_pass,
        _checks.memory_budget(), "pass fewer num_chains, a smaller chunk_size or fewer rows",
        option=False,
    )


def _run(prog, x, y, st, names, u0, sites, betas, init, opts, chunk: int):
    """AIS over blocks of ``chunk`` datapoints; each block sees the same numbers it would alone."""
    parts = []
    for start in range(0, x.shape[0], chunk):
        rows = slice(start, start + chunk)
        target = _ais_target.Target(prog, x[rows], None if y is None else y[rows], st, sites,
                                    init, u0.shape[0])
        parts.append(_anneal(target, u0[:, rows], betas, start, opts))
    log_w = torch.cat([p[0] for p in parts], 1)
    rates = torch.cat([p[1] for p in parts], 1)
    eps = torch.cat([p[2] for p in parts], 0)
    return log_w, rates, eps


def _prepare(model, x, y, guide, init, data_plate, model_kwargs, guide_kwargs, device, kwargs):
    _checks.one_of("init", init, ("prior", "guide"))
    prog = _program.program(model, guide, model_kwargs=model_kwargs, guide_kwargs=guide_kwargs,
                            kwargs=kwargs, require_guide=init == "guide")
    x, y = _program.check_data(prog, x, y, device=device)
    with torch.no_grad():
        st, m, g = _program.structure(prog, x, y, data_plate=data_plate, proposal=init,
                                      traces=True)
    names = _ais_target.check_latents(st, m, g, init)
    return prog, x, y, st, names


def ais(
    model,
    x,
    y=None,
    *,
    guide=None,
    num_steps: int = 1000,
    num_chains: int = 16,
    schedule="sigmoid",
    init: str = "prior",
    transition: str = "hmc",
    num_leapfrog: int = 5,
    step_size: float = 0.1,
    target_accept: float = 0.65,
    chunk_size: int | None = None,
    seed=None,
    data_plate: str | None = None,
    model_kwargs: dict | None = None,
    guide_kwargs: dict | None = None,
    device=None,
    **kwargs,
) -> AISResult:
    """Annealed importance sampling estimate of log p(x) for every datapoint.

    All datapoints × chains move in one vectorised batch (blocks of ``chunk_size``
    datapoints bound memory). The target is read through the same trace reader as
    :func:`~ppl_vae.infer.log_likelihood`, so masks, scales, nested plates,
    enumerated discrete sites (summed out exactly at every β), foreign site names
    and point-estimate globals have the same meaning. Continuous constrained
    latents move in unconstrained space through ``biject_to(support)``.

    Refused with a ``ValueError`` naming the site: a sampled (not enumerated)
    discrete latent, a subsampled datapoint plate, everything the trace reader refuses.

    The transition is HMC with ``num_leapfrog`` leapfrog steps and one step size
    per datapoint. **Adaptation does not bias the estimate:** the step size used
    at annealing step t is computed only from the acceptance rates of steps
    before t (ε ← ε·exp(½(rate − target_accept))), never from the step it is used
    in, so every transition is an HMC kernel that leaves its own f_{β_t}
    invariant, which is all the AIS weights need.

    Parameters
    ----------
    model, x, y, guide, data_plate, model_kwargs, guide_kwargs, device, **kwargs
        As for :func:`~ppl_vae.infer.log_likelihood`.
    num_steps : int
        T, the number of intermediate distributions (T − 1 HMC transitions).
    num_chains : int
        C, independent AIS chains per datapoint; log_px is log of their mean weight.
    schedule : {"sigmoid", "geometric", "linear"} or sequence
        Spacing of β (:func:`temperatures`).
    init : {"prior", "guide"}
        p0: the prior p(z), or the guide q(z | x) (then every continuous latent must be
        a guide site with a density).
    transition : {"hmc"}
        The MCMC kernel between annealing steps; only HMC is implemented.
    num_leapfrog, step_size, target_accept
        Leapfrog steps per transition, the starting step size, the acceptance rate the
        step size is adapted towards.
    chunk_size : int, optional
        Datapoints per pass (default: ``[C, chunk, D]`` about 32 MiB on a CPU). The
        random numbers are a counter-based hash of (seed, step, datapoint, chain), and
        the starting draws are made for all datapoints in one pass, so results do not
        depend on ``chunk_size`` (up to floating-point rounding of batched arithmetic).
    seed : int, optional

    Examples
    --------
    >>> import torch, pyro, pyro.distributions as dist
    >>> from ppl_vae.infer.ais import ais
    >>> def model(x):
    ...     with pyro.plate("data", x.shape[0]):
    ...         z = pyro.sample("z", dist.Normal(torch.zeros(1), 1.0).to_event(1))
    ...         pyro.sample("x", dist.Normal(z, 1.0).to_event(1), obs=x)
    >>> r = ais(model, torch.zeros(3, 1), num_steps=20, num_chains=4, seed=0)
    >>> tuple(r.log_px.shape)
    (3,)
    """
    num_steps = _checks.positive_int("num_steps", num_steps)
    num_chains = _checks.positive_int("num_chains", num_chains)
    _checks.one_of("transition", transition, ("hmc",))
    betas = temperatures(schedule, num_steps)
    with _seed.seeded(seed):
        opts = _options(num_leapfrog, step_size, target_accept, seed)
        prog, x, y, st, names = _prepare(model, x, y, guide, init, data_plate, model_kwargs,
                                         guide_kwargs, device, kwargs)
        sites, u0 = _ais_target.initial(prog, x, y, st, names, init, num_chains)
        chunk = _chunk(chunk_size, x.shape[0], num_chains, x)
        check_memory(u0, x, len(betas), chunk)
        log_w, rates, eps = _run(prog, x, y, st, names, u0, sites, betas, init, opts, chunk)
    return _result(log_w, rates, eps, len(betas) - 1, init, "forward", x)


def _result(log_w, rates, eps, num_steps, init, direction, x) -> AISResult:
    log_w = log_w.to(x.dtype) if x.dtype == torch.float64 else log_w
    mean = log_mean_exp(log_w, dim=0)
    log_px = mean if direction == "forward" else -mean
    _check_finite(log_px.to(x.dtype), x)
    return AISResult(
        log_px=log_px.to(x.dtype), log_weights=log_w.to(x.dtype), ess=importance_ess(log_w, 0).to(x.dtype),
        acceptance=_blocks(rates), step_size=eps, num_steps=num_steps,
        num_chains=log_w.shape[0], init=init, direction=direction,
    )

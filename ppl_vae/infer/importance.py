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
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyro
import torch

from ppl_vae import _checks, _seed
from ppl_vae.infer import _program, _trace
from ppl_vae.infer._psis import khat_threshold, pareto_khat
from ppl_vae.math import importance_ess, log_mean_exp


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
        2024): reliable at or below :attr:`khat_threshold`; NaN when K is too
        small to fit a tail ("cannot tell"); −inf when the weights are flat
        (a proposal equal to the posterior).
    num_samples : int
    proposal : str

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.tensor([[0.0, 0, 1, 1], [1, 1, 0, 0], [1, 0, 1, 0]])
    >>> result = pv.infer.log_likelihood(model, x, num_samples=100, seed=0)
    >>> type(result).__name__, result.log_px.shape, result.khat_threshold
    ('ISResult', torch.Size([3]), 0.5)
    >>> result.to_frame().columns.tolist()[:5]             # one row per datapoint
    ['datapoint', 'log_px', 'ess', 'ess_fraction', 'khat']
    >>> summary = result.summary()
    >>> 1.0 <= summary["ess_mean"] <= 100.0, summary["num_samples"]
    (True, 100)
    """

    log_px: torch.Tensor
    ess: torch.Tensor
    khat: torch.Tensor
    num_samples: int
    proposal: str = "guide"

    @property
    def khat_threshold(self) -> float:
        """min(1 − 1/log10 K, 0.7): the sample-size dependent k̂ threshold."""
        return khat_threshold(self.num_samples)

    @property
    def reliable(self) -> torch.Tensor:
        """Boolean ``[N]``: k̂ at or below the threshold (False where it cannot tell)."""
        return self.khat <= self.khat_threshold

    @property
    def diagnosis(self) -> np.ndarray:
        """``"ok"``, ``"unreliable"`` or ``"cannot tell"`` per datapoint."""
        khat = self.khat.detach().cpu().numpy()
        out = np.where(khat <= self.khat_threshold, "ok", "unreliable").astype(object)
        out[np.isnan(khat)] = "cannot tell"
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per datapoint: log_px, ess, ess_fraction, khat, reliable, diagnosis."""
        ess = self.ess.detach().cpu().numpy()
        return pd.DataFrame(
            {
                "datapoint": np.arange(len(self.log_px)),
                "log_px": self.log_px.detach().cpu().numpy(),
                "ess": ess,
                "ess_fraction": ess / self.num_samples,
                "khat": self.khat.detach().cpu().numpy(),
                "reliable": self.reliable.cpu().numpy(),
                "diagnosis": self.diagnosis,
                "num_samples": self.num_samples,
                "proposal": self.proposal,
            }
        )

    def summary(self) -> dict:
        """Dataset-level numbers: mean log p(x) and its s.e., mean ESS, k̂ shares."""
        diagnosis = self.diagnosis
        finite = self.khat[torch.isfinite(self.khat)]
        return {
            "log_px": float(self.log_px.mean()),
            "log_px_se": float(self.log_px.std() / math.sqrt(len(self.log_px))),
            "ess_mean": float(self.ess.mean()),
            "khat_max": float(finite.max()) if finite.numel() else float("nan"),
            "khat_threshold": self.khat_threshold,
            "share_unreliable": float(np.mean(diagnosis == "unreliable")),
            "share_cannot_tell": float(np.mean(diagnosis == "cannot tell")),
            "num_samples": self.num_samples,
        }

    def to_inference_data(self):
        """ArviZ ``InferenceData`` holding log_px and k̂ per datapoint (one chain, one draw)."""
        import arviz as az

        return az.from_dict(posterior={
            "log_px": self.log_px.detach().cpu().numpy()[None, None],
            "khat": self.khat.detach().cpu().numpy()[None, None],
        })


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


# CPU: measured on the 784-D benchmark VAE (benchmarks/bench_log_likelihood.py): passes of
# 10-32 MiB per [chunk, N, D] tensor ran ~10 % faster than 64-256 MiB (less memory
# traffic), with no gain below that. CUDA: a pass must be large to fill the device (one
# 784-D MNIST test set is 31 MiB per particle), so a pass may take 1/16 of the free
# memory (a pass holds a few [chunk, N, D] temporaries), at most 2 GiB. The CUDA rule
# has not been timed on a GPU yet.
_CHUNK_BYTES = 32 * 2**20
_CUDA_CHUNK_MAX = 2 * 2**30


def chunk_bytes(device=None) -> int:
    """Bytes one ``[chunk, N, D]`` float32 pass may take on ``device`` by default."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(max(_CHUNK_BYTES, min(_CUDA_CHUNK_MAX, free // 16)))
    return _CHUNK_BYTES


def _default_chunk(num_samples: int, n: int, d: int, device=None) -> int:
    """Particles per pass so that one ``[chunk, N, D]`` float32 tensor fits :func:`chunk_bytes`."""
    per_particle = max(1, n * max(d, 1) * 4)
    return int(max(1, min(num_samples, chunk_bytes(device) // per_particle)))


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
    data_plate: str | None = None,
    model_kwargs: dict | None = None,
    guide_kwargs: dict | None = None,
    vectorize: bool | None = None,
    device=None,
    **kwargs,
) -> ISResult:
    """Importance-sampling estimate of log p(x) for every datapoint.

    Parameters
    ----------
    model
        A ppl_vae model, an object with ``model``/``guide`` methods, or a Pyro
        model callable (then pass ``guide=``). Any signature and site names;
        see :mod:`ppl_vae.infer._trace` for the semantics of masks, scales,
        enumeration, subsampling and global point estimates.
    x : array [N, D]
    y : array, optional
        Labels as the model takes them (class indices, one-hot rows, ...);
        the estimate is then of log p(x, y).
    guide : callable, optional
        Proposal guide (defaults to the model's guide).
    num_samples : int
        K, importance samples per datapoint.
    proposal : {"guide", "prior"}
        Draw latents from the guide q(z|x), or from the prior p(z).
    chunk_size : int, optional
        Particles per vectorised pass (bounds memory); by default chosen so an
        ``[chunk, N, D]`` tensor takes about 32 MiB on a CPU (see :func:`chunk_bytes`
        for CUDA). Rounded to a multiple of
        ``16 / gcd(16, N)`` particles (see :func:`chunk_sizes`) so that, with the
        same ``seed``, results do not depend on it when the proposal draws all
        its randomness at one Gaussian site (any ppl_vae guide, or the prior
        proposal of a one-latent model). A proposal with several random sites
        draws them site by site within each pass, so there chunking changes
        which variates go where: the results are then equal in distribution,
        not bit for bit.
    seed : int, optional
    diagnostics : bool
        Compute the PSIS k̂; NaN when False.
    data_plate : str, optional
        Name of the datapoint plate (found from the trace by default).
    model_kwargs, guide_kwargs : dict, optional
        Keyword arguments for one side only; other ``**kwargs`` go to each
        side whose signature accepts them.
    vectorize : bool, optional
        ``None``: particles as a tensor dim, falling back (with a warning) to
        one particle per pass when the program does not broadcast; ``True``:
        never fall back; ``False``: one particle per pass.
    device : str or torch.device, optional
        Where to compute: ``None`` (where the model is), ``"auto"`` (CUDA when
        available), ``"cpu"``, ``"cuda[:N]"``; a ppl_vae model or module is moved there.

    Returns
    -------
    ISResult
        ``log_px``, ``ess``, ``khat`` per datapoint, ``num_samples``, ``to_frame()``.

    Examples
    --------
    With the exact posterior as proposal every importance weight is p(x): the estimate
    is exact, the ESS is K and k̂ is −inf (no tail):

    >>> import torch, pyro, pyro.distributions as dist
    >>> import ppl_vae as pv
    >>> def model(x):                      # z ~ Norm[0, 1], x | z ~ Norm[z, 1]: p(x) = Norm[0, 2]
    ...     with pyro.plate("data", x.shape[0]):
    ...         z = pyro.sample("z", dist.Normal(torch.zeros(1), 1.0).to_event(1))
    ...         pyro.sample("x", dist.Normal(z, 1.0).to_event(1), obs=x)
    >>> def guide(x):                      # the exact posterior Norm[x / 2, 1 / 2]
    ...     with pyro.plate("data", x.shape[0]):
    ...         pyro.sample("z", dist.Normal(x / 2, 0.5 ** 0.5).to_event(1))
    >>> x = torch.tensor([[-1.0], [0.0], [2.0]])
    >>> exact = dist.Normal(0.0, 2 ** 0.5).log_prob(x[:, 0])
    >>> result = pv.infer.log_likelihood(model, x, guide=guide, num_samples=100, seed=0)
    >>> bool(torch.allclose(result.log_px, exact, atol=1e-5))
    True
    >>> result.ess.round().tolist(), result.khat.tolist(), result.diagnosis.tolist()
    ([100.0, 100.0, 100.0], [-inf, -inf, -inf], ['ok', 'ok', 'ok'])
    """
    num_samples = _checks.positive_int("num_samples", num_samples)
    _checks.one_of("proposal", proposal, ("guide", "prior"))
    _check_vectorize(vectorize)
    prog = _program.program(model, guide, model_kwargs=model_kwargs, guide_kwargs=guide_kwargs,
                            kwargs=kwargs, require_guide=proposal == "guide")
    x, y = _program.check_data(prog, x, y, device=device)
    if chunk_size is None:
        chunk_size = _default_chunk(num_samples, x.shape[0], x[0].numel(), x.device)
    chunk_size = _checks.positive_int("chunk_size", chunk_size)
    check_budget("num_samples", num_samples, x, chunk=chunk_size)
    chunks = []
    with _seed.seeded(seed), torch.no_grad():
        st = _program.structure(prog, x, y, data_plate=data_plate, proposal=proposal)
        for i, k in enumerate(chunk_sizes(num_samples, chunk_size, x.shape[0])):
            # The first pass runs with the caller's validation setting and catches
            # invalid parameters or supports; later passes repeat the same program on
            # new draws, so their support checks (a scan of [chunk, N, D]) are skipped.
            checks = contextlib.nullcontext() if i == 0 else pyro.validation_enabled(False)
            with checks:
                log_w, _, vectorize = _trace.log_weights(
                    prog, x, y, st, num_particles=k, proposal=proposal, vectorize=vectorize,
                )
            chunks.append(log_w)
    log_w = torch.cat(chunks, 0)  # [K, N]
    khat = (pareto_khat(log_w) if diagnostics
            else torch.full((x.shape[0],), float("nan"), device=log_w.device))
    log_px = log_mean_exp(log_w, dim=0)
    _check_finite(log_px, x)
    return ISResult(
        log_px=log_px,
        ess=importance_ess(log_w, dim=0),
        khat=khat,
        num_samples=num_samples,
        proposal=proposal,
    )


#: Copies of the [K, N] log-weights held at once (the chunks, their concatenation, the
#: sort of the k̂ fit), and of one pass's [chunk, N, D] tensors (draws, decoder output,
#: log-densities, the model's intermediates).
_WEIGHT_COPIES, _PASS_COPIES = 3, 4


def pass_bytes(k: int, n: int, d: int, itemsize: int) -> int:
    """Bytes of one pass over ``k`` particles of ``n`` rows of ``d`` values: its
    ``[k, n, d]`` draws, decoder output, log-densities and intermediates."""
    return _PASS_COPIES * k * n * d * itemsize


def check_budget(name: str, k: int, x: torch.Tensor, *, chunk: int | None = None,
                 fix: str | None = None) -> None:
    """Refuse ``k`` particles per row of ``x`` when their tensors would exceed the memory
    budget (:func:`ppl_vae._checks.memory_budget`): the ``[k, N]`` log-weights, and one
    pass over ``chunk`` particles (``None``: all ``k`` in one pass) of ``[chunk, N, D]``
    tensors. A ValueError names ``name``, the size and the fix, before anything runs."""
    n, d, size = x.shape[0], max(1, x[0].numel()), x.element_size()
    per_pass = pass_bytes(min(k, chunk or k), n, d, size)
    _checks.within_budget(
        f"{name}{' ' if name.startswith('--') else '='}{k} for {n} row(s) of {d} values", _WEIGHT_COPIES * k * n * size + per_pass,
        _checks.memory_budget(), fix or f"pass a smaller {name} or fewer rows at a time",
        option=False,
    )


def _check_finite(log_px: torch.Tensor, x: torch.Tensor) -> None:
    """Refuse an estimate that is NaN or ±inf: the data overflowed the model's arithmetic
    (e.g. |x| = 1e19 squared in float32), so no number would be the true log p(x)."""
    bad = ~torch.isfinite(log_px)
    if bool(bad.any()):
        rows = bad.nonzero().flatten().tolist()
        shown = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
        big = float(x[bad].abs().max())
        raise ValueError(
            f"x: log p(x) is not finite ({float(log_px[bad][0])}) in {len(rows)} row(s) "
            f"({shown}; largest |x| there {big:.3g}): the model's {x.dtype} arithmetic "
            "overflows on these values; rescale the data (standardise it), drop those rows, "
            "or compute in float64 (model.double())"
        )


def _check_vectorize(vectorize) -> None:
    if vectorize is not None and not isinstance(vectorize, bool):
        raise ValueError(f"vectorize={vectorize!r} is invalid: pass None, True or False")

"""Simulation-based calibration: ranks of the true latent among posterior draws.

Talts, Betancourt, Simpson, Vehtari & Gelman (2018, "Validating Bayesian
Inference Algorithms with Simulation-Based Calibration", Algorithm 1): draw
z̃ ~ p(z), x̃ ~ p(x | z̃), then S draws z₁…z_S from the approximate posterior
q(z | x̃). For each coordinate, the rank r = #{s : z_s < z̃} lies in {0, …, S};
if q is the exact posterior, r is uniform on those S + 1 values (Theorem 1),
because z̃ is then one more draw from p(z | x̃). Departures have shapes: a ∪
(too many extreme ranks) means q is too narrow, a ∩ too wide, a slope a biased
mean. Uniformity of each coordinate is tested here with Pearson's χ² on binned
ranks (Talts et al., Section 4.1 bin the ranks the same way for their histograms).

The simulation itself (prior, decoder, guide) is the caller's: these functions
take arrays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ppl_vae._checks import memory_budget, positive_int, real_array, within_budget
from ppl_vae.metrics import _arrays


def sbc_ranks(truth, draws) -> np.ndarray:
    """Rank of each true coordinate among its posterior draws.

    Parameters
    ----------
    truth : array [N, L]
        The simulated latents z̃, one row per simulation.
    draws : array [S, N, L]
        S approximate-posterior draws per simulation.

    Returns
    -------
    int64 array [N, L]
        ``#{s : draws[s, n, l] < truth[n, l]}``, in ``0 … S``.

    Examples
    --------
    >>> import numpy as np
    >>> from ppl_vae.metrics import sbc_ranks
    >>> truth = np.array([[0.5, 2.5]])                      # N=1 simulation, L=2
    >>> draws = np.array([[[0.0, 1.0]], [[1.0, 2.0]], [[2.0, 3.0]]])  # S=3 draws
    >>> sbc_ranks(truth, draws)
    array([[1, 2]])
    """
    truth = _arrays.latent_array("truth", truth)
    draws = real_array("draws", draws, ndim=3, what="posterior draws [S, N, L]")
    if draws.shape[1:] != truth.shape:
        raise ValueError(
            f"draws has shape {draws.shape} but truth has {truth.shape}: pass draws of shape "
            f"[S, {truth.shape[0]}, {truth.shape[1]}], S posterior draws per simulation"
        )
    return (draws < truth[None]).sum(axis=0).astype(np.int64)


#: Arrays of one value per bin besides the counts (bin starts, widths, expected, edges).
BIN_ARRAYS = 4


def _bins(num_draws: int, n: int, bins, columns: int = 1) -> int:
    """The number of bins (``bins``, or the default for ``n`` simulations); a ValueError
    when their ``[bins, columns]`` counts and per-bin arrays exceed the memory budget."""
    if bins is None:  # about ten expected counts per bin, at most 20 bins
        return int(max(2, min(num_draws + 1, 20, n // 10)))
    bins = positive_int("bins", bins, minimum=2, maximum=num_draws + 1,
                        fix=f"pass an integer 2 <= bins <= num_draws + 1 = {num_draws + 1}")
    within_budget(f"bins={bins} (for {columns} coordinate(s))", 8 * bins * (columns + BIN_ARRAYS),
                  memory_budget(), "pass fewer bins (about N / 10 for N simulations)", option=False)
    return bins


def _ranks(ranks, num_draws) -> tuple[np.ndarray, int]:
    """``ranks`` as an int64 ``[N, L]`` array in ``0 … num_draws``, and ``num_draws``."""
    num_draws = positive_int("num_draws", num_draws,
                             fix="pass S, the posterior draws per simulation (an integer >= 1)")
    arr = real_array("ranks", ranks, ndim=2, what="ranks [N, L] from sbc_ranks")
    if not (arr == np.round(arr)).all():
        raise ValueError("ranks holds non-integer values: pass the integer ranks of sbc_ranks")
    if arr.min() < 0 or arr.max() > num_draws:
        raise ValueError(
            f"ranks range over [{arr.min():g}, {arr.max():g}]: with num_draws={num_draws} "
            f"they lie in [0, {num_draws}]; pass the S the ranks were computed with"
        )
    return arr.astype(np.int64), num_draws


def _bin_widths(num_draws: int, bins: int) -> np.ndarray:
    """How many of the rank values 0 … num_draws fall in each bin: rank r goes to bin
    floor(r·bins / (S + 1)), so bin j starts at ceil(j·(S + 1) / bins)."""
    starts = -(-np.arange(bins + 1, dtype=np.int64) * (num_draws + 1) // bins)
    return np.diff(starts)


def check_simulations(n, *, num_draws, bins=None, name: str = "ranks") -> None:
    """Raise unless ``n`` simulations suffice for :func:`rank_uniformity`'s χ² test.

    Cochran's rule for Pearson's χ²: no expected count below 1, at most 20 % of
    them below 5; fewer simulations give a p-value that means nothing (one
    simulation would read as calibrated). ``name`` is what the message blames.

    Examples
    --------
    >>> from ppl_vae.metrics import check_simulations
    >>> check_simulations(100, num_draws=9)                  # enough: returns None
    >>> check_simulations(3, num_draws=9)
    Traceback (most recent call last):
        ...
    ValueError: ...
    """
    n = positive_int(name, n, fix="pass a number of simulations >= 1")
    num_draws = positive_int("num_draws", num_draws,
                             fix="pass S, the posterior draws per simulation (an integer >= 1)")
    bins = _bins(num_draws, n, bins)
    expected = n * _bin_widths(num_draws, bins) / (num_draws + 1)
    if expected.min() < 1 or (expected < 5).mean() > 0.2:
        raise ValueError(
            f"{name}: {n} simulation(s) give {expected.min():.3g} expected ranks in the "
            f"emptiest of {bins} bins, too few for the χ² test (every bin needs >= 1 and "
            "80 % of them >= 5 expected ranks): run more simulations or pass fewer bins"
        )


def rank_counts(ranks, *, num_draws: int, bins: int | None = None) -> dict[str, np.ndarray]:
    """Histogram of ranks per coordinate, and the counts uniformity predicts.

    Rank ``r`` goes to bin ``floor(r * bins / (num_draws + 1))``; when ``bins`` does
    not divide ``num_draws + 1`` the bins hold unequal numbers of rank values and the
    expected counts say so.

    Returns
    -------
    dict
        ``counts`` int ``[bins, L]``, ``expected`` float ``[bins]`` (per coordinate),
        ``edges`` float ``[bins + 1]`` (in rank units).

    Examples
    --------
    >>> import numpy as np
    >>> from ppl_vae.metrics import rank_counts
    >>> ranks = np.array([[0], [1], [2], [3]])              # N=4 simulations, L=1
    >>> out = rank_counts(ranks, num_draws=3, bins=4)
    >>> out["counts"].ravel().tolist(), out["expected"].tolist()
    ([1, 1, 1, 1], [1.0, 1.0, 1.0, 1.0])
    """
    ranks, num_draws = _ranks(ranks, num_draws)
    bins = _bins(num_draws, len(ranks), bins, ranks.shape[1])
    which = ranks * bins // (num_draws + 1)  # [N, L]
    counts = np.stack([np.bincount(w, minlength=bins) for w in which.T], axis=1)  # [bins, L]
    width = _bin_widths(num_draws, bins)
    expected = len(ranks) * width / (num_draws + 1)
    edges = np.concatenate([[0.0], np.cumsum(width)]) - 0.5
    return {"counts": counts, "expected": expected, "edges": edges}


def rank_uniformity(ranks, *, num_draws: int, bins: int | None = None) -> pd.DataFrame:
    """Pearson's χ² test that each coordinate's ranks are uniform on ``0 … num_draws``.

    Parameters
    ----------
    ranks : int array [N, L]
        From :func:`sbc_ranks`.
    num_draws : int
        S, the posterior draws per simulation.
    bins : int, optional
        Bins of the χ² test; default about ten expected counts per bin (at most 20).
        Too few simulations for the test (Cochran's rule: an expected count below 1
        in some bin, or below 5 in more than 20 % of them) are a ValueError.

    Returns
    -------
    pandas.DataFrame
        One row per coordinate: ``dim``, ``chi2``, ``dof`` (bins − 1), ``p_value``,
        ``rank_mean`` (mean of r / S; 0.5 if unbiased), ``sd_ratio`` (sd of r / S over
        the uniform's; > 1: q too narrow, < 1: too wide), ``n``, ``bins``.

    Examples
    --------
    >>> import numpy as np
    >>> from ppl_vae.metrics import rank_uniformity
    >>> ranks = np.tile(np.arange(10), 10)[:, None]         # perfectly uniform on 0 … 9
    >>> table = rank_uniformity(ranks, num_draws=9)
    >>> table.loc[0, ["chi2", "dof", "p_value"]].tolist()
    [0.0, 9.0, 1.0]
    """
    ranks, num_draws = _ranks(ranks, num_draws)
    check_simulations(len(ranks), num_draws=num_draws, bins=bins)  # before any counting
    hist = rank_counts(ranks, num_draws=num_draws, bins=bins)
    counts, expected = hist["counts"], hist["expected"]
    chi2, p = stats.chisquare(counts, f_exp=np.broadcast_to(expected[:, None], counts.shape),
                              axis=0)
    u = np.asarray(ranks, dtype=np.float64) / num_draws  # [N, L] in [0, 1]
    uniform_sd = np.sqrt(((num_draws + 1) ** 2 - 1) / 12) / num_draws  # sd of r/S, r uniform
    return pd.DataFrame({
        "dim": np.arange(counts.shape[1]),
        "chi2": chi2,
        "dof": len(expected) - 1,
        "p_value": p,
        "rank_mean": u.mean(axis=0),
        "sd_ratio": u.std(axis=0, ddof=1) / uniform_sd,
        "n": len(u),
        "bins": len(expected),
    })

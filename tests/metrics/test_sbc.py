"""Simulation-based calibration ranks and their uniformity test (Talts et al., 2018)."""

import numpy as np
import pytest
from scipy import stats

from ppl_vae import metrics


def _simulate(rng, *, n, s, latent=2, spread=1.0, shift=0.0):
    # the exact posterior of z given x is N(m, 1); q is N(m + shift, spread^2)
    m = rng.normal(size=(n, latent))
    truth = m + rng.normal(size=(n, latent))
    draws = m + shift + spread * rng.normal(size=(s, n, latent))
    return truth, draws


def test_ranks_count_draws_below_the_truth():
    truth = np.array([[0.0, 10.0]])
    draws = np.array([[[-1.0, 11.0]], [[1.0, 9.0]], [[-2.0, 12.0]]])  # [S=3, N=1, L=2]
    np.testing.assert_array_equal(metrics.sbc_ranks(truth, draws), [[2, 1]])


def test_exact_posterior_gives_uniform_p_values():
    # Under the null the p-value is (nearly) uniform: about 5 % of runs fall below 0.05.
    rng = np.random.default_rng(0)
    p = np.concatenate([
        metrics.rank_uniformity(metrics.sbc_ranks(*_simulate(rng, n=200, s=9)), num_draws=9)[
            "p_value"].to_numpy()
        for _ in range(200)
    ])
    assert 0.025 < (p < 0.05).mean() < 0.08  # 400 p-values; binomial sd 0.011
    assert stats.kstest(p, "uniform").pvalue > 0.01


@pytest.mark.parametrize(
    "spread, shift, shape",
    [(0.5, 0.0, "narrow"), (2.0, 0.0, "wide"), (1.0, 0.5, "biased")],
)
def test_miscalibrated_posteriors_fail_with_their_shape(spread, shift, shape):
    rng = np.random.default_rng(1)
    truth, draws = _simulate(rng, n=500, s=19, spread=spread, shift=shift)
    table = metrics.rank_uniformity(metrics.sbc_ranks(truth, draws), num_draws=19)
    assert (table["p_value"] < 1e-6).all()
    if shape == "narrow":  # truth often outside the draws: a U of extreme ranks
        assert (table["sd_ratio"] > 1.15).all()
    elif shape == "wide":  # truth in the middle of the draws
        assert (table["sd_ratio"] < 0.85).all()
    else:  # q sits above the truth: ranks pile up low
        assert (table["rank_mean"] < 0.4).all()


def test_chi2_is_pearsons_on_the_binned_ranks():
    ranks = np.array([[0], [1], [2], [3], [4], [4], [4]] * 5)  # S = 4: 5 rank values
    hist = metrics.rank_counts(ranks, num_draws=4, bins=2)  # rank values {0,1,2} and {3,4}
    np.testing.assert_array_equal(hist["counts"][:, 0], [15, 20])
    np.testing.assert_allclose(hist["expected"], [35 * 3 / 5, 35 * 2 / 5])
    np.testing.assert_allclose(hist["edges"], [-0.5, 2.5, 4.5])
    row = metrics.rank_uniformity(ranks, num_draws=4, bins=2).iloc[0]
    chi2 = (15 - 21) ** 2 / 21 + (20 - 14) ** 2 / 14
    assert row["chi2"] == pytest.approx(chi2) and row["dof"] == 1
    assert row["p_value"] == pytest.approx(stats.chi2.sf(chi2, 1))
    assert row["rank_mean"] == pytest.approx(ranks.mean() / 4)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: metrics.sbc_ranks(np.zeros((3, 2)), np.zeros((5, 3, 1))), "draws has shape"),
        (lambda: metrics.sbc_ranks(np.zeros((3, 2)), np.full((5, 3, 2), np.nan)), "draws"),
        (lambda: metrics.rank_uniformity(np.array([[5]]), num_draws=4), "num_draws=4"),
        (lambda: metrics.rank_uniformity(np.array([[1]]), num_draws=0), "num_draws=0"),
        (lambda: metrics.rank_counts(np.array([[1]]), num_draws=4, bins=9), "bins=9"),
        (lambda: metrics.rank_counts(np.array([1, 2]), num_draws=4), "\\[N, L\\]"),
        (lambda: metrics.rank_uniformity(np.array([[np.nan]] * 50), num_draws=4), "ranks.*NaN"),
        (lambda: metrics.rank_uniformity(np.array([[1.5]] * 50), num_draws=4), "non-integer"),
        (lambda: metrics.rank_uniformity(np.ones((50, 1)), num_draws=4, bins=2.5),
         "bins=2.5 is invalid: pass an integer 2 <= bins"),
        (lambda: metrics.rank_uniformity(np.ones((50, 1)), num_draws=np.int64(4), bins=True),
         "bins=True"),
        (lambda: metrics.rank_uniformity(np.array([[1]]), num_draws=4),
         "1 simulation.*too few for the χ² test.*run more simulations"),
        (lambda: metrics.rank_uniformity(np.ones((30, 1)), num_draws=19, bins=20),
         "30 simulation.*pass fewer bins"),
    ],
)
def test_bad_inputs_are_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_numpy_integers_are_accepted():
    ranks = np.arange(100).reshape(50, 2) % 5
    a = metrics.rank_uniformity(ranks, num_draws=4, bins=5)
    b = metrics.rank_uniformity(ranks.astype(np.float32), num_draws=np.int32(4), bins=np.int64(5))
    assert a.equals(b)

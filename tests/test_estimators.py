"""Minibatch estimators of q(z) against closed forms.

Reference: a Gaussian aggregate posterior. With q(z|x_i) = N(m_i, s²I) and
m_i ~ N(0, A), the aggregate posterior of an infinite dataset is N(0, A + s²I), whose
total correlation is ½(Σ_l log Σ_ll − log det Σ) (a Gaussian's multi-information).
"""

import itertools
import math

import pytest
import torch

from ppl_vae.estimators import (
    ESTIMATORS,
    kl_decomposition,
    log_aggregate_posterior,
    log_importance_weights,
    total_correlation,
)
from ppl_vae.math import kl_normal_standard

CORRELATED = torch.tensor([[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 1.0]], dtype=torch.float64)


def gaussian_tc(cov: torch.Tensor) -> float:
    return 0.5 * (torch.log(torch.diagonal(cov)).sum() - torch.logdet(cov)).item()


def gaussian_batch(a: torch.Tensor, s: float, n: int, seed: int):
    """Posterior means m_i ~ N(0, A), scales s, and one sample z_i per posterior."""
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, a.shape[0], generator=g, dtype=torch.float64) @ torch.linalg.cholesky(a).T
    scale = torch.full_like(m, s)
    z = m + s * torch.randn(m.shape, generator=g, dtype=torch.float64)
    return z.float(), m.float(), scale.float()


def mean_tc(z, loc, scale, num_data, batch, estimator):
    """Mean per-sample TC over disjoint minibatches of size ``batch``."""
    parts = [
        total_correlation(
            z[i : i + batch],
            loc[i : i + batch],
            scale[i : i + batch],
            num_data,
            estimator=estimator,
            chunk_size=250,
        )
        for i in range(0, len(z), batch)
    ]
    return torch.cat(parts).mean().item()


def brute_force_log_qz(z, loc, scale):
    """log (1/N) Σ_j N(z_i; loc_j, diag scale_j²) by broadcasting torch's Normal."""
    comp = torch.distributions.Normal(loc.unsqueeze(0), scale.unsqueeze(0))
    lp = comp.log_prob(z.unsqueeze(1))  # [B, N, L]
    n = loc.shape[0]
    return torch.logsumexp(lp.sum(-1), 1) - math.log(n), torch.logsumexp(lp, 1) - math.log(n)


@pytest.mark.slow
def test_tc_converges_to_gaussian_closed_form():
    # s = 0.5 against unit-scale A; measured (3 seeds, N = 2000): MSS error -0.044 at
    # B = 100, -0.002 at B = 500, +0.009 at B = N (the residual is the finite-N mixture).
    s, n = 0.5, 2000
    truth = gaussian_tc(CORRELATED + s * s * torch.eye(3, dtype=torch.float64))
    z, loc, scale = gaussian_batch(CORRELATED, s, n, seed=1)
    err_small = mean_tc(z, loc, scale, n, 100, "mss") - truth
    err_full = mean_tc(z, loc, scale, n, n, "mss") - truth
    assert abs(err_full) < 0.03, (truth, err_full)
    assert abs(err_full) < abs(err_small), (err_small, err_full)
    # MWS agrees with MSS in the limit up to its known offset (L-1) log N, exactly.
    mws_full = mean_tc(z, loc, scale, n, n, "mws")
    assert mws_full - 2 * math.log(n) == pytest.approx(err_full + truth, abs=1e-3)


@pytest.mark.parametrize("a, truth", [(CORRELATED, None), (torch.eye(3, dtype=torch.float64), 0.0)])
def test_tc_nonnegative_and_zero_for_isotropic_aggregate(a, truth):
    s, n = 0.5, 1000
    z, loc, scale = gaussian_batch(a, s, n, seed=3)
    tc = mean_tc(z, loc, scale, n, n, "mss")
    assert tc > -0.02
    if truth is not None:
        assert abs(tc - truth) < 0.02, tc


def test_full_batch_mss_is_the_exact_finite_mixture_and_mws_is_offset_by_log_n():
    z, loc, scale = gaussian_batch(CORRELATED, 0.4, 200, seed=0)
    exact_qz, exact_qzj = brute_force_log_qz(z, loc, scale)
    mss = log_aggregate_posterior(z, loc, scale, 200, estimator="mss")
    mws = log_aggregate_posterior(z, loc, scale, 200, estimator="mws")
    torch.testing.assert_close(mss.log_qz, exact_qz, atol=1e-4, rtol=0)
    torch.testing.assert_close(mss.log_qzj, exact_qzj, atol=1e-4, rtol=0)
    torch.testing.assert_close(mss.log_prod_qzj, exact_qzj.sum(-1), atol=1e-4, rtol=0)
    # Chen et al. Eq. (3) weighs by 1/(N·B): at B = N that is q(z)/N.
    torch.testing.assert_close(mws.log_qz, exact_qz - math.log(200), atol=1e-4, rtol=0)
    tc_gap = total_correlation(z, loc, scale, 200, estimator="mws") - total_correlation(
        z, loc, scale, 200, estimator="mss"
    )
    torch.testing.assert_close(
        tc_gap, torch.full_like(tc_gap, 2 * math.log(200)), atol=1e-3, rtol=0
    )


def test_mss_density_is_unbiased_over_all_minibatches():
    # Averaged over every batch that holds x_0 plus B-1 others (drawn without
    # replacement), the stratified estimate of q(z_0) is exactly q(z_0).
    n, b = 12, 4
    z, loc, scale = gaussian_batch(CORRELATED, 0.4, n, seed=5)
    exact = brute_force_log_qz(z, loc, scale)[0][0].exp().item()
    estimates = []
    for others in itertools.combinations(range(1, n), b - 1):
        idx = torch.tensor((0,) + others)
        est = log_aggregate_posterior(z[idx], loc[idx], scale[idx], n, estimator="mss")
        estimates.append(est.log_qz[0].exp().item())
    assert sum(estimates) / len(estimates) == pytest.approx(exact, rel=1e-5)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_decomposition_sums_to_log_ratio_and_to_the_kl(estimator):
    n = 1500
    z, loc, scale = gaussian_batch(CORRELATED, 0.5, n, seed=2)
    scale = scale * torch.linspace(0.7, 1.3, n).unsqueeze(1)  # unequal posteriors
    z = loc + scale * torch.randn(z.shape, generator=torch.Generator().manual_seed(9))
    d = kl_decomposition(z, loc, scale, n, estimator=estimator, chunk_size=500)
    total = d.mutual_information + d.total_correlation + d.dimwise_kl
    torch.testing.assert_close(total, d.log_qz_given_x - d.log_pz, atol=1e-4, rtol=0)
    direct = torch.distributions.Normal(loc, scale).log_prob(z).sum(
        -1
    ) - torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(total, direct, atol=1e-4, rtol=0)
    kl = kl_normal_standard(loc, scale)
    stderr = (total - kl).std().item() / math.sqrt(n)
    assert abs(total.mean().item() - kl.mean().item()) < 4 * stderr


def test_decomposition_accepts_another_factorised_prior():
    z, loc, scale = gaussian_batch(CORRELATED, 0.5, 64, seed=4)
    wide = torch.distributions.Normal(0.0, 2.0)
    as_tensor = kl_decomposition(z, loc, scale, 500, log_prior=wide.log_prob(z))
    as_callable = kl_decomposition(z, loc, scale, 500, log_prior=wide.log_prob)
    torch.testing.assert_close(as_tensor.dimwise_kl, as_callable.dimwise_kl)
    torch.testing.assert_close(as_tensor.log_pz, wide.log_prob(z).sum(-1))
    with pytest.raises(ValueError, match="log_prior"):
        kl_decomposition(z, loc, scale, 500, log_prior=wide.log_prob(z).sum(-1))


def test_chunking_does_not_change_results_and_gradients_flow():
    z, loc, scale = gaussian_batch(CORRELATED, 0.5, 50, seed=6)
    loc.requires_grad_(True)
    whole = total_correlation(z, loc, scale, 1000)
    chunked = total_correlation(z, loc, scale, 1000, chunk_size=7)
    torch.testing.assert_close(whole, chunked)
    whole.mean().backward()
    assert torch.isfinite(loc.grad).all() and loc.grad.abs().sum() > 0


def test_batch_of_one():
    z, loc, scale = gaussian_batch(CORRELATED, 0.5, 1, seed=7)
    mws = log_aggregate_posterior(z, loc, scale, 100, estimator="mws")
    own = torch.distributions.Normal(loc, scale).log_prob(z).sum(-1)
    torch.testing.assert_close(mws.log_qz, own - math.log(100))
    with pytest.raises(ValueError, match="batch_size >= 2"):
        log_aggregate_posterior(z, loc, scale, 100, estimator="mss")
    exact = log_aggregate_posterior(z, loc, scale, 1, estimator="mss")  # N = 1: q(z) = q(z|x)
    torch.testing.assert_close(exact.log_qz, own)


def test_weights_rows_sum_to_one_for_mss():
    w = log_importance_weights(8, 30, estimator="mss").exp()
    torch.testing.assert_close(w.sum(1), torch.ones(8, dtype=w.dtype))


def test_bad_inputs_raise_naming_the_argument():
    z, loc, scale = gaussian_batch(CORRELATED, 0.5, 10, seed=8)
    with pytest.raises(ValueError, match="estimator=.*mws, mss"):
        total_correlation(z, loc, scale, 100, estimator="mcmc")
    with pytest.raises(ValueError, match="batch_size=10 exceeds num_data=5"):
        total_correlation(z, loc, scale, 5)
    with pytest.raises(ValueError, match="num_data"):
        total_correlation(z, loc, scale, 0)
    with pytest.raises(ValueError, match="loc"):
        total_correlation(z, loc[:, :2], scale, 100)
    with pytest.raises(ValueError, match="z has shape"):
        total_correlation(z[0], loc, scale, 100)
    with pytest.raises(ValueError, match="chunk_size"):
        total_correlation(z, loc, scale, 100, chunk_size=0)

"""Synthetic sets reproduce their true generating parameters."""

import numpy as np
import pytest

from ppl_vae import data


def test_gmm_synthetic_matches_its_parameters():
    ds = data.load("gmm_synthetic", num_components=3, data_dim=2, n=60_000, seed=3)
    w, mu, sd = ds.params["weights"], ds.params["means"], ds.params["scales"]
    assert w.shape == (3,) and mu.shape == (3, 2) and sd.shape == (3, 2)
    np.testing.assert_allclose(w.sum(), 1.0)
    x, c = ds.x_train, ds.y_train
    np.testing.assert_allclose(np.bincount(c, minlength=3) / len(c), w, atol=0.01)
    for k in range(3):
        xs = x[c == k]
        # standard error of the mean is sd / sqrt(n_k) <= 1.5 / sqrt(~5000) ~ 0.02
        np.testing.assert_allclose(xs.mean(0), mu[k], atol=0.08)
        np.testing.assert_allclose(xs.std(0), sd[k], rtol=0.05)
        assert abs(np.corrcoef(xs.T)[0, 1]) < 0.06  # diagonal covariance
    assert ds.n_train == 48_000 and ds.n_test == 12_000


def test_gmm_synthetic_deterministic_for_seed():
    a = data.load("gmm_synthetic", seed=1, n=100)
    b = data.load("gmm_synthetic", seed=1, n=100)
    c = data.load("gmm_synthetic", seed=2, n=100)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.params["means"], b.params["means"])
    assert not np.allclose(a.params["means"], c.params["means"])


def test_linear_gaussian_matches_its_parameters():
    ds = data.load("linear_gaussian", data_dim=4, latent_dim=2, sigma=0.3, n=80_000, seed=0)
    w, b, sigma = ds.params["W"], ds.params["b"], ds.params["sigma"]
    assert w.shape == (4, 2) and b.shape == (4,) and sigma == 0.3
    cov = w @ w.T + sigma**2 * np.eye(4)
    np.testing.assert_allclose(ds.params["covariance"], cov)
    x = ds.x_train.astype(np.float64)
    np.testing.assert_allclose(x.mean(0), b, atol=0.03)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.05 * np.abs(cov).max())
    # the stored factors are the true latents: residuals x - (W z + b) have sd sigma
    z = ds.factors_train
    assert ds.factor_names == ("z0", "z1") and z.shape == (64_000, 2)
    resid = x - (z @ w.T + b)
    np.testing.assert_allclose(resid.std(0), sigma, rtol=0.02)
    np.testing.assert_allclose(resid.mean(0), 0.0, atol=0.01)


@pytest.mark.parametrize(
    "name, opts, arg",
    [
        ("gmm_synthetic", {"num_components": 0}, "num_components"),
        ("gmm_synthetic", {"n": 1}, "n"),
        ("gmm_synthetic", {"separation": -1.0}, "separation"),
        ("gmm_synthetic", {"seed": -1}, "seed"),
        ("linear_gaussian", {"sigma": 0.0}, "sigma"),
        ("linear_gaussian", {"latent_dim": 1.5}, "latent_dim"),
        ("linear_gaussian", {"test_fraction": 1.0}, "test_fraction"),
    ],
)
def test_synthetic_bad_options(name, opts, arg):
    with pytest.raises(ValueError, match=f"{arg}="):
        data.load(name, **opts)

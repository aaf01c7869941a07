"""Synthetic datasets whose true generating parameters are known.

They exist so that exact quantities (closed-form log-likelihoods, recovered
means and covariances) can be checked against the truth stored in
``Dataset.params``.

``"gmm_synthetic"``
    A Gaussian mixture with diagonal covariances,
    ``c ~ Categorical(weights)``, ``x | c ~ N(means[c], diag(scales[c]**2))``.
    ``y`` holds the component ``c``; ``params`` holds ``weights [K]``,
    ``means [K, D]``, ``scales [K, D]``.
``"linear_gaussian"``
    The linear-Gaussian latent variable model (probabilistic PCA),
    ``z ~ N(0, I_L)``, ``x = W z + b + sigma * eps``, ``eps ~ N(0, I_D)``, so
    ``x ~ N(b, W W^T + sigma^2 I)``. ``factors`` hold the true ``z`` (names
    ``z0, z1, ...``); ``params`` holds ``W [D, L]``, ``b [D]``, ``sigma`` and the
    marginal ``covariance [D, D]``.

Both take ``n`` (total rows, split by ``test_fraction`` into the first rows for
training and the rest for testing; rows are i.i.d. so no shuffle is needed) and
``seed`` (parameters *and* samples are a deterministic function of it).
"""

from __future__ import annotations

import numpy as np

from ppl_vae import _checks
from ppl_vae._checks import positive_float, positive_int
from ppl_vae.data.dataset import Dataset


def _split_point(n: int, test_fraction: float) -> int:
    n_test = min(max(round(test_fraction * n), 1), n - 1)
    return n - n_test


def load_gmm_synthetic(
    *,
    num_components: int = 3,
    data_dim: int = 2,
    n: int = 2000,
    separation: float = 4.0,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> Dataset:
    """Sample a diagonal-covariance Gaussian mixture with known parameters.

    Parameters
    ----------
    num_components : int
        Number of mixture components ``K``.
    data_dim : int
        Dimension ``D`` of each datapoint.
    n : int
        Total number of samples (train + test).
    separation : float
        Standard deviation of the component means around 0; larger values give
        better separated clusters (the component scales lie in [0.5, 1.5]).
    seed : int
        Seeds both the parameters and the samples.
    test_fraction : float
        Fraction of rows held out for testing, in (0, 1).

    Returns
    -------
    Dataset
        ``params`` = ``{"weights": [K], "means": [K, D], "scales": [K, D]}``,
        ``y`` = component index.

    Examples
    --------
    >>> from ppl_vae.data import load_gmm_synthetic
    >>> ds = load_gmm_synthetic(num_components=3, data_dim=2, n=100, seed=0)
    >>> ds.x_train.shape, ds.num_classes
    ((80, 2), 3)
    """
    k = positive_int("num_components", num_components)
    d = positive_int("data_dim", data_dim)
    n = positive_int(
        "n", n, minimum=2, fix="pass an integer >= 2 (rows are split into train and test)"
    )
    separation = positive_float("separation", separation)
    seed = _checks.seed("seed", seed)
    test_fraction = _checks.fraction("test_fraction", test_fraction)
    _checks.within_budget(
        f"gmm_synthetic with n={n}, data_dim={d}, num_components={k}",
        8 * (3 * n * d + 2 * k * d + n), _checks.memory_budget(),
        "lower n, data_dim or num_components", option=False,
    )
    rng = np.random.default_rng(seed)
    # Dirichlet(5) keeps every component well populated, so all are identifiable.
    weights = rng.dirichlet(np.full(k, 5.0))
    means = rng.normal(0.0, separation, size=(k, d))
    scales = rng.uniform(0.5, 1.5, size=(k, d))
    c = rng.choice(k, size=n, p=weights)  # [n]
    x = means[c] + scales[c] * rng.standard_normal((n, d))  # [n, D]
    cut = _split_point(n, test_fraction)
    return Dataset(
        x_train=x[:cut],
        x_test=x[cut:],
        y_train=c[:cut],
        y_test=c[cut:],
        name="gmm_synthetic",
        params={"weights": weights, "means": means, "scales": scales, "seed": seed},
    )


def load_linear_gaussian(
    *,
    data_dim: int = 5,
    latent_dim: int = 2,
    sigma: float = 0.1,
    n: int = 2000,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> Dataset:
    """Sample the linear-Gaussian model ``x = W z + b + sigma * eps``.

    Parameters
    ----------
    data_dim : int
        Observed dimension ``D``.
    latent_dim : int
        Latent dimension ``L``.
    sigma : float
        Observation noise standard deviation (> 0).
    n : int
        Total number of samples (train + test).
    seed : int
        Seeds both the parameters and the samples.
    test_fraction : float
        Fraction of rows held out for testing, in (0, 1).

    Returns
    -------
    Dataset
        ``factors`` = the true latents ``z [N, L]``; ``params`` = ``{"W": [D, L],
        "b": [D], "sigma": float, "covariance": W W^T + sigma^2 I}``.

    Examples
    --------
    >>> from ppl_vae.data import load_linear_gaussian
    >>> ds = load_linear_gaussian(data_dim=5, latent_dim=2, n=50, seed=0)
    >>> ds.x_train.shape, ds.x_test.shape
    ((40, 5), (10, 5))
    """
    d = positive_int("data_dim", data_dim)
    latent = positive_int("latent_dim", latent_dim)
    sigma = positive_float("sigma", sigma)
    n = positive_int(
        "n", n, minimum=2, fix="pass an integer >= 2 (rows are split into train and test)"
    )
    seed = _checks.seed("seed", seed)
    test_fraction = _checks.fraction("test_fraction", test_fraction)
    _checks.within_budget(
        f"linear_gaussian with n={n}, data_dim={d}, latent_dim={latent}",
        8 * (3 * n * d + n * latent + d * latent), _checks.memory_budget(),
        "lower n, data_dim or latent_dim", option=False,
    )
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 1.0, size=(d, latent))
    b = rng.normal(0.0, 1.0, size=d)
    z = rng.standard_normal((n, latent))  # [n, L]
    x = z @ w.T + b + sigma * rng.standard_normal((n, d))  # [n, D]
    cut = _split_point(n, test_fraction)
    return Dataset(
        x_train=x[:cut],
        x_test=x[cut:],
        factors_train=z[:cut],
        factors_test=z[cut:],
        factor_names=tuple(f"z{i}" for i in range(latent)),
        name="linear_gaussian",
        params={
            "W": w,
            "b": b,
            "sigma": sigma,
            "covariance": w @ w.T + sigma**2 * np.eye(d),
            "seed": seed,
        },
    )

"""Shared models for the inference tests.

``ppca`` is a hand-written raw Pyro probabilistic PCA (not built with
``pv.build``) with closed forms for everything: the marginal
log N(x; b, WWᵀ + σ²I), the posterior Norm[μ(x), Σ] with
Σ = (I + WᵀW/σ²)⁻¹ and μ(x) = (WᵀW + σ²I)⁻¹Wᵀ(x − b) (Bishop, PRML §12.2).
The trained models are module-scoped so each trains once per file.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import pytest
import torch

import ppl_vae as pv


@dataclass
class PPCA:
    w: torch.Tensor  # [D, L]
    b: torch.Tensor  # [D]
    sigma: float

    @property
    def latent_dim(self) -> int:
        return self.w.shape[1]

    @property
    def data_dim(self) -> int:
        return self.w.shape[0]

    def model(self, x, y=None):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample(
                "z", dist.Normal(torch.zeros(self.latent_dim), 1.0).to_event(1)
            )
            pyro.sample("x", dist.Normal(z @ self.w.T + self.b, self.sigma).to_event(1), obs=x)

    def posterior_cov(self) -> torch.Tensor:
        eye = torch.eye(self.latent_dim, dtype=torch.float64)
        w = self.w.double()
        return torch.linalg.inv(eye + w.T @ w / self.sigma**2)

    def posterior_mean(self, x) -> torch.Tensor:
        w = self.w.double()
        eye = torch.eye(self.latent_dim, dtype=torch.float64)
        rhs = w.T @ (x.double() - self.b.double()).T
        return torch.linalg.solve(w.T @ w + self.sigma**2 * eye, rhs).T

    def guide(self, x, y=None, *, inflate: float = 1.0, shift: float = 0.0):
        """The exact posterior (optionally with a scaled covariance / shifted mean)."""
        loc = (self.posterior_mean(x) + shift).float()
        cov = (self.posterior_cov() * inflate**2).float()
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.MultivariateNormal(loc, covariance_matrix=cov))

    def log_marginal(self, x) -> torch.Tensor:
        w = self.w.double()
        cov = w @ w.T + self.sigma**2 * torch.eye(self.data_dim, dtype=torch.float64)
        return torch.distributions.MultivariateNormal(self.b.double(), cov).log_prob(x.double())

    def sample(self, n: int, *, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.latent_dim, generator=g)
        eps = torch.randn(n, self.data_dim, generator=g)
        return z @ self.w.T + self.b + self.sigma * eps


def make_ppca(data_dim: int, latent_dim: int, sigma: float, *, seed: int = 0) -> PPCA:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(data_dim, latent_dim, generator=g) / latent_dim**0.5
    b = torch.randn(data_dim, generator=g)
    return PPCA(w, b, sigma)


@pytest.fixture
def ppca():
    return make_ppca(6, 2, 0.5)


@pytest.fixture
def ppca_factory():
    """``make_ppca(data_dim, latent_dim, sigma, *, seed)`` for tests that need other sizes."""
    return make_ppca


@pytest.fixture(scope="session")
def digits():
    return pv.data.load("digits", binarize=True)


@pytest.fixture(scope="session")
def trained_vae(digits):
    """A small VAE on binarized digits (enough training for a sensible encoder)."""
    model = pv.build("vae", latent_dim=4, decoder={"hidden": [64]}, guide={"hidden": [64]})
    pv.fit(model, digits.x_train[:600], steps=300, batch_size=100, lr=3e-3, seed=0, progress=False)
    return model


@pytest.fixture(scope="session")
def linear_lvm():
    """The linear-Gaussian LVM trained by SVI, with an amortized full-covariance guide."""
    data = pv.data.load("linear_gaussian", data_dim=5, latent_dim=2, sigma=0.3, n=600, seed=1)
    model = pv.build(
        "lvm",
        data_dim=5,
        latent_dim=2,
        likelihood={"scale": 0.3},
        decoder={"hidden": []},
        guide={"kind": "amortized", "hidden": [], "covariance": "diagonal"},
    )
    pv.fit(model, data.x_train, steps=300, batch_size=100, lr=2e-2, seed=0, progress=False)
    return model, data

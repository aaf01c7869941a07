"""Pyro model/guide pairs, written the way Pyro users write them, with exact references.

A plain helper module (no tests) for ``test_conformance.py`` and
``test_conformance_latent.py``. Every pair here is ordinary Pyro code: no
ppl_vae conventions (site/plate names, signatures, shapes) are assumed.

Closed forms (all in float64): for the linear-Gaussian model
z ~ N(0, I_L), x | z ~ N(Wz + b, σ²I_D),

    log p(x) = log N(x; b, WWᵀ + σ²I),
    p(z | x) = N(Σ Wᵀ(x − b)/σ², Σ),  Σ = (I + WᵀW/σ²)⁻¹     (Bishop, PRML §12.2),

and with the exact posterior as the guide every importance weight
log p(x, z) − log q(z | x) equals log p(x) exactly, for any K and any seed.
"""

from __future__ import annotations

import itertools
import math

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn

D, L, N = 5, 2, 7
SIGMA = 0.5


def close(actual, expected, atol=2e-4):
    """``actual`` equals ``expected`` within ``atol`` (in float64, no relative slack)."""
    torch.testing.assert_close(
        torch.as_tensor(actual).double(), torch.as_tensor(expected).double(), atol=atol, rtol=0
    )


# ---------------------------------------------------------------------------
# closed forms
# ---------------------------------------------------------------------------


def make_linear(d=D, l=L, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, l, generator=g) / l**0.5
    b = torch.randn(d, generator=g)
    return w, b


def sample_linear(w, b, sigma, n=N, seed=1, z_mean=None):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, w.shape[1], generator=g)
    if z_mean is not None:
        z = z + z_mean
    return z @ w.T + b + sigma * torch.randn(n, w.shape[0], generator=g)


def gauss_marginal(x, w, b, sigma, mask=None, z_mean=None):
    """log N(x_o; W_o m + b_o, W_o W_oᵀ + σ²I) per row over the observed (mask True) coordinates."""
    x, w, b = x.double(), w.double(), b.double()
    m = torch.zeros(w.shape[1], dtype=torch.float64) if z_mean is None else z_mean.double()
    out = []
    for i in range(x.shape[0]):
        keep = torch.ones(x.shape[1], dtype=torch.bool) if mask is None else mask[i].bool()
        wo = w[keep]
        cov = wo @ wo.T + sigma**2 * torch.eye(int(keep.sum()), dtype=torch.float64)
        mvn = torch.distributions.MultivariateNormal(wo @ m + b[keep], cov)
        out.append(mvn.log_prob(x[i, keep]))
    return torch.stack(out)


def gauss_posterior(x, w, b, sigma, mask=None, z_mean=None):
    """Exact posterior mean ``[N, L]`` and covariance ``[N, L, L]`` (masked coordinates dropped)."""
    x, w, b = x.double(), w.double(), b.double()
    lat = w.shape[1]
    m = torch.zeros(lat, dtype=torch.float64) if z_mean is None else z_mean.double()
    eye = torch.eye(lat, dtype=torch.float64)
    means, covs = [], []
    for i in range(x.shape[0]):
        keep = torch.ones(x.shape[1], dtype=torch.bool) if mask is None else mask[i].bool()
        wo = w[keep]
        cov = torch.linalg.inv(eye + wo.T @ wo / sigma**2)
        means.append(cov @ (m + wo.T @ (x[i, keep] - b[keep]) / sigma**2))
        covs.append(cov)
    return torch.stack(means), torch.stack(covs)


# ---------------------------------------------------------------------------
# linear-Gaussian pairs in different idioms
# ---------------------------------------------------------------------------


class LinearGaussian:
    """pPCA written several ways; ``exact(x)`` is log p(x) for all of them."""

    def __init__(self, d=D, l=L, sigma=SIGMA, seed=0):
        self.w, self.b = make_linear(d, l, seed)
        self.sigma = sigma
        self.d, self.l = d, l

    def sample(self, n=N, seed=1):
        return sample_linear(self.w, self.b, self.sigma, n, seed)

    def exact(self, x, mask=None):
        return gauss_marginal(x, self.w, self.b, self.sigma, mask)

    def post(self, x, mask=None, sigma=None):
        mean, cov = gauss_posterior(x, self.w, self.b, self.sigma if sigma is None else sigma, mask)
        return mean.float(), cov.float()

    # 1. one-argument signatures, Pyro's default names ------------------------
    def model1(self, x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(self.l), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z @ self.w.T + self.b, self.sigma).to_event(1), obs=x)

    def guide1(self, x):
        loc, cov = self.post(x)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.MultivariateNormal(loc, covariance_matrix=cov))

    # 2. arbitrary names -------------------------------------------------------
    def model_named(self, data):
        with pyro.plate("batch", data.shape[0]):
            latent = pyro.sample("latent", dist.Normal(0.0, 1.0).expand([self.l]).to_event(1))
            loc = latent @ self.w.T + self.b
            pyro.sample("obs", dist.Normal(loc, self.sigma).to_event(1), obs=data)

    def guide_named(self, data):
        loc, cov = self.post(data)
        with pyro.plate("batch", data.shape[0]):
            pyro.sample(
                "latent", dist.MultivariateNormal(loc, scale_tril=torch.linalg.cholesky(cov))
            )

    # 3/4. nested plates: data at dim=-2, pixels at dim=-1, no to_event ---------
    def model_nested(self, x, mask=None):
        with pyro.plate("data", x.shape[0], dim=-2):
            z = pyro.sample("z", dist.Normal(0.0, 1.0).expand([1, self.l]).to_event(1))  # [N,1,L]
            loc = (z @ self.w.T + self.b).squeeze(-2)  # [..., N, D]
            with pyro.plate("pixels", x.shape[1], dim=-1):
                if mask is None:
                    pyro.sample("x", dist.Normal(loc, self.sigma), obs=x)
                else:
                    with poutine.mask(mask=mask):
                        pyro.sample("x", dist.Normal(loc, self.sigma), obs=x)

    def guide_nested(self, x, mask=None):
        loc, cov = self.post(x, mask)
        with pyro.plate("data", x.shape[0], dim=-2):
            pyro.sample(
                "z", dist.MultivariateNormal(loc.unsqueeze(-2), covariance_matrix=cov.unsqueeze(-3))
            )

    # 5. Distribution.mask with to_event ---------------------------------------
    def model_dmask(self, x, mask):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(self.l), 1.0).to_event(1))
            fn = dist.Normal(z @ self.w.T + self.b, self.sigma).mask(mask).to_event(1)
            pyro.sample("x", fn, obs=x)

    def guide_dmask(self, x, mask):
        loc, cov = self.post(x, mask)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.MultivariateNormal(loc, covariance_matrix=cov))

    # 6. poutine.scale on the likelihood ---------------------------------------
    def model_scaled(self, x, s):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(self.l), 1.0).to_event(1))
            with poutine.scale(scale=s):
                pyro.sample("x", dist.Normal(z @ self.w.T + self.b, self.sigma).to_event(1), obs=x)

    def guide_tempered(self, x, s):
        """Exact posterior of the tempered model p(x|z)^s p(z): pPCA with noise σ/√s."""
        loc, cov = self.post(x, sigma=self.sigma / s**0.5)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.MultivariateNormal(loc, covariance_matrix=cov))

    def exact_scaled(self, x, s):
        """log ∫ p(x|z)^s p(z) dz = log N(x; b, WWᵀ + σ²/s I) + D/2 log(2πσ²/s) − sD/2 log(2πσ²)."""
        d, var = x.shape[1], self.sigma**2
        tempered = gauss_marginal(x, self.w, self.b, self.sigma / s**0.5)
        return (
            tempered
            + 0.5 * d * math.log(2 * math.pi * var / s)
            - 0.5 * s * d * math.log(2 * math.pi * var)
        )

    # 7. subsampled data plate -------------------------------------------------
    def model_sub(self, x, size=2):
        with pyro.plate("data", x.shape[0], subsample_size=size) as ind:
            z = pyro.sample("z", dist.Normal(torch.zeros(self.l), 1.0).to_event(1))
            loc = z @ self.w.T + self.b
            pyro.sample("x", dist.Normal(loc, self.sigma).to_event(1), obs=x[ind])

    def guide_sub(self, x, size=2):
        with pyro.plate("data", x.shape[0], subsample_size=size) as ind:
            loc, cov = self.post(x[ind])
            pyro.sample("z", dist.MultivariateNormal(loc, covariance_matrix=cov))

    # 8. a global latent outside the data plate --------------------------------
    def model_global(self, x):
        shared = pyro.sample("shared_mean", dist.Normal(torch.zeros(self.d), 10.0).to_event(1))
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(self.l), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z @ self.w.T + shared, self.sigma).to_event(1), obs=x)

    def guide_global(self, x):
        m = pyro.param("shared_loc", torch.zeros(self.d))
        pyro.sample("shared_mean", dist.Normal(m, 0.1).to_event(1))
        loc, cov = self.post(x)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.MultivariateNormal(loc, covariance_matrix=cov))

    # 15. code that does not broadcast over a leading particle dim --------------
    def model_mm(self, x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(self.l), 1.0).to_event(1))
            loc = torch.mm(z, self.w.T) + self.b  # 2-D only
            pyro.sample("x", dist.Normal(loc, self.sigma).to_event(1), obs=x)

    def guide_cat(self, x):
        n = x.shape[0]
        feats = torch.cat([x, torch.ones(n, 1)], dim=1)  # [N, D+1]
        loc, cov = self.post(feats[:, : self.d])
        with pyro.plate("data", n):
            pyro.sample("z", dist.MultivariateNormal(loc.view(-1, self.l), covariance_matrix=cov))

    # 16. keyword arguments for one side only ----------------------------------
    def model_kw(self, x, *, noise=1.0):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(self.l), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z @ self.w.T + self.b, noise).to_event(1), obs=x)

    def guide_kw(self, x, *, shift=3.0, temperature=2.0):
        loc, cov = self.post(x)
        with pyro.plate("data", x.shape[0]):
            pyro.sample(
                "z", dist.MultivariateNormal(loc + shift, covariance_matrix=cov * temperature**2)
            )


# ---------------------------------------------------------------------------
# 10. mixture of Bernoulli products, z enumerated in the model, nested plates
# ---------------------------------------------------------------------------


class BernoulliMixture:
    def __init__(self, c=3, d=8, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.pi = torch.softmax(torch.randn(c, generator=g), 0)
        self.probs = torch.rand(c, d, generator=g) * 0.8 + 0.1
        self.c, self.d = c, d

    def sample(self, n=N, seed=1):
        g = torch.Generator().manual_seed(seed)
        k = torch.multinomial(self.pi, n, replacement=True, generator=g)
        return torch.bernoulli(self.probs[k], generator=g)

    def model(self, x):
        with pyro.plate("data", x.shape[0], dim=-2):
            z = pyro.sample("z", dist.Categorical(self.pi), infer={"enumerate": "parallel"})
            with pyro.plate("pixels", x.shape[1], dim=-1):
                pyro.sample("x", dist.Bernoulli(self.probs[z.squeeze(-1)]), obs=x)

    def model_masked_scaled(self, x, mask=None, scale=1.0):
        """The same mixture with a pixel mask inside and a scale around the whole datapoint."""
        with pyro.plate("data", x.shape[0], dim=-2), poutine.scale(scale=scale):
            z = pyro.sample("z", dist.Categorical(self.pi), infer={"enumerate": "parallel"})
            pixels = pyro.plate("pixels", x.shape[1], dim=-1)
            with pixels, poutine.mask(mask=True if mask is None else mask):
                pyro.sample("x", dist.Bernoulli(self.probs[z.squeeze(-1)]), obs=x)

    def exact_masked_scaled(self, x, mask=None, scale=1.0):
        x = x.double()
        p = self.probs.double()
        ll = x[:, None, :] * p.log() + (1 - x[:, None, :]) * (1 - p).log()  # [N, C, D]
        if mask is not None:
            ll = ll * mask[:, None, :].double()
        return scale * torch.logsumexp(ll.sum(-1) + self.pi.double().log(), dim=1)

    def guide(self, x):
        pass

    def exact(self, x):
        x = x.double()
        p = self.probs.double()
        comp = (x[:, None, :] * p.log() + (1 - x[:, None, :]) * (1 - p).log()).sum(-1)  # [N, C]
        return torch.logsumexp(comp + self.pi.double().log(), dim=1)


# ---------------------------------------------------------------------------
# 9. Gaussian mixture with point-estimate globals (pyro.param / AutoDelta)
# ---------------------------------------------------------------------------

GMM_LOCS = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.0]])
GMM_WEIGHTS = torch.tensor([0.5, 0.3, 0.2])
GMM_SCALE = 0.7


def gmm_exact(x, locs, weights, scale):
    x, locs = x.double(), locs.double()
    comp = torch.distributions.Normal(locs, float(scale)).log_prob(x[:, None, :]).sum(-1)
    return torch.logsumexp(comp + weights.double().log(), dim=1)


def gmm_param_model(x):
    weights = pyro.param("weights", GMM_WEIGHTS.clone(), constraint=dist.constraints.simplex)
    locs = pyro.param("locs", GMM_LOCS.clone())
    scale = pyro.param("scale", torch.tensor(GMM_SCALE), constraint=dist.constraints.positive)
    with pyro.plate("data", x.shape[0]):
        k = pyro.sample("assignment", dist.Categorical(weights), infer={"enumerate": "parallel"})
        pyro.sample("obs", dist.Normal(locs[k], scale).to_event(1), obs=x)


def gmm_param_guide(x):
    pass


def gmm_global_model(x):
    """Pyro's GMM tutorial shape: global sites sampled, local assignment enumerated."""
    weights = pyro.sample("weights", dist.Dirichlet(0.5 * torch.ones(3)))
    scale = pyro.sample("scale", dist.LogNormal(0.0, 2.0))
    with pyro.plate("components", 3):
        locs = pyro.sample("locs", dist.Normal(torch.zeros(2), 10.0).to_event(1))
    with pyro.plate("data", x.shape[0]):
        k = pyro.sample("assignment", dist.Categorical(weights), infer={"enumerate": "parallel"})
        pyro.sample("obs", dist.Normal(locs[k], scale).to_event(1), obs=x)


def gmm_init(site):
    return {"weights": GMM_WEIGHTS, "scale": torch.tensor(GMM_SCALE), "locs": GMM_LOCS}[
        site["name"]
    ].clone()


def gmm_sample(n=N, seed=1):
    g = torch.Generator().manual_seed(seed)
    k = torch.multinomial(GMM_WEIGHTS, n, replacement=True, generator=g)
    return GMM_LOCS[k] + GMM_SCALE * torch.randn(n, 2, generator=g)


# ---------------------------------------------------------------------------
# 11. discrete y enumerated in the guide (q(y|x) is not the posterior)
# ---------------------------------------------------------------------------


class GuideEnumMixture:
    """y ~ Cat(π), z | y ~ N(m_y, I), x | z ~ N(Wz + b, σ²I); guide q(y|x) q(z|x,y) exact in z."""

    def __init__(self, c=3, seed=0):
        self.w, self.b = make_linear(D, L, seed)
        g = torch.Generator().manual_seed(seed + 10)
        self.pi = torch.softmax(torch.randn(c, generator=g), 0)
        self.means = 2.0 * torch.randn(c, L, generator=g)
        self.a = torch.randn(D, c, generator=g)  # classifier weights: q(y|x) = softmax(x A)
        self.c = c

    def sample(self, n=N, seed=1):
        g = torch.Generator().manual_seed(seed)
        k = torch.multinomial(self.pi, n, replacement=True, generator=g)
        z = self.means[k] + torch.randn(n, L, generator=g)
        return z @ self.w.T + self.b + SIGMA * torch.randn(n, D, generator=g)

    def model(self, x):
        with pyro.plate("data", x.shape[0]):
            y = pyro.sample("y", dist.Categorical(self.pi))
            z = pyro.sample("z", dist.Normal(self.means[y], 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z @ self.w.T + self.b, SIGMA).to_event(1), obs=x)

    def q_y(self, x):
        return torch.softmax(x @ self.a, -1)

    def guide(self, x):
        eye = torch.eye(L)
        cov = torch.linalg.inv(eye + self.w.T @ self.w / SIGMA**2)
        with pyro.plate("data", x.shape[0]):
            y = pyro.sample("y", dist.Categorical(self.q_y(x)), infer={"enumerate": "parallel"})
            loc = (self.means[y] + (x - self.b) @ self.w / SIGMA**2) @ cov.T
            pyro.sample("z", dist.MultivariateNormal(loc, covariance_matrix=cov))

    def log_joint_y(self, x):
        """log p(x, y) ``[N, C]``."""
        cols = [
            gauss_marginal(x, self.w, self.b, SIGMA, z_mean=self.means[c]) for c in range(self.c)
        ]
        return torch.stack(cols, 1) + self.pi.double().log()

    def exact(self, x):
        return torch.logsumexp(self.log_joint_y(x), 1)

    def exact_elbo(self, x):
        q = self.q_y(x).double()
        return (q * (self.log_joint_y(x) - q.log())).sum(1)


# ---------------------------------------------------------------------------
# 12. two latent sites: z1 -> z2 -> x
# ---------------------------------------------------------------------------


class Hierarchical:
    def __init__(self, l1=2, l2=3, tau=0.6, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.a = torch.randn(l2, l1, generator=g)
        self.w = torch.randn(D, l2, generator=g) / l2**0.5
        self.b = torch.randn(D, generator=g)
        self.tau, self.l1, self.l2 = tau, l1, l2

    def sample(self, n=N, seed=1):
        g = torch.Generator().manual_seed(seed)
        z1 = torch.randn(n, self.l1, generator=g)
        z2 = z1 @ self.a.T + self.tau * torch.randn(n, self.l2, generator=g)
        return z2 @ self.w.T + self.b + SIGMA * torch.randn(n, D, generator=g)

    def model(self, x):
        with pyro.plate("data", x.shape[0]):
            z1 = pyro.sample("z1", dist.Normal(torch.zeros(self.l1), 1.0).to_event(1))
            z2 = pyro.sample("z2", dist.Normal(z1 @ self.a.T, self.tau).to_event(1))
            pyro.sample("x", dist.Normal(z2 @ self.w.T + self.b, SIGMA).to_event(1), obs=x)

    def _sx(self):
        a, w = self.a.double(), self.w.double()
        c2 = a @ a.T + self.tau**2 * torch.eye(self.l2, dtype=torch.float64)
        return w @ c2 @ w.T + SIGMA**2 * torch.eye(D, dtype=torch.float64)

    def exact(self, x):
        return torch.distributions.MultivariateNormal(self.b.double(), self._sx()).log_prob(
            x.double()
        )

    def post_z1(self, x):
        a, w = self.a.double(), self.w.double()
        gain = a.T @ w.T @ torch.linalg.inv(self._sx())  # [l1, D]
        mean = (x.double() - self.b.double()) @ gain.T
        cov = torch.eye(self.l1, dtype=torch.float64) - gain @ w @ a
        return mean.float(), cov.float()

    def guide(self, x):
        m1, c1 = self.post_z1(x)
        prec = torch.eye(self.l2) / self.tau**2 + self.w.T @ self.w / SIGMA**2
        c2 = torch.linalg.inv(prec)
        with pyro.plate("data", x.shape[0]):
            z1 = pyro.sample("z1", dist.MultivariateNormal(m1, covariance_matrix=c1))
            rhs = z1 @ self.a.T / self.tau**2 + (x - self.b) @ self.w / SIGMA**2
            pyro.sample("z2", dist.MultivariateNormal(rhs @ c2.T, covariance_matrix=c2))

    def guide_mm(self, x):
        """Same guide through torch.mm (2-D only): does not broadcast over particles."""
        m1, c1 = self.post_z1(x)
        prec = torch.eye(self.l2) / self.tau**2 + self.w.T @ self.w / SIGMA**2
        c2 = torch.linalg.inv(prec)
        with pyro.plate("data", x.shape[0]):
            z1 = pyro.sample("z1", dist.MultivariateNormal(m1, covariance_matrix=c1))
            rhs = torch.mm(z1, self.a.T) / self.tau**2 + torch.mm(x - self.b, self.w) / SIGMA**2
            pyro.sample("z2", dist.MultivariateNormal(torch.mm(rhs, c2.T), covariance_matrix=c2))


# ---------------------------------------------------------------------------
# 13. a non-reparameterizable latent sampled by the guide (not enumerated)
# ---------------------------------------------------------------------------


class BinaryLatent:
    """z ∈ {0,1}^3 ~ Bernoulli(ρ), x | z ~ N(Wz + b, σ²I): exact by summing the 8 states."""

    def __init__(self, l=3, sigma=0.8, seed=0):
        self.w, self.b = make_linear(D, l, seed)
        self.rho = torch.tensor([0.3, 0.6, 0.5])
        self.l, self.sigma = l, sigma
        self.states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=l)))  # [8, l]

    def sample(self, n=N, seed=1):
        g = torch.Generator().manual_seed(seed)
        z = torch.bernoulli(self.rho.expand(n, self.l), generator=g)
        return z @ self.w.T + self.b + self.sigma * torch.randn(n, D, generator=g)

    def _log_joint_states(self, x):  # [N, 8]
        s = self.states.double()
        prior = (s * self.rho.double().log() + (1 - s) * (1 - self.rho.double()).log()).sum(-1)
        loc = s @ self.w.double().T + self.b.double()
        lik = torch.distributions.Normal(loc, self.sigma).log_prob(x.double()[:, None, :]).sum(-1)
        return lik + prior

    def exact(self, x):
        return torch.logsumexp(self._log_joint_states(x), 1)

    def guide_probs(self, x):
        """Mean-field q: the exact posterior marginals, shrunk towards 0.5 (so q ≠ posterior)."""
        lj = self._log_joint_states(x)
        post = torch.softmax(lj, 1)  # [N, 8]
        marg = post @ self.states.double()  # [N, l]
        return (0.8 * marg + 0.1).float()

    def q_states(self, x):
        q = self.guide_probs(x).double()
        s = self.states.double()
        return (s * q[:, None].log() + (1 - s) * (1 - q[:, None]).log()).sum(-1)  # [N, 8]

    def exact_elbo(self, x):
        lq = self.q_states(x)
        return (lq.exp() * (self._log_joint_states(x) - lq)).sum(1)

    def model(self, x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Bernoulli(self.rho).to_event(1))
            pyro.sample("x", dist.Normal(z @ self.w.T + self.b, self.sigma).to_event(1), obs=x)

    def guide(self, x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Bernoulli(self.guide_probs(x)).to_event(1))


# ---------------------------------------------------------------------------
# 14. M2-style linear-Gaussian model with one-hot labels
# ---------------------------------------------------------------------------


class LinearM2:
    """y ~ OneHotCat(π), z ~ N(0, I), x | y, z ~ N(Wz + Uy + b, σ²I); exact q(z|x, y)."""

    def __init__(self, c=3, seed=0):
        self.w, self.b = make_linear(D, L, seed)
        g = torch.Generator().manual_seed(seed + 20)
        self.u = 2.0 * torch.randn(D, c, generator=g)
        self.pi = torch.softmax(torch.randn(c, generator=g), 0)
        self.a = torch.randn(D, c, generator=g)
        self.c = c

    def sample(self, n=N, seed=1):
        g = torch.Generator().manual_seed(seed)
        k = torch.multinomial(self.pi, n, replacement=True, generator=g)
        y = torch.nn.functional.one_hot(k, self.c).float()
        z = torch.randn(n, L, generator=g)
        x = z @ self.w.T + y @ self.u.T + self.b + SIGMA * torch.randn(n, D, generator=g)
        return x, y

    def model(self, xs, ys=None):
        with pyro.plate("data", xs.shape[0]):
            ys = pyro.sample("y", dist.OneHotCategorical(self.pi), obs=ys)
            z = pyro.sample("z", dist.Normal(torch.zeros(L), 1.0).to_event(1))
            loc = z @ self.w.T + ys @ self.u.T + self.b
            pyro.sample("x", dist.Normal(loc, SIGMA).to_event(1), obs=xs)

    def guide(self, xs, ys=None):
        cov = torch.linalg.inv(torch.eye(L) + self.w.T @ self.w / SIGMA**2)
        with pyro.plate("data", xs.shape[0]):
            if ys is None:
                ys = pyro.sample(
                    "y",
                    dist.OneHotCategorical(torch.softmax(xs @ self.a, -1)),
                    infer={"enumerate": "parallel"},
                )
            loc = ((xs - ys @ self.u.T - self.b) @ self.w / SIGMA**2) @ cov.T
            pyro.sample("z", dist.MultivariateNormal(loc, covariance_matrix=cov))

    def model_cat(self, xs, ys=None):
        """The same model with torch.cat(..., dim=1) (does not broadcast over particles)."""
        wu = torch.cat([self.w, self.u], dim=1)  # [D, L + C]
        with pyro.plate("data", xs.shape[0]):
            ys = pyro.sample("y", dist.OneHotCategorical(self.pi), obs=ys)
            z = pyro.sample("z", dist.Normal(torch.zeros(L), 1.0).to_event(1))
            loc = torch.cat([z, ys], dim=1) @ wu.T + self.b
            pyro.sample("x", dist.Normal(loc, SIGMA).to_event(1), obs=xs)

    def log_joint_y(self, x):  # log p(x, y=c) [N, C]
        cols = [gauss_marginal(x, self.w, self.b + self.u[:, c], SIGMA) for c in range(self.c)]
        return torch.stack(cols, 1) + self.pi.double().log()

    def exact_xy(self, x, y):
        return (self.log_joint_y(x) * y.double()).sum(1)

    def exact(self, x):
        return torch.logsumexp(self.log_joint_y(x), 1)

    def post_mean(self, x, y):
        cov = torch.linalg.inv(torch.eye(L) + self.w.T @ self.w / SIGMA**2)
        return ((x - y @ self.u.T - self.b) @ self.w / SIGMA**2) @ cov.T


# ---------------------------------------------------------------------------
# Bernoulli VAE written with nested plates (no to_event), and the flat twin
# ---------------------------------------------------------------------------


class NestedBernoulliVAE(nn.Module):
    def __init__(self, d=64, z_dim=3, hidden=16, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.dec = nn.Sequential(nn.Linear(z_dim, hidden), nn.Tanh(), nn.Linear(hidden, d))
        self.enc = nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, 2 * z_dim))
        self.z_dim = z_dim

    def model(self, x):
        pyro.module("nested_vae", self)
        with pyro.plate("data", x.shape[0], dim=-2):
            z = pyro.sample("z", dist.Normal(0.0, 1.0).expand([1, self.z_dim]).to_event(1))
            logits = self.dec(z).squeeze(-2)
            with pyro.plate("pixels", x.shape[1], dim=-1):
                pyro.sample("x", dist.Bernoulli(logits=logits), obs=x)

    def guide(self, x):
        pyro.module("nested_vae", self)
        loc, log_scale = self.enc(x).chunk(2, -1)
        with pyro.plate("data", x.shape[0], dim=-2):
            pyro.sample(
                "z", dist.Normal(loc.unsqueeze(-2), log_scale.exp().unsqueeze(-2)).to_event(1)
            )

    def flat_model(self, x):
        pyro.module("nested_vae", self)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(self.z_dim), 1.0).to_event(1))
            pyro.sample("x", dist.Bernoulli(logits=self.dec(z)).to_event(1), obs=x)

    def flat_guide(self, x):
        pyro.module("nested_vae", self)
        loc, log_scale = self.enc(x).chunk(2, -1)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(loc, log_scale.exp()).to_event(1))


# ---------------------------------------------------------------------------
# Example-shaped pairs: Pyro's examples/vae/vae.py and ss_vae_M2.py, sized for digits
# ---------------------------------------------------------------------------


class Decoder(nn.Module):
    def __init__(self, z_dim, hidden_dim, out_dim=64):
        super().__init__()
        self.fc1 = nn.Linear(z_dim, hidden_dim)
        self.fc21 = nn.Linear(hidden_dim, out_dim)
        self.softplus = nn.Softplus()
        self.sigmoid = nn.Sigmoid()

    def forward(self, z):
        hidden = self.softplus(self.fc1(z))
        return self.sigmoid(self.fc21(hidden))


class Encoder(nn.Module):
    def __init__(self, z_dim, hidden_dim, in_dim=64):
        super().__init__()
        self.in_dim = in_dim
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc21 = nn.Linear(hidden_dim, z_dim)
        self.fc22 = nn.Linear(hidden_dim, z_dim)
        self.softplus = nn.Softplus()

    def forward(self, x):
        x = x.reshape(-1, self.in_dim)  # the example's reshape: flattens any particle dims
        hidden = self.softplus(self.fc1(x))
        return self.fc21(hidden), torch.exp(self.fc22(hidden))


class VAE(nn.Module):
    """The shape of Pyro's examples/vae/vae.py (64 pixels instead of 784)."""

    def __init__(self, z_dim=4, hidden_dim=32):
        super().__init__()
        self.encoder = Encoder(z_dim, hidden_dim)
        self.decoder = Decoder(z_dim, hidden_dim)
        self.z_dim = z_dim

    def model(self, x):
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", x.shape[0]):
            z_loc = torch.zeros(x.shape[0], self.z_dim, dtype=x.dtype, device=x.device)
            z_scale = torch.ones(x.shape[0], self.z_dim, dtype=x.dtype, device=x.device)
            z = pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))
            loc_img = self.decoder(z)
            pyro.sample(
                "obs",
                dist.Bernoulli(loc_img, validate_args=False).to_event(1),
                obs=x.reshape(-1, 64),
            )

    def guide(self, x):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0]):
            z_loc, z_scale = self.encoder(x)
            pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))


def _broadcast_cat(*xs):
    """Concatenate on the last dim after broadcasting the rest (the example's ConcatModule
    with allow_broadcast=True)."""
    shape = torch.broadcast_shapes(*[x.shape[:-1] for x in xs])
    return torch.cat([x.expand(shape + x.shape[-1:]) for x in xs], -1)


class SSVAE(nn.Module):
    """The shape of Pyro's examples/vae/ss_vae_M2.py (M2 of Kingma et al. 2014), 64 pixels."""

    def __init__(self, output_size=10, input_size=64, z_dim=4, hidden=32):
        super().__init__()
        self.output_size, self.input_size, self.z_dim = output_size, input_size, z_dim
        self.encoder_y = nn.Sequential(
            nn.Linear(input_size, hidden),
            nn.Softplus(),
            nn.Linear(hidden, output_size),
            nn.Softmax(dim=-1),
        )
        self.encoder_z = nn.Sequential(
            nn.Linear(input_size + output_size, hidden), nn.Softplus(), nn.Linear(hidden, 2 * z_dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(z_dim + output_size, hidden),
            nn.Softplus(),
            nn.Linear(hidden, input_size),
            nn.Sigmoid(),
        )

    def model(self, xs, ys=None):
        pyro.module("ss_vae", self)
        batch_size = xs.size(0)
        options = dict(dtype=xs.dtype, device=xs.device)  # noqa: C408 (the example's line)
        with pyro.plate("data"):
            prior_loc = torch.zeros(batch_size, self.z_dim, **options)
            prior_scale = torch.ones(batch_size, self.z_dim, **options)
            zs = pyro.sample("z", dist.Normal(prior_loc, prior_scale).to_event(1))
            alpha_prior = torch.ones(batch_size, self.output_size, **options) / (
                1.0 * self.output_size
            )
            ys = pyro.sample("y", dist.OneHotCategorical(alpha_prior), obs=ys)
            loc = self.decoder(_broadcast_cat(zs, ys))
            pyro.sample("x", dist.Bernoulli(loc, validate_args=False).to_event(1), obs=xs)

    def guide(self, xs, ys=None):
        with pyro.plate("data"):
            if ys is None:
                alpha = self.encoder_y(xs)
                ys = pyro.sample("y", dist.OneHotCategorical(alpha))
            h = self.encoder_z(_broadcast_cat(xs, ys))
            loc, log_scale = h.chunk(2, -1)
            pyro.sample("z", dist.Normal(loc, log_scale.exp()).to_event(1))

    def decode_mean(self, z, y):
        return self.decoder(_broadcast_cat(z, y))


# ---------------------------------------------------------------------------
# pyro.markov: a linear-Gaussian state-space model and an enumerated discrete HMM
# ---------------------------------------------------------------------------


class StateSpace:
    """z_0 ~ N(0, q²), z_t = a z_{t-1} + q ε_t, x_t = z_t + r η_t, one sequence per row.

    z = B ε with B[t, s] = a^{t-s} q (s ≤ t), so x ~ N(0, P + r²I), P = BBᵀ (the value a
    Kalman filter computes), and p(z | x) = N(P(P + r²I)⁻¹x, P − P(P + r²I)⁻¹P), a
    Gauss-Markov chain: the guide that samples z_t | z_{t-1} from it is exact.
    """

    def __init__(self, a=0.8, q=0.6, r=0.5, t=4):
        self.a, self.q, self.r, self.t = a, q, r, t
        idx = torch.arange(t, dtype=torch.float64)
        lag = idx[:, None] - idx[None, :]
        b = torch.where(lag >= 0, a ** lag.clamp(min=0) * q, torch.zeros(()))
        self.p = b @ b.T
        self.cov_x = self.p + r**2 * torch.eye(t, dtype=torch.float64)

    def sample(self, n=N, seed=1):
        g = torch.Generator().manual_seed(seed)
        mvn = torch.distributions.MultivariateNormal(torch.zeros(self.t, dtype=torch.float64),
                                                     self.cov_x)
        chol = torch.linalg.cholesky(mvn.covariance_matrix)
        return (torch.randn(n, self.t, generator=g, dtype=torch.float64) @ chol.T).float()

    def exact(self, x):
        mvn = torch.distributions.MultivariateNormal(torch.zeros(self.t, dtype=torch.float64),
                                                     self.cov_x)
        return mvn.log_prob(x.double())

    def posterior(self, x):
        gain = self.p @ torch.linalg.inv(self.cov_x)
        return x.double() @ gain.T, self.p - gain @ self.p  # mean [N, T], cov [T, T]

    def model(self, x):
        with pyro.plate("data", x.shape[0]):
            z = torch.zeros(x.shape[0])
            for t in pyro.markov(range(x.shape[1])):
                z = pyro.sample(f"state_{t}", dist.Normal(self.a * z, self.q))
                pyro.sample(f"obs_{t}", dist.Normal(z, self.r), obs=x[:, t])

    def guide_exact(self, x):
        mean, cov = self.posterior(x)
        mean, cov = mean.float(), cov.float()
        with pyro.plate("data", x.shape[0]):
            prev = None
            for t in pyro.markov(range(x.shape[1])):
                if prev is None:
                    loc, var = mean[:, 0], cov[0, 0]
                else:
                    k = cov[t, t - 1] / cov[t - 1, t - 1]
                    loc = mean[:, t] + k * (prev - mean[:, t - 1])
                    var = cov[t, t] - k * cov[t, t - 1]
                prev = pyro.sample(f"state_{t}", dist.Normal(loc, var.sqrt()))

    WIDEN = 1.5

    def guide_mean_field(self, x):
        """Independent N(posterior mean, WIDEN² · posterior variance) per step."""
        mean, cov = self.posterior(x)
        scale = (self.WIDEN * cov.diagonal().sqrt()).float()
        with pyro.plate("data", x.shape[0]):
            for t in pyro.markov(range(x.shape[1])):
                pyro.sample(f"state_{t}", dist.Normal(mean[:, t].float(), scale[t]))

    def elbo_mean_field(self, x):
        """E_q[log p(x, z)] + H[q] in closed form for ``guide_mean_field``."""
        t = self.t
        mean, cov = self.posterior(x)
        var = (self.WIDEN**2) * cov.diagonal()
        joint = torch.zeros(2 * t, 2 * t, dtype=torch.float64)
        joint[:t, :t], joint[:t, t:], joint[t:, :t], joint[t:, t:] = self.p, self.p, self.p, self.cov_x
        prec = torch.linalg.inv(joint)
        v = torch.cat([mean, x.double()], 1)  # mean of (z, x) under q, [N, 2T]
        quad = ((v @ prec) * v).sum(1) + (prec.diagonal()[:t] * var).sum()
        log_p = -0.5 * (torch.logdet(2 * math.pi * joint) + quad)
        entropy = 0.5 * torch.log(2 * math.pi * math.e * var).sum()
        return log_p + entropy


class MarkovHMM:
    """A discrete HMM under ``pyro.markov``, states enumerated in the model (forward algorithm)."""

    def __init__(self, k=3, t=5, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.init = torch.softmax(torch.randn(k, generator=g), 0)
        self.trans = torch.softmax(torch.randn(k, k, generator=g) * 2, 1)
        self.locs = torch.tensor([-2.0, 0.0, 2.5])[:k]
        self.k, self.t, self.scale = k, t, 0.7

    def sample(self, n=N, seed=1):
        g = torch.Generator().manual_seed(seed)
        return torch.randn(n, self.t, generator=g) * 2

    def model(self, x):
        with pyro.plate("data", x.shape[0]):
            s = None
            for t in pyro.markov(range(x.shape[1])):
                probs = self.init if s is None else self.trans[s]
                s = pyro.sample(f"s_{t}", dist.Categorical(probs), infer={"enumerate": "parallel"})
                pyro.sample(f"x_{t}", dist.Normal(self.locs[s], self.scale), obs=x[:, t])

    def guide(self, x):
        pass

    def exact(self, x):
        emit = torch.distributions.Normal(self.locs.double(), self.scale).log_prob(
            x.double()[..., None])  # [N, T, K]
        alpha = self.init.double().log() + emit[:, 0]
        for t in range(1, x.shape[1]):
            alpha = torch.logsumexp(alpha[:, :, None] + self.trans.double().log(), 1) + emit[:, t]
        return torch.logsumexp(alpha, 1)


# ---------------------------------------------------------------------------
# constrained local latent: Gamma–Poisson (a negative-binomial marginal)
# ---------------------------------------------------------------------------


class GammaPoisson:
    """rate_i ~ Gamma(a, b), counts_ij ~ Poisson(rate_i), j = 1..D.

    log p(x) = a log b − log Γ(a) + log Γ(a + S) − (a + S) log(b + D) − Σ log x_j!,
    S = Σ_j x_j; the posterior is Gamma(a + S, b + D).
    """

    def __init__(self, a=2.0, b=1.5, d=4):
        self.a, self.b, self.d = a, b, d

    def sample(self, n=N, seed=1):
        g = torch.Generator().manual_seed(seed)
        rate = (0.8 * torch.randn(n, generator=g) + 0.3).exp()  # any rates: the answer is exact
        return torch.poisson(rate[:, None].expand(n, self.d), generator=g)

    def model(self, x):
        with pyro.plate("data", x.shape[0]):
            rate = pyro.sample("rate", dist.Gamma(self.a, self.b))
            pyro.sample("counts", dist.Poisson(rate.unsqueeze(-1)).to_event(1), obs=x)

    def exact(self, x):
        x = x.double()
        s, a, b = x.sum(1), self.a, self.b
        return (a * math.log(b) - math.lgamma(a) + torch.lgamma(a + s)
                - (a + s) * math.log(b + self.d) - torch.lgamma(x + 1).sum(1))

    def posterior_mean(self, x):
        return (self.a + x.sum(1)) / (self.b + self.d)


class BetaBernoulli:
    """p_i ~ Beta(a, b), x_ij ~ Bernoulli(p_i): log p(x) = log B(a + S, b + D − S) − log B(a, b)."""

    def __init__(self, a=1.5, b=2.0, d=6):
        self.a, self.b, self.d = a, b, d

    def sample(self, n=N, seed=1):
        g = torch.Generator().manual_seed(seed)
        p = torch.rand(n, 1, generator=g)
        return torch.bernoulli(p.expand(n, self.d), generator=g)

    def model(self, x):
        with pyro.plate("data", x.shape[0]):
            p = pyro.sample("p", dist.Beta(self.a, self.b))
            probs = p.unsqueeze(-1).expand(p.shape + (x.shape[1],))
            pyro.sample("x", dist.Bernoulli(probs).to_event(1), obs=x)

    def exact(self, x):
        s = x.double().sum(1)

        def log_beta(u, v):
            return torch.lgamma(u) + torch.lgamma(v) - torch.lgamma(u + v)

        a, b = torch.tensor(self.a, dtype=torch.float64), torch.tensor(self.b, dtype=torch.float64)
        return log_beta(a + s, b + self.d - s) - log_beta(a, b)

    def posterior_mean(self, x):
        return (self.a + x.sum(1)) / (self.a + self.b + self.d)

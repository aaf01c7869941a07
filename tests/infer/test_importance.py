"""Importance-sampled log p(x): closed forms, quadrature, IWAE bound properties, k̂, chunking.

Reference values are computed in the tests themselves from the model's own
weights (closed forms in float64, or trapezoid quadrature on a fine grid), so
no pinned numbers depend on a training run.
"""

from __future__ import annotations

import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch

import ppl_vae as pv
from ppl_vae.infer.importance import chunk_sizes


def test_exact_posterior_guide_gives_log_px_with_every_weight(ppca):
    x = ppca.sample(30, seed=1)
    res = pv.infer.log_likelihood(ppca.model, x, guide=ppca.guide, num_samples=16, seed=0)
    truth = ppca.log_marginal(x)
    assert torch.allclose(res.log_px.double(), truth, atol=1e-3)
    assert torch.allclose(res.ess, torch.full_like(res.ess, 16.0), atol=1e-3)
    frame = res.to_frame()
    assert list(frame["datapoint"]) == list(range(30)) and (frame["num_samples"] == 16).all()


def test_prior_proposal_converges_to_closed_form(ppca):
    x = ppca.sample(10, seed=2)
    res = pv.infer.log_likelihood(
        ppca.model, x, guide=ppca.guide, proposal="prior", num_samples=100_000, seed=0
    )
    # standard error of log p̂ by the delta method: sqrt((K/ESS - 1) / K)
    se = ((res.num_samples / res.ess - 1) / res.num_samples).sqrt().double()
    assert ((res.log_px.double() - ppca.log_marginal(x)).abs() <= 5 * se + 1e-3).all()


def test_linear_gaussian_lvm_exact_is_and_elbo(linear_lvm):
    model, data = linear_lvm
    x = torch.as_tensor(data.x_test, dtype=torch.float32)
    # the closed form from the trained weights, written independently in float64
    w = model.decoder.net[0].weight.detach().double()
    b = model.decoder.net[0].bias.detach().double()
    cov = w @ w.T + torch.diag(model.likelihood.scale.detach().double() ** 2)
    truth = torch.distributions.MultivariateNormal(b, cov).log_prob(x.double())
    exact = pv.infer.exact_log_likelihood(model, x)
    assert torch.allclose(exact.double(), truth, atol=1e-4)

    res = pv.infer.log_likelihood(model, x, num_samples=1000, seed=0)
    se = ((res.num_samples / res.ess - 1) / res.num_samples).sqrt().double()
    assert ((res.log_px.double() - truth).abs() <= 5 * se + 1e-3).all()

    bound = pv.infer.elbo(model, x, num_particles=200, seed=1)
    assert bound.mean() < res.log_px.mean() and bound.mean() < exact.mean()
    assert (bound.double() <= truth + 0.03).all()  # per datapoint, up to MC error of 200 draws


def test_one_dimensional_latent_against_quadrature():
    data = pv.data.load("linear_gaussian", data_dim=3, latent_dim=1, sigma=0.2, n=300, seed=3)
    x_train = torch.tanh(torch.as_tensor(data.x_train, dtype=torch.float32))  # a curved manifold
    model = pv.build(
        "lvm",
        data_dim=3,
        latent_dim=1,
        likelihood={"scale": 0.2},
        decoder={"hidden": [16]},
        guide={"kind": "amortized", "hidden": [16]},
    )
    pv.fit(model, x_train, steps=300, batch_size=100, lr=1e-2, seed=0, progress=False)
    x = x_train[:20]

    # ∫ p(x|z) p(z) dz by the trapezoid rule on [-8, 8] with 8001 nodes
    grid = torch.linspace(-8.0, 8.0, 8001, dtype=torch.float64)
    with torch.no_grad():
        px_z = model.decode(grid.float()[:, None]).log_prob(x[:, None, :]).double()  # [N, G]
    log_integrand = px_z + torch.distributions.Normal(0.0, 1.0).log_prob(grid)
    dz = float(grid[1] - grid[0])
    ends = torch.zeros_like(grid)
    ends[[0, -1]] = math.log(0.5)
    quad = torch.logsumexp(log_integrand + ends, dim=1) + math.log(dz)

    # The prior proposal covers every mode of the posterior: within 5 s.e. everywhere.
    res = pv.infer.log_likelihood(model, x, num_samples=50_000, proposal="prior", seed=0)
    se = ((res.num_samples / res.ess - 1) / res.num_samples).sqrt().double()
    assert ((res.log_px.double() - quad).abs() <= 5 * se + 2e-3).all()
    # The Gaussian guide misses the second posterior mode of some points on this curved
    # manifold (datapoint 3 loses ~0.3 nats, which no weight diagnostic can see: the
    # missing draws never happen). It is still a lower bound in expectation, and exact
    # to 5 s.e. on the unimodal points.
    res = pv.infer.log_likelihood(model, x, num_samples=2000, seed=0)
    se = ((res.num_samples / res.ess - 1) / res.num_samples).sqrt().double()
    assert (res.log_px.double() <= quad + 5 * se + 2e-3).all()
    close = (res.log_px.double() - quad).abs() <= 5 * se + 2e-3
    assert close.sum() >= 18, (res.log_px.double() - quad)


def test_iwae_bound_increases_with_k_and_k1_is_elbo(trained_vae, digits):
    x = digits.x_test[:100]
    means = [
        float(pv.infer.log_likelihood(trained_vae, x, num_samples=k, seed=k).log_px.mean())
        for k in (1, 5, 50, 500)
    ]
    assert all(a < b for a, b in itertools.pairwise(means)), means

    k1 = pv.infer.log_likelihood(trained_vae, x, num_samples=1, seed=0, diagnostics=False)
    ref = pv.infer.elbo(trained_vae, x, num_particles=500, seed=1)
    se = k1.log_px.std() / math.sqrt(len(k1.log_px))
    assert abs(float(k1.log_px.mean() - ref.mean())) < 4 * float(se)
    # the same seed draws the same single particle: identical, not just close
    same = pv.infer.elbo(trained_vae, x, num_particles=1, seed=0)
    assert torch.equal(same, k1.log_px)


@pytest.mark.parametrize("n", [1, 3, 8, 16, 50])
def test_chunk_sizes_align_the_random_stream(n):
    for k, c in [(1000, 100), (1000, 7), (17, 16), (5, 1000), (33, 1)]:
        sizes = chunk_sizes(k, c, n)
        assert sum(sizes) == k
        step = 16 // math.gcd(16, n)
        assert all((s * n) % 16 == 0 for s in sizes[:-1]) and all(s % step == 0 for s in sizes[:-1])
        assert sizes[-1] * n >= 16 or len(sizes) == 1


def test_chunked_equals_unchunked_with_the_same_seed(trained_vae, digits):
    x = digits.x_test[:13]  # an odd N, so alignment matters
    ref = pv.infer.log_likelihood(trained_vae, x, num_samples=300, chunk_size=300, seed=4)
    for chunk in (1, 7, 64, 299):
        res = pv.infer.log_likelihood(trained_vae, x, num_samples=300, chunk_size=chunk, seed=4)
        assert torch.equal(res.log_px, ref.log_px) and torch.equal(res.ess, ref.ess), chunk
    prior = [
        pv.infer.log_likelihood(
            trained_vae, x, num_samples=100, chunk_size=c, proposal="prior", seed=4
        ).log_px
        for c in (100, 9)
    ]
    assert torch.equal(*prior)


def test_chunked_equals_unchunked_for_a_full_covariance_raw_guide(ppca):
    x = ppca.sample(5, seed=3)

    def guide(x, y=None):
        return ppca.guide(x, y, inflate=1.5)

    ref = pv.infer.log_likelihood(ppca.model, x, guide=guide, num_samples=200, seed=1)
    res = pv.infer.log_likelihood(
        ppca.model, x, guide=guide, num_samples=200, chunk_size=11, seed=1
    )
    assert torch.equal(ref.log_px, res.log_px)


def test_khat_small_for_good_proposal_large_for_prior_in_many_dims(ppca_factory):
    make_ppca = ppca_factory
    good = make_ppca(6, 2, 0.5)
    x = good.sample(20, seed=5)

    def wide(x, y=None):
        return good.guide(x, y, inflate=1.2)

    res = pv.infer.log_likelihood(good.model, x, guide=wide, num_samples=1000, seed=0)
    assert (res.khat < 0.5).all()

    many = make_ppca(40, 20, 0.3, seed=1)
    x = many.sample(20, seed=6)
    poor = pv.infer.log_likelihood(
        many.model, x, guide=many.guide, proposal="prior", num_samples=1000, seed=0
    )
    assert (poor.khat > 0.7).float().mean() > 0.9
    assert poor.summary()["share_unreliable"] > 0.9


def test_gmm_enumerated_latent_is_summed_out_exactly():
    data = pv.data.load("gmm_synthetic", num_components=3, data_dim=2, n=300, seed=0)
    model = pv.build("gmm", data_dim=2, num_components=3)
    pv.fit(model, data.x_train, steps=50, batch_size=100, lr=1e-2, seed=0, progress=False)
    x = data.x_test
    exact = pv.infer.exact_log_likelihood(model, x)
    res = pv.infer.log_likelihood(model, x, num_samples=4, seed=0)
    assert torch.allclose(res.log_px, exact, atol=1e-4)
    assert torch.allclose(pv.infer.elbo(model, x, seed=0), exact, atol=1e-4)


def test_multi_site_raw_model_runs_and_keeps_per_datapoint_shape():
    """Two latent sites in the data plate: weights still [K, N] (no chunk equality claimed)."""

    def model(x, y=None):
        with pyro.plate("data", x.shape[0]):
            a = pyro.sample("a", dist.Normal(0.0, 1.0))
            z = pyro.sample("z", dist.Normal(a, 1.0))
            pyro.sample("x", dist.Normal(z, 0.5), obs=x[:, 0])

    def guide(x, y=None):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("a", dist.Normal(0.0, 1.0))
            pyro.sample("z", dist.Normal(0.0, 1.5))

    x = torch.randn(7, 1, generator=torch.Generator().manual_seed(0))
    res = pv.infer.log_likelihood(model, x, guide=guide, num_samples=4000, seed=0)
    truth = torch.distributions.Normal(0.0, math.sqrt(2.25)).log_prob(x[:, 0])
    se = ((res.num_samples / res.ess - 1) / res.num_samples).sqrt()
    assert res.log_px.shape == (7,)
    assert ((res.log_px - truth).abs() <= 5 * se + 1e-3).all()


def test_bad_arguments_name_the_argument(ppca):
    x = ppca.sample(3, seed=0)
    with pytest.raises(ValueError, match="num_samples"):
        pv.infer.log_likelihood(ppca.model, x, guide=ppca.guide, num_samples=0)
    with pytest.raises(ValueError, match="proposal"):
        pv.infer.log_likelihood(ppca.model, x, guide=ppca.guide, proposal="posterior")
    with pytest.raises(ValueError, match="guide"):
        pv.infer.log_likelihood(ppca.model, x)


def test_overflowing_data_are_refused_but_float64_computes_them():
    model = pv.build("vae", data_dim=4, latent_dim=2, likelihood={"kind": "normal"},
                     decoder={"hidden": [8]}, guide={"hidden": [8]})
    x = torch.zeros(3, 4)
    x[1] = 1e19
    with pytest.raises(ValueError, match=r"not finite \(-inf\) in 1 row\(s\) \(1; largest"):
        pv.infer.log_likelihood(model, x, num_samples=8, seed=0)
    est = pv.infer.log_likelihood(model.double(), x.double(), num_samples=8, seed=0)
    assert torch.isfinite(est.log_px).all() and est.log_px[1] < -1e30

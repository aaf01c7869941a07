"""Aggregated posterior, projection, attribute vectors, resynthesis, traversals, local guides.

Closed forms: for probabilistic PCA the posterior is Gaussian with mean = mode
= (WᵀW + σ²I)⁻¹Wᵀ(x − b) and precision Λ = I + WᵀW/σ²; the best mean-field
Gaussian under KL(q‖p) has that mean and variances 1/Λᵢᵢ (Bishop, PRML §10.1.2).
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

import ppl_vae as pv
from ppl_vae import _seed
from ppl_vae.infer import latent_space


def test_aggregate_posterior_is_the_equal_weight_mixture(trained_vae, digits):
    x_ref = digits.x_train[:25]
    q = pv.infer.aggregate_posterior(trained_vae, x_ref)
    assert isinstance(q, torch.distributions.MixtureSameFamily)
    z = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        enc = trained_vae.encode(x_ref)  # batch [I]
        per_component = enc.log_prob(z[:, None, :])  # [40, I]
    by_hand = torch.logsumexp(per_component, dim=1) - math.log(25)
    assert torch.allclose(q.log_prob(z), by_hand, atol=1e-5)


def test_aggregate_posterior_works_in_chunks_of_rows(trained_vae, digits, monkeypatch):
    # [rows, I, latent] is built a chunk of rows at a time (MNIST: 10,000 x 60,000 x 16
    # would be 38 GB); values are unchanged and a request within the budget is one piece
    q = pv.infer.aggregate_posterior(trained_vae, digits.x_train[:25])
    z = torch.randn(3, 40, 4, generator=torch.Generator().manual_seed(0))
    whole = q.log_prob(z)
    with _seed.seeded(5):
        one_piece = q.sample((7, 3))
    monkeypatch.setattr(latent_space, "MIXTURE_CHUNK_ELEMENTS", 25 * 4 * 6)  # 6 rows a chunk
    assert whole.shape == (3, 40) and torch.allclose(q.log_prob(z), whole, atol=1e-6)
    assert q.log_prob(z[0, 0]).shape == ()
    with _seed.seeded(5):
        chunked = q.sample((7, 3))
        many = q.sample((3000,))
    assert chunked.shape == one_piece.shape == (7, 3, 4) and not torch.equal(chunked, one_piece)
    assert ((many.mean(0) - q.mean).abs() < 4 * q.stddev / 3000**0.5).all()  # the mixture's
    monkeypatch.setattr(latent_space, "MIXTURE_CHUNK_ELEMENTS", 25 * 4 * 21)  # 21 rows: one
    with _seed.seeded(5):
        assert torch.equal(q.sample((7, 3)), one_piece)


def test_aggregate_posterior_of_a_raw_pair(ppca):
    x = ppca.sample(8, seed=0)
    q = pv.infer.aggregate_posterior(ppca.model, x, guide=ppca.guide)
    assert q.event_shape == (2,) and q.mixture_distribution.probs.allclose(torch.full((8,), 1 / 8))
    samples = pv.infer.sample_aggregate_posterior(ppca.model, x, 5, guide=ppca.guide, seed=3)
    assert samples.shape == (5, 6)  # decoded through the model's site "x" (no decode method)


def test_sample_aggregate_posterior_is_seeded(trained_vae, digits):
    x_ref = digits.x_train[:50]
    a = pv.infer.sample_aggregate_posterior(trained_vae, x_ref, 10, seed=1)
    b = pv.infer.sample_aggregate_posterior(trained_vae, x_ref, 10, seed=1)
    c = pv.infer.sample_aggregate_posterior(trained_vae, x_ref, 10, seed=2)
    noisy = pv.infer.sample_aggregate_posterior(trained_vae, x_ref, 10, noise=True, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert ((a > 0) & (a < 1)).all() and set(noisy.unique().tolist()) <= {0.0, 1.0}


def test_map_projection_is_the_closed_form_posterior_mode(ppca):
    x = ppca.sample(15, seed=1)

    def shifted(x, y=None):  # start the optimiser away from the answer
        return ppca.guide(x, y, shift=2.0)

    z = pv.infer.project(ppca.model, x, guide=shifted, method="map")
    assert torch.allclose(z.double(), ppca.posterior_mean(x), atol=1e-4)
    mean = pv.infer.project(ppca.model, x, guide=shifted, method="mean")
    assert torch.allclose(mean.double(), ppca.posterior_mean(x) + 2.0, atol=1e-4)


def test_map_projection_on_the_trained_linear_gaussian_lvm(linear_lvm):
    model, data = linear_lvm
    x = torch.as_tensor(data.x_test[:20], dtype=torch.float32)
    w = model.decoder.net[0].weight.detach().double()
    b = model.decoder.net[0].bias.detach().double()
    s2 = float(model.likelihood.scale[0]) ** 2
    mode = torch.linalg.solve(
        w.T @ w + s2 * torch.eye(2, dtype=torch.float64), w.T @ (x.double() - b).T
    ).T
    z = pv.infer.project(model, x, method="map")
    assert torch.allclose(z.double(), mode, atol=1e-3)


def test_attribute_vector_and_resynthesis(trained_vae, digits):
    x, y = torch.as_tensor(digits.x_test), torch.as_tensor(digits.y_test)
    x_a, x_b = x[y == 1][:20], x[y == 7][:20]
    v = pv.infer.attribute_vector(trained_vae, x_a, x_b)
    z_a, z_b = trained_vae.encode(x_a).mean, trained_vae.encode(x_b).mean
    assert torch.allclose(v, z_b.mean(0) - z_a.mean(0), atol=1e-6)

    out = pv.infer.resynthesize(trained_vae, x[:3], v, scales=(-1, 0, 0.5, 2))
    assert out.shape == (3, 4, 64)
    recon = trained_vae.decode(trained_vae.encode(x[:3]).mean).mean
    assert torch.allclose(out[:, 1], recon, atol=1e-6)
    moved = trained_vae.decode(trained_vae.encode(x[:3]).mean + 2 * v).mean
    assert torch.allclose(out[:, 3], moved, atol=1e-6)


def test_traverse_changes_one_coordinate_only():
    """An identity decoder (x = z + noise) shows the latent codes themselves."""

    def model(x, y=None):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(3), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z, 0.1).to_event(1), obs=x)

    z0 = torch.tensor([0.3, -1.2, 0.7])
    out = pv.infer.traverse(model, z0, 1, [-2.0, 0.0, 2.0], data_dim=3)
    assert torch.equal(out[:, 1], torch.tensor([-2.0, 0.0, 2.0]))
    assert torch.equal(out[:, [0, 2]], z0[[0, 2]].expand(3, 2))
    with pytest.raises(ValueError, match="dim=3"):
        pv.infer.traverse(model, z0, 3, [0.0], data_dim=3)


def test_traverse_uses_decode_when_present(trained_vae):
    z0 = torch.zeros(4)
    out = pv.infer.traverse(trained_vae, z0, 0, [-1.0, 1.0])
    codes = torch.tensor([[-1.0, 0, 0, 0], [1.0, 0, 0, 0]])
    assert torch.allclose(out, trained_vae.decode(codes).mean)


def test_local_guide_reaches_the_mean_field_optimum(ppca):
    x = ppca.sample(10, seed=2)
    guide = pv.infer.fit_local_guide(
        ppca.model, x, init="prior", steps=300, lr=0.05, num_particles=32, seed=0
    )
    assert torch.allclose(guide.loc.double(), ppca.posterior_mean(x), atol=0.05)
    precision = torch.linalg.inv(ppca.posterior_cov())
    assert torch.allclose(guide.scale.double(), precision.diag().rsqrt().expand(10, 2), rtol=0.1)
    first, again = (
        pv.infer.fit_local_guide(ppca.model, x, init="prior", steps=10, seed=5) for _ in range(2)
    )
    assert torch.equal(first.loc, again.loc) and torch.equal(first.raw, again.raw)


def test_local_guide_closes_the_amortization_gap(trained_vae, digits):
    x = digits.x_test[:30]
    before = [p.detach().clone() for p in trained_vae.parameters()]
    local = pv.infer.fit_local_guide(trained_vae, x, steps=200, lr=0.02, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(before, trained_vae.parameters()))
    enc = pv.infer.elbo(trained_vae, x, num_particles=200, seed=1)
    opt = pv.infer.elbo(trained_vae, x, guide=local, num_particles=200, seed=1)
    assert opt.mean() > enc.mean()  # Cremer et al. (2018): a non-negative amortization gap
    with pytest.raises(ValueError, match="fitted to 30"):
        pv.infer.elbo(trained_vae, digits.x_test[:5], guide=local)


def test_bad_arguments(trained_vae, digits):
    x = digits.x_test[:4]
    with pytest.raises(ValueError, match="method"):
        pv.infer.project(trained_vae, x, method="median")
    with pytest.raises(ValueError, match="vector has 3 entries"):
        pv.infer.resynthesize(trained_vae, x, torch.zeros(3))
    with pytest.raises(ValueError, match="init"):
        pv.infer.fit_local_guide(trained_vae, x, init="random")

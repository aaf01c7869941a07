"""Likelihood parts against torch's reference densities."""

import pyro.distributions as dist
import pytest
import torch

import ppl_vae as pv
from ppl_vae.parts.likelihoods import IndependentBernoulli


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_fused_bernoulli_log_density_equals_the_generic_one(scale):
    torch.manual_seed(0)
    logits = torch.randn(4, 6, 50, dtype=torch.float64) * scale  # extreme logits included
    x = (torch.rand(6, 50) > 0.5).double()
    fused = IndependentBernoulli(dist.Bernoulli(logits=logits), 1)
    generic = dist.Bernoulli(logits=logits).to_event(1)
    # softplus is linear above 20, dropping log1p(e^-20) < 2.1e-9 per pixel: <= 1.1e-7 over 50.
    assert torch.allclose(fused.log_prob(x), generic.log_prob(x), rtol=0, atol=2e-7)
    assert fused.expand([2, 4, 6]).log_prob(x).shape == (2, 4, 6)
    assert torch.equal(fused.mean, generic.mean)


def test_normal_likelihood_fixed_and_learned_scale():
    model = pv.build("lvm", data_dim=3, likelihood={"scale": 0.5})
    out = torch.zeros(2, 3)
    x = torch.ones(2, 3)
    want = torch.distributions.Normal(0.0, 0.5).log_prob(x).sum(-1)
    assert torch.allclose(model.likelihood.distribution(out).log_prob(x), want)
    assert not list(model.likelihood.parameters())
    learned = pv.build("lvm", data_dim=3, likelihood={"scale": "learned"})
    assert [p.shape for p in learned.likelihood.parameters()] == [torch.Size([3])]


def test_continuous_bernoulli_is_normalised_on_the_unit_interval():
    model = pv.build("vae", data_dim=1, latent_dim=1, likelihood={"kind": "continuous_bernoulli"})
    grid = torch.linspace(0, 1, 20001).unsqueeze(-1)
    for logit in (-3.0, 0.5, 4.0):
        density = model.likelihood.distribution(torch.full((1,), logit)).log_prob(grid).exp()
        assert abs(float(torch.trapezoid(density, grid[:, 0])) - 1.0) < 1e-3

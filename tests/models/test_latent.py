"""The composed latent variable model: program structure, sampling, closed form."""

import math

import pytest
import torch

import ppl_vae as pv


def test_sample_is_ancestral_and_reproducible():
    model = pv.build("vae", data_dim=12, latent_dim=3)
    means = model.sample(5, seed=3)
    assert torch.equal(means, model.sample(5, seed=3))
    # Decoder means of prior draws: the same z's decoded by hand.
    with pv._seed.seeded(3):
        z = model.prior.distribution().sample((5,))
    assert torch.allclose(means, torch.sigmoid(model.decoder(z)))
    noisy = model.sample(5, noise=True, seed=3)
    assert set(noisy.unique().tolist()) <= {0.0, 1.0}


def test_sample_does_not_disturb_the_callers_random_stream():
    torch.manual_seed(0)
    a = torch.rand(3)
    torch.manual_seed(0)
    pv.build("vae", data_dim=4, latent_dim=2).sample(10, seed=1)
    assert torch.equal(torch.rand(3), a)


def test_encode_and_decode_are_distributions():
    model = pv.build("vae", data_dim=6, latent_dim=2)
    q = model.encode(torch.zeros(4, 6))
    assert q.batch_shape == (4,) and q.event_shape == (2,)
    px = model.decode(torch.zeros(4, 2))
    assert px.batch_shape == (4,) and px.event_shape == (6,)


def test_local_guide_has_no_encoder():
    model = pv.build("lvm", data_dim=6)
    with pytest.raises(NotImplementedError, match="method='map'"):
        model.encode(torch.zeros(2, 6))


def test_full_covariance_guide_is_a_valid_gaussian():
    model = pv.build("vae", data_dim=6, latent_dim=3, guide={"covariance": "full"})
    q = model.encode(torch.rand(5, 6))
    cov = q.covariance_matrix
    assert torch.all(torch.linalg.eigvalsh(cov) > 0)
    assert torch.isfinite(pv.infer.elbo(model, (torch.rand(5, 6) > 0.5).float(), seed=0)).all()


def test_beta_scales_only_the_training_objective():
    """β-VAE: the trained loss is −E[log p(x|z)] + β·KL; the reported ELBO is β-free."""
    x = (torch.rand(20, 6) > 0.5).float()
    plain = pv.build("vae", data_dim=6, latent_dim=2)
    heavy = pv.build("vae", data_dim=6, latent_dim=2, beta=4.0)
    assert heavy.kl_weight == 4.0
    # Same weights (same seed) -> same ELBO whatever beta.
    assert torch.allclose(pv.infer.elbo(plain, x, seed=0), pv.infer.elbo(heavy, x, seed=0))
    loss = pv.training.bounds.elbo_loss(heavy, 1)
    with pv._seed.seeded(0):
        l_heavy = loss.differentiable_loss(heavy.model, heavy.guide, x)
    with pv._seed.seeded(0):
        l_plain = loss.differentiable_loss(plain.model, plain.guide, x)
    assert l_heavy > l_plain  # the KL term (> 0 in expectation) weighs four times


def test_linear_gaussian_marginal_is_the_ppca_closed_form():
    model = pv.build("lvm", data_dim=4, latent_dim=2, decoder={"hidden": []},
                     likelihood={"scale": 0.5})
    w = model.decoder.net[0].weight.detach()
    b = model.decoder.net[0].bias.detach()
    x = torch.randn(7, 4)
    cov = w @ w.T + 0.25 * torch.eye(4)
    diff = x - b
    want = -0.5 * (diff @ torch.linalg.inv(cov) * diff).sum(1) \
        - 0.5 * torch.logdet(cov) - 2 * math.log(2 * math.pi)
    got = pv.infer.exact_log_likelihood(model, x)
    assert torch.allclose(got, want, atol=1e-4)


def test_nonlinear_model_has_no_closed_form():
    with pytest.raises(NotImplementedError, match="linear decoder"):
        pv.infer.exact_log_likelihood(pv.build("lvm", data_dim=4), torch.zeros(2, 4))

"""Priors: the RD-VAE's class Gaussians and the learned Gaussian mixture, against hand formulas."""

import math

import numpy as np
import pytest
import torch
from pyro import poutine

import ppl_vae as pv
from ppl_vae.parts.base import Context
from ppl_vae.parts.priors import ClassConditional, GaussianMixturePrior


def _prior(**kw):
    torch.manual_seed(0)
    return ClassConditional(Context(data_dim=4, latent_dim=3, num_classes=4), **kw)


def _log_normal(z, mu, s):
    # log Norm_z[μ, s² I] written out: -L/2 log(2π s²) - ‖z − μ‖² / (2 s²)
    L = z.shape[-1]
    return -0.5 * L * math.log(2 * math.pi * s**2) - ((z - mu) ** 2).sum(-1) / (2 * s**2)


@pytest.mark.parametrize("scale", [1.0, 0.7])
def test_mixture_density_is_hand_written_logsumexp(scale):
    prior = _prior(scale=scale)
    z = torch.randn(5, 3) * 2
    mu = prior.class_means.detach()
    by_hand = torch.logsumexp(
        torch.stack([_log_normal(z, mu[c], scale) for c in range(4)], -1) - math.log(4), -1
    )
    got = prior.distribution(None).log_prob(z)
    torch.testing.assert_close(got, by_hand)


def test_conditional_density_and_class_posterior():
    prior = _prior(scale="learned")
    with torch.no_grad():
        prior.log_scale.copy_(torch.log(torch.tensor([0.5, 1.0, 2.0, 1.5])))
    z, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 3, 0, 1])
    mu, s = prior.class_means.detach(), prior.log_scale.exp().detach()
    expected = torch.stack([_log_normal(z[i], mu[y[i]], float(s[y[i]])) for i in range(6)])
    torch.testing.assert_close(prior.distribution(y).log_prob(z), expected)
    post = prior.class_log_posterior(z).exp()  # [6, 4]
    torch.testing.assert_close(post.sum(-1), torch.ones(6))
    joint = torch.stack([_log_normal(z, mu[c], float(s[c])) for c in range(4)], -1)
    torch.testing.assert_close(post, torch.softmax(joint, -1))


def test_means_start_spread_out_and_seeded():
    # With C <= latent_dim the initial means are orthogonal at radius `spread`.
    torch.manual_seed(0)
    prior = ClassConditional(Context(data_dim=4, latent_dim=5, num_classes=4), spread=3.0)
    norms = prior.class_means.norm(dim=1)
    torch.testing.assert_close(norms, torch.full((4,), 3.0))
    d2 = torch.cdist(prior.class_means, prior.class_means).pow(2)
    assert d2[~torch.eye(4, dtype=torch.bool)].min() > 17.9  # orthogonal: 2 · 3²
    a, b = pv.build("rdvae", seed=3), pv.build("rdvae", seed=3)
    torch.testing.assert_close(a.prior.class_means, b.prior.class_means)


def test_sample_sites_with_and_without_labels():
    prior = _prior()
    y = torch.tensor([1, 3])

    def sites(y):
        prior.label_site(y)
        return prior.sample_site(y)

    labelled = poutine.trace(sites).get_trace(y)
    assert labelled.nodes["y"]["is_observed"] and labelled.nodes["z"]["value"].shape == (2, 3)
    unlabelled = poutine.trace(sites).get_trace(None)
    assert "y" not in unlabelled.nodes
    assert "y" not in poutine.trace(prior.sample_site).get_trace(y).nodes  # z only


def test_needs_num_classes():
    with pytest.raises(ValueError, match="num_classes"):
        ClassConditional(Context(data_dim=4, latent_dim=3, num_classes=None))
    with pytest.raises(ValueError, match="num_classes"):
        pv.build("rdvae", num_classes=1)
    with pytest.raises(ValueError, match="prior.scale"):
        _prior(scale=-1.0)


# --- the learned Gaussian-mixture prior ---------------------------------------------------

def test_gaussian_mixture_density_is_hand_written_logsumexp():
    torch.manual_seed(0)
    prior = GaussianMixturePrior(Context(data_dim=4, latent_dim=3), components=4, spread=2.0)
    with torch.no_grad():
        prior.log_scale.copy_(torch.randn(4, 3) * 0.3)
        prior.logits.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    z = torch.randn(6, 3) * 2
    mu, s = prior.means.detach(), prior.log_scale.exp().detach()
    log_pi = prior.logits.detach() - torch.logsumexp(prior.logits.detach(), 0)
    per = torch.stack([  # log Norm_z[μ_k, diag s_k²] written out, dimension by dimension
        (-0.5 * torch.log(2 * math.pi * s[k] ** 2) - (z - mu[k]) ** 2 / (2 * s[k] ** 2)).sum(-1)
        for k in range(4)
    ], -1)
    torch.testing.assert_close(prior.distribution().log_prob(z), torch.logsumexp(log_pi + per, -1))
    assert {n for n, _ in prior.named_parameters()} == {"means", "log_scale", "logits"}


def test_gaussian_mixture_starts_spread_and_seeded():
    a = pv.build("vae", latent_dim=6, prior={"kind": "mixture", "components": 50, "spread": 2.0}, seed=3)
    b = pv.build("vae", latent_dim=6, prior={"kind": "mixture", "components": 50, "spread": 2.0}, seed=3)
    torch.testing.assert_close(a.prior.means, b.prior.means)
    assert 1.7 < float(a.prior.means.detach().std()) < 2.3  # 300 N(0, 2²) draws
    torch.testing.assert_close(a.prior.log_scale, torch.zeros(50, 6))
    assert a.sample(7, seed=0).shape == (7, 64)
    for bad, match in [({"components": 0}, "prior.components=0"), ({"spread": -1}, "prior.spread=-1")]:
        with pytest.raises(ValueError, match=match):
            pv.build("vae", prior={"kind": "mixture", **bad})


def test_one_component_at_the_origin_is_the_standard_normal_model():
    standard = pv.build("vae", data_dim=64, latent_dim=4)
    mixture = pv.build("vae", data_dim=64, latent_dim=4,
                       prior={"kind": "mixture", "components": 1, "spread": 0.0})
    for part in ("decoder", "q", "likelihood"):  # the same weights everywhere else
        getattr(mixture, part).load_state_dict(getattr(standard, part).state_dict())
    x = torch.as_tensor(pv.data.load("digits", binarize=True).x_test[:30])
    a = pv.infer.log_likelihood(standard, x, num_samples=100, seed=0).log_px
    b = pv.infer.log_likelihood(mixture, x, num_samples=100, seed=0).log_px
    torch.testing.assert_close(a, b, rtol=0, atol=1e-4)
    torch.testing.assert_close(pv.infer.elbo(standard, x, seed=1), pv.infer.elbo(mixture, x, seed=1),
                               rtol=0, atol=1e-4)
    # one component factorises (its Normal), so the dimension-wise terms accept it
    z = torch.randn(5, 4)
    torch.testing.assert_close(mixture.prior.factors(needed_by="t").log_prob(z),
                               standard.prior.factors(needed_by="t").log_prob(z))


def test_terms_that_need_a_factorised_prior_refuse_a_mixture():
    spec = {"prior": {"kind": "mixture", "components": 3}}
    with pytest.raises(ValueError, match=r"objective.dimwise_kl needs a prior p\(z\) that factorises "
                       r"over dimensions, but prior.kind='mixture' with components=3"):
        pv.build("vae", **spec, objective={"dimwise_kl": 1.0})
    model = pv.build("vae", data_dim=64, **spec)
    x = pv.data.load("digits", binarize=True).x_test[:20]
    with pytest.raises(ValueError, match="elbo_decomposition needs a prior"):
        pv.metrics.elbo_decomposition(model, x)
    # TC and MI are properties of q(z) alone: they work with any prior
    tc = pv.build("vae", data_dim=64, **spec, objective={"tc": 2.0}, decoder={"hidden": [16]})
    result = pv.fit(tc, x, steps=5, batch_size=10, seed=0, progress=False)
    assert np.isfinite(result.history["loss"]).all()

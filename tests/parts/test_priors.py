"""The class-conditional prior of the RD-VAE: conditional and class-marginal densities."""

import math

import pytest
import torch
from pyro import poutine

import ppl_vae as pv
from ppl_vae.parts.base import Context
from ppl_vae.parts.priors import ClassConditional


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

"""The Gaussian mixture: exact marginal, enumeration, and SVI reaching EM's fit."""

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture

import ppl_vae as pv


def _hand_log_likelihood(x, weights, loc, scale):
    # log Σₙ λₙ Πd N(x_d; μ_nd, σ_nd²), written out with the normal density formula.
    x = x[:, None, :]
    log_norm = -0.5 * ((x - loc) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi)
    joint = log_norm.sum(-1) + np.log(weights)
    m = joint.max(1, keepdims=True)
    return (m + np.log(np.exp(joint - m).sum(1, keepdims=True)))[:, 0]


def test_exact_log_likelihood_matches_hand_written_logsumexp():
    model = pv.build("gmm", data_dim=3, num_components=4)
    with torch.no_grad():
        model.logits.copy_(torch.tensor([0.1, -0.5, 1.0, 0.0]))
        model.log_scale.uniform_(-1, 0.5)
    x = torch.randn(50, 3) * 2
    got = pv.infer.exact_log_likelihood(model, x).double().numpy()
    want = _hand_log_likelihood(
        x.double().numpy(), model.weights.double().detach().numpy(),
        model.loc.double().detach().numpy(), model.log_scale.exp().double().detach().numpy(),
    )
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_enumerated_elbo_is_the_exact_log_likelihood():
    model = pv.build("gmm", data_dim=2, num_components=3)
    x = torch.randn(40, 2)
    exact = pv.infer.exact_log_likelihood(model, x)
    assert torch.allclose(pv.infer.elbo(model, x, seed=0), exact, atol=1e-5)
    assert torch.allclose(pv.infer.log_likelihood(model, x, num_samples=3, seed=0).log_px, exact, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_svi_reaches_em_on_data_from_a_known_mixture(seed):
    data = pv.data.load("gmm_synthetic", num_components=3, data_dim=2, n=2000, seed=seed)
    x = data.x_train
    model = pv.build("gmm", data_dim=2, num_components=3, seed=seed)
    pv.fit(model, x, steps=600, batch_size=len(x), lr=0.05, seed=seed, progress=False)
    ours = float(pv.infer.exact_log_likelihood(model, x).mean())
    em = GaussianMixture(3, covariance_type="diag", random_state=seed, n_init=3).fit(x)
    assert abs(ours - em.score(x)) < 0.02, (ours, em.score(x))


def test_sampling_is_reproducible_and_follows_the_weights():
    model = pv.build("gmm", data_dim=2, num_components=2)
    with torch.no_grad():
        model.logits.copy_(torch.tensor([0.0, np.log(3.0)]))
        model.loc.copy_(torch.tensor([[-10.0, 0.0], [10.0, 0.0]]))
    a = model.sample(4000, seed=1)
    assert torch.equal(a, model.sample(4000, seed=1))
    assert abs(float((a[:, 0] > 0).float().mean()) - 0.75) < 0.03
    noisy = model.sample(4000, noise=True, seed=2)
    assert noisy.std(0)[1] > 0.5  # unit-scale components add noise


def test_too_few_points_for_the_components():
    model = pv.build("gmm", data_dim=2, num_components=5)
    with pytest.raises(ValueError, match="num_components=5"):
        pv.fit(model, np.zeros((3, 2), dtype="float32"), steps=1, progress=False)

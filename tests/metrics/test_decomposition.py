"""elbo_decomposition: closed-form anchors on hand-built posteriors, and the sum rule on a trained VAE.

Hand-built anchors (q(z) is the exact N-component mixture, so these hold up to the
overlap of components, ~exp(-separation²/8σ²), negligible here):
- identical posteriors: MI = 0 and TC = 0 exactly; dimension-wise KL = KL(q ‖ p);
- N well-separated posteriors on the diagonal z₁ = z₂: MI = log N, TC = log N;
- K × K well-separated posteriors on a grid: MI = log K², TC = 0.
"""

import math

import pyro.distributions as dist
import pytest
import torch

import ppl_vae as pv
from ppl_vae.math import kl_normal_standard
from ppl_vae.metrics.decomposition import _decompose
from ppl_vae.parts.base import Context, PenaltyInputs
from ppl_vae.parts.objective import Objective
from ppl_vae.parts.priors import StandardNormal


class FixedPosteriors:
    """A duck-typed model whose q(z|x_n) = N(loc_n, scale_n²) is given, and p(x|z) = N(z, 1)."""

    def __init__(self, loc, scale):
        self.loc, self.scale = loc, scale
        self.prior = StandardNormal(Context(loc.shape[1], loc.shape[1]))

    def encode(self, x):
        rows = x[:, 0].long()  # x carries the datapoint index
        return dist.Normal(self.loc[rows], self.scale[rows]).to_event(1)

    def decode(self, z):
        return dist.Normal(z, torch.ones_like(z)).to_event(1)


def _run(loc, scale, **kw):
    x = torch.arange(loc.shape[0], dtype=torch.float32)[:, None].repeat(1, loc.shape[1])
    return pv.metrics.elbo_decomposition(FixedPosteriors(loc, scale), x, seed=0, **kw)


def test_identical_posteriors_have_no_mi_and_no_tc():
    loc = torch.tensor([0.5, -1.0]).repeat(40, 1)
    scale = torch.tensor([0.6, 1.5]).repeat(40, 1)
    out = _run(loc, scale, num_samples=200, batch_size=1000)
    assert out["mutual_information"] == pytest.approx(0.0, abs=1e-5)
    assert out["total_correlation"] == pytest.approx(0.0, abs=1e-5)
    kl = float(kl_normal_standard(loc[0], scale[0]))
    assert out["kl"] == pytest.approx(kl, rel=1e-6)
    assert out["dimwise_kl"] == pytest.approx(kl, abs=0.05)  # Monte Carlo, 8000 draws


def test_separated_posteriors_on_the_diagonal_have_tc_log_n():
    n = 12
    a = 10.0 * torch.arange(n, dtype=torch.float32)
    out = _run(torch.stack([a, a], 1), torch.full((n, 2), 0.1), num_samples=3)
    assert out["mutual_information"] == pytest.approx(math.log(n), abs=1e-4)
    assert out["total_correlation"] == pytest.approx(math.log(n), abs=1e-4)


def test_separated_posteriors_on_a_grid_have_no_tc():
    k = 5
    a, b = torch.meshgrid(10.0 * torch.arange(k), 10.0 * torch.arange(k), indexing="ij")
    loc = torch.stack([a.reshape(-1), b.reshape(-1)], 1)
    out = _run(loc, torch.full((k * k, 2), 0.1), num_samples=3, batch_size=7)
    assert out["mutual_information"] == pytest.approx(math.log(k * k), abs=1e-4)
    assert out["total_correlation"] == pytest.approx(0.0, abs=1e-4)


def test_batch_size_does_not_change_the_result():
    g = torch.Generator().manual_seed(0)
    loc, scale = torch.randn(30, 3, generator=g), 0.2 + torch.rand(30, 3, generator=g)
    assert _run(loc, scale, batch_size=4) == pytest.approx(_run(loc, scale, batch_size=100))


def test_whole_dataset_terms_equal_the_mss_penalty_at_batch_equal_n():
    # MSS with B = N is the exact mixture: the training penalty and the metric agree.
    g = torch.Generator().manual_seed(1)
    n, latent = 25, 3
    loc, scale = torch.randn(n, latent, generator=g), 0.3 + torch.rand(n, latent, generator=g)
    z = loc + scale * torch.randn(n, latent, generator=g)
    terms = _decompose(z[None], loc, scale, torch.distributions.Normal(0.0, 1.0).log_prob, chunk=7)
    q = dist.Normal(loc, scale).to_event(1)
    ctx = Context(latent, latent)
    inputs = PenaltyInputs(x=z, y=None, z=z, posterior=q, prior=StandardNormal(ctx), num_data=n)
    objective = Objective({"kl": 1.0, "mi": 1.0, "tc": 1.0, "dimwise_kl": 1.0, "estimator": "mss"}, [])
    training = objective.decomposition(inputs)
    for metric, term in (("total_correlation", "tc"), ("mutual_information", "mi"), ("dimwise_kl", "dimwise_kl")):
        torch.testing.assert_close(terms[metric], training[term])


@pytest.fixture(scope="module")
def trained_vae():
    data = pv.data.load("digits", binarize=True)
    model = pv.build("vae", latent_dim=4, decoder={"hidden": [64]}, guide={"hidden": [64]})
    pv.fit(model, data.x_train, steps=300, batch_size=128, lr=3e-3, seed=0, progress=False)
    return model, torch.as_tensor(data.x_test)


def test_terms_add_up_to_the_average_kl_on_a_trained_vae(trained_vae):
    model, x = trained_vae
    out = pv.metrics.elbo_decomposition(model, x, num_samples=20, seed=0)
    total = out["mutual_information"] + out["total_correlation"] + out["dimwise_kl"]
    assert out["kl"] > 1.0  # the model uses its latents
    assert total == pytest.approx(out["kl"], rel=0.02)
    assert min(out["mutual_information"], out["total_correlation"], out["dimwise_kl"]) > -0.05
    assert out["mutual_information"] <= math.log(len(x)) + 1e-4  # I(x; z) ≤ H(index)
    elbo = pv.infer.elbo(model, x, num_particles=50, seed=0).mean()
    assert out["elbo"] == pytest.approx(float(elbo), abs=0.1)
    assert out["elbo"] == pytest.approx(out["reconstruction"] - out["kl"])


class FullCovariance(FixedPosteriors):
    def encode(self, x):
        return dist.MultivariateNormal(self.loc, scale_tril=torch.diag_embed(self.scale))


def test_errors_name_the_problem():
    full = FullCovariance(torch.zeros(3, 2), torch.ones(3, 2))
    with pytest.raises(ValueError, match="got MultivariateNormal.*covariance = 'diagonal' and no flow"):
        pv.metrics.elbo_decomposition(full, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="num_samples=0"):
        pv.metrics.elbo_decomposition(pv.build("vae"), torch.zeros(3, 64), num_samples=0)


def test_decomposition_in_float64_and_device_option():
    import ppl_vae as pv

    model = pv.build("vae", data_dim=6, latent_dim=2, decoder={"hidden": [8]},
                     guide={"hidden": [8]}).double()
    x = (torch.rand(30, 6) > 0.5).float()
    out = pv.metrics.elbo_decomposition(model, x, seed=0, device="cpu")
    parts = out["mutual_information"] + out["total_correlation"] + out["dimwise_kl"]
    assert abs(parts - out["kl"]) < 0.5 and all(map(math.isfinite, out.values()))

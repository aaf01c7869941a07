"""Priors of graph latents against their closed forms; the mixture and VampPrior identities."""

import math

import pyro.distributions as dist
import pytest
import torch

import ppl_vae as pv
from ppl_vae.math import log_mean_exp


def one_latent(prior, data_dim=6, **guide):
    return pv.build({
        "family": "vae", "data_dim": data_dim, "latent": {"z": {"dim": 3, "prior": prior}},
        "decoder": {"kind": "mlp", "hidden": [8], "parents": ["z"]},
        "guide": {"kind": "amortized", "hidden": [8], **guide},
    })


def two_layer(prior):
    return pv.build({
        "family": "vae", "data_dim": 6,
        "latent": {"z2": {"dim": 2}, "z1": {"dim": 3, "parents": ["z2"], "prior": prior}},
        "decoder": {"kind": "mlp", "hidden": [8], "parents": ["z1"]},
    })


@pytest.mark.parametrize("scale", [0.7, "learned", "net"])
def test_conditional_normal_is_the_mlp_mean_and_its_scale(scale):
    prior = two_layer({"kind": "normal", "hidden": [5], "activation": "tanh", "scale": scale}).priors["z1"]
    with torch.no_grad():
        if scale == "learned":
            prior.log_scale.copy_(torch.tensor([0.1, -0.4, 0.3]))
    pa, z = torch.randn(4, 2), torch.randn(4, 3)
    h = torch.tanh(prior.net[0](pa))
    out = prior.net[2](h)
    if scale == "net":
        loc, s = out[:, :3], torch.nn.functional.softplus(out[:, 3:]) + pv.math.MIN_SCALE
    else:
        loc = out
        s = torch.full((3,), 0.7) if scale == 0.7 else torch.tensor([0.1, -0.4, 0.3]).exp()
    expected = dist.Normal(loc, s).log_prob(z).sum(-1)
    assert torch.allclose(prior.distribution(pa).log_prob(z), expected, atol=1e-6)


def test_linear_conditional_normal_is_one_affine_map():
    prior = two_layer({"kind": "normal", "hidden": []}).priors["z1"]
    assert len(prior.net) == 1
    w, b, s = prior.gaussian()
    pa = torch.randn(4, 2)
    assert torch.allclose(prior.distribution(pa).mean, pa @ w.T + b)
    assert torch.allclose(prior.distribution(pa).stddev, s.expand(4, 3))


def test_mixture_log_density_is_the_weighted_sum_of_its_components():
    prior = one_latent({"kind": "mixture", "components": 4, "weights": "learned"}).priors["z"]
    with torch.no_grad():
        prior.logits.copy_(torch.tensor([0.3, -1.0, 0.0, 2.0]))
        prior.log_scales.uniform_(-0.5, 0.5)
    z = torch.randn(7, 3)
    log_pi = torch.log_softmax(prior.logits, 0)
    comps = [dist.Normal(prior.means[k], prior.log_scales[k].exp()).log_prob(z).sum(-1) + log_pi[k]
             for k in range(4)]
    assert torch.allclose(prior.distribution().log_prob(z), torch.stack(comps).logsumexp(0), atol=1e-5)


def test_one_component_mixture_at_the_origin_reproduces_the_standard_normal_model():
    standard = one_latent({"kind": "standard_normal"})
    mixture = one_latent({"kind": "mixture", "components": 1, "spread": 0.0, "scale": 1.0})
    shared = {k: v for k, v in standard.state_dict().items() if not k.startswith("priors.")}
    missing, unexpected = mixture.load_state_dict(shared, strict=False)
    assert not unexpected and all(k.startswith("priors.") for k in missing)
    x = (torch.rand(10, 6) < 0.5).float()
    a = pv.infer.log_likelihood(standard, x, num_samples=64, seed=0).log_px
    b = pv.infer.log_likelihood(mixture, x, num_samples=64, seed=0).log_px
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(pv.infer.elbo(standard, x, num_particles=8, seed=1),
                          pv.infer.elbo(mixture, x, num_particles=8, seed=1), atol=1e-5)


def test_vamp_prior_is_the_mean_of_the_pseudo_inputs_posteriors():
    model = one_latent({"kind": "vamp", "components": 5})
    prior = model.priors["z"]
    assert prior.pseudo_inputs.shape == (5, 6)
    z = torch.randn(9, 3)
    per_input = torch.stack([model.encoders["z"].distribution(prior.pseudo_inputs[k]).log_prob(z)
                             for k in range(5)])  # [K, 9]: q(z | u_k), one pseudo-input at a time
    expected = log_mean_exp(per_input, dim=0)
    assert torch.allclose(prior.distribution().log_prob(z), expected, atol=1e-5)
    # the pseudo-inputs and the encoder learn through log p(z)
    prior.distribution().log_prob(z).sum().backward()
    assert prior.pseudo_inputs.grad.abs().sum() > 0
    assert model.encoders["z"].net[0].weight.grad.abs().sum() > 0
    assert math.isfinite(float(pv.infer.elbo(model, (torch.rand(4, 6) < 0.5).float(), seed=0).sum()))


def test_vamp_refuses_an_encoder_that_reads_more_than_x():
    with pytest.raises(ValueError, match=r"latent.z2.prior.kind='vamp' .* reads \['x', 'z1'\]"):
        pv.build({"family": "vae", "data_dim": 6,
                  "latent": {"z2": {"dim": 2, "prior": {"kind": "vamp", "components": 3}},
                             "z1": {"dim": 3, "parents": ["z2"]}},
                  "decoder": {"kind": "mlp", "parents": ["z1"]}})
    with pytest.raises(ValueError, match="the encoder of 'z' has a flow"):
        one_latent({"kind": "vamp", "components": 3},
                   flow={"kind": "iaf", "layers": 1, "hidden": [4]}).priors["z"].distribution()


def test_root_only_priors_refuse_parents():
    with pytest.raises(ValueError, match=r"latent.z1.prior.kind='mixture' takes no parents"):
        two_layer({"kind": "mixture", "components": 2})


def class_model(scale):
    return pv.build({
        "family": "vae", "data_dim": 3,
        "latent": {"y": {"kind": "categorical", "num_classes": 3},
                   "z": {"dim": 2, "parents": ["y"],
                         "prior": {"kind": "class_conditional", "scale": scale}}},
        "decoder": {"kind": "mlp", "hidden": [], "parents": ["z"]},
        "likelihood": {"kind": "normal", "scale": 0.4},
    }).double()


def test_class_conditional_latent_is_one_gaussian_per_class():
    model = class_model("learned")
    prior = model.priors["z"]
    with torch.no_grad():
        prior.log_scale.copy_(torch.tensor([0.2, -0.5, 0.0], dtype=torch.float64))
    y = torch.tensor([2, 0, 1])
    z = torch.randn(3, 2, dtype=torch.float64)
    onehot = torch.nn.functional.one_hot(y, 3).double()
    expected = dist.Normal(prior.means[y], prior.log_scale[y].exp().unsqueeze(-1)).log_prob(z).sum(-1)
    assert torch.allclose(prior.distribution(onehot).log_prob(z), expected)
    with pytest.raises(NotImplementedError, match="learned per class"):
        pv.infer.exact_log_likelihood(model, torch.zeros(2, 3))


def test_class_conditional_graph_has_the_class_mixture_as_its_marginal():
    model = class_model(0.8)
    means, w, b = model.priors["z"].means, model.decoder.net[0].weight, model.decoder.net[0].bias
    cov = 0.64 * w @ w.T + 0.16 * torch.eye(3, dtype=torch.float64)
    px = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=torch.zeros(3, dtype=torch.float64)),
        torch.distributions.MultivariateNormal(means @ w.T + b, cov))
    x = model.sample(6, noise=True, seed=0)
    assert torch.allclose(pv.infer.exact_log_likelihood(model, x), px.log_prob(x), atol=1e-9)


def test_class_conditional_needs_one_categorical_parent():
    with pytest.raises(ValueError, match="needs exactly one parent, a categorical input or latent"):
        two_layer({"kind": "class_conditional"})


def _flow_prior_model(base, **flow):
    latent = {"z": {"dim": 2, "prior": {**base, "flow": {"kind": "iaf", "hidden": [6], **flow}}}}
    return pv.build({"family": "vae", "data_dim": 6, "latent": latent,
                     "decoder": {"kind": "mlp", "hidden": [8], "parents": ["z"]},
                     "guide": {"kind": "amortized", "hidden": [8]}})


@pytest.mark.parametrize("base", [{"kind": "standard_normal"},
                                  {"kind": "mixture", "components": 3, "spread": 2.0}])
def test_flow_prior_density_integrates_to_one_and_matches_its_samples(base):
    """Quadrature on a 2-d grid: ∫ p(z) dz = 1 and E[z] by quadrature equals the mean of
    ancestral draws (the density and the sampling directions are one distribution)."""
    torch.manual_seed(0)
    prior = _flow_prior_model(base, layers=2).priors["z"]
    with torch.no_grad():  # move the layers well away from their initial values
        for p in prior.flow.parameters():
            p.add_(0.1 * torch.randn_like(p))
        grid = torch.linspace(-14, 14, 561, dtype=torch.float64)
        h = float(grid[1] - grid[0])
        z = torch.cartesian_prod(grid, grid).float()
        density = prior.distribution().log_prob(z).double().exp()
        mass = float(density.sum() * h * h)
        mean = (density[:, None] * z.double()).sum(0) * h * h
        draws = prior.distribution().sample((20000,))
    assert mass == pytest.approx(1.0, abs=2e-3)
    se = draws.std(0) / math.sqrt(len(draws))
    assert ((draws.mean(0).double() - mean).abs() < 5 * se.double()).all()


def test_flow_prior_is_the_change_of_variables_of_its_base():
    prior = _flow_prior_model({"kind": "standard_normal"}).priors["z"]
    z = torch.randn(5, 2)
    d = prior.distribution()
    u, log_det = z, torch.zeros(5)
    for t in reversed(d.transforms):  # z -> u, one density-direction layer at a time
        prev = t.inv(u)
        log_det = log_det + t.log_abs_det_jacobian(prev, u)
        u = prev
    expected = dist.Normal(0.0, 1.0).log_prob(u).sum(-1) - log_det
    assert torch.allclose(d.log_prob(z), expected, atol=1e-5)


def test_flow_prior_trains_and_is_refused_where_its_inverse_is_missing():
    spec = {"kind": "standard_normal", "flow": {"kind": "iaf"}}
    model = _flow_prior_model({"kind": "mixture", "components": 2})
    x = torch.rand(20, 6).round()
    before = [p.clone() for p in model.priors["z"].flow.parameters()]
    pv.fit(model, x, steps=5, progress=False)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.priors["z"].flow.parameters()))
    assert torch.isfinite(pv.infer.log_likelihood(model, x, num_samples=20).log_px).all()
    one_latent(spec)
    assert spec == {"kind": "standard_normal", "flow": {"kind": "iaf"}}  # the user's table kept
    with pytest.raises(ValueError, match=r"latent.z.prior.flow.kind='planar'.*use kind = \"iaf\""):
        one_latent({"kind": "standard_normal", "flow": {"kind": "planar"}})
    with pytest.raises(ValueError, match="latent.z.prior.flow has unknown key"):
        one_latent({"kind": "standard_normal", "flow": {"kind": "iaf", "depth": 3}})


def test_a_linear_graph_with_a_flow_prior_has_no_closed_form():
    model = pv.build({"family": "vae", "data_dim": 3, "likelihood": {"kind": "normal"},
                      "latent": {"z": {"dim": 2, "prior": {"kind": "standard_normal",
                                                           "flow": {"kind": "iaf"}}}},
                      "decoder": {"kind": "mlp", "hidden": [], "parents": ["z"]}})
    with pytest.raises(NotImplementedError, match=r"standard_normal\+flow.*not linear-Gaussian"):
        pv.infer.exact_log_likelihood(model, torch.randn(4, 3))

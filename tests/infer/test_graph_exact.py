"""Closed-form log p(x) of linear-Gaussian model graphs, checked independently; IS and ELBO against it.

The references read the model's conditionals only through its own distributions
(means at basis parent values, standard deviations) and build the Gaussian
marginal by other algebra than the package (stepwise marginalisation, the joint
covariance (I − L)⁻¹ S² (I − L)⁻ᵀ, or quadrature), all in float64.
"""

import math

import pytest
import torch

import ppl_vae as pv

LINEAR = {"kind": "normal", "hidden": []}


def graph(latent, decoder_parents, data_dim=3, scale=0.5, **extra):
    spec = {"family": "vae", "data_dim": data_dim, "latent": latent,
            "decoder": {"kind": "mlp", "hidden": [], "parents": decoder_parents},
            "likelihood": {"kind": "normal", "scale": scale},
            "guide": {"kind": "amortized", "hidden": [16]}, **extra}
    model = pv.build(spec).double()
    with torch.no_grad():  # learned prior scales away from 1, so they matter
        for prior in model.priors.values():
            if isinstance(getattr(prior, "log_scale", None), torch.nn.Parameter):
                prior.log_scale.uniform_(-0.7, 0.3)
    return model


def affine(fn, in_dim):
    """(W, b, s) of a Gaussian conditional ``fn(parents)`` read from its means and stddev."""
    zero = torch.zeros(1, in_dim, dtype=torch.float64)
    base = fn(zero).mean[0]
    cols = [fn(torch.eye(in_dim, dtype=torch.float64)[j : j + 1]).mean[0] - base
            for j in range(in_dim)]
    return torch.stack(cols, 1), base, fn(zero).stddev[0]


def decoder_affine(model, in_dim):
    return affine(lambda v: model.decode(v), in_dim)


def test_two_layer_marginal_by_stepwise_marginalisation():
    model = graph({"z2": {"dim": 2}, "z1": {"dim": 3, "parents": ["z2"], "prior": LINEAR}}, ["z1"])
    w1, b1, s1 = affine(model.priors["z1"].distribution, 2)
    wx, bx, sx = decoder_affine(model, 3)
    cov_z1 = w1 @ w1.T + torch.diag(s1**2)  # z2 ~ N(0, I)
    px = torch.distributions.MultivariateNormal(wx @ b1 + bx, wx @ cov_z1 @ wx.T + torch.diag(sx**2))
    x = model.sample(6, noise=True, seed=0)
    assert torch.allclose(pv.infer.exact_log_likelihood(model, x), px.log_prob(x), atol=1e-9)


def joint_reference(model, blocks, x):
    """log p(x) from the joint of (latents…, x) = (I − L)⁻¹ (c + S ε).

    ``blocks``: [(name, dim, parents, conditional)] in ancestral order, x last.
    """
    offsets, total = {}, 0
    for name, dim, _, _ in blocks:
        offsets[name] = (total, total + dim)
        total += dim
    L = torch.zeros(total, total, dtype=torch.float64)
    c = torch.zeros(total, dtype=torch.float64)
    s = torch.zeros(total, dtype=torch.float64)
    for name, dim, parents, fn in blocks:
        lo, hi = offsets[name]
        width = sum(offsets[p][1] - offsets[p][0] for p in parents)
        if parents:
            w, b, sd = affine(fn, width)
            col = 0
            for p in parents:
                plo, phi = offsets[p]
                L[lo:hi, plo:phi] = w[:, col : col + phi - plo]
                col += phi - plo
        else:
            b, sd = fn(None).mean, fn(None).stddev
        c[lo:hi], s[lo:hi] = b, sd
    m = torch.linalg.inv(torch.eye(total, dtype=torch.float64) - L)
    mean, cov = m @ c, m @ torch.diag(s**2) @ m.T
    lo, hi = offsets["x"]
    px = torch.distributions.MultivariateNormal(mean[lo:hi], cov[lo:hi, lo:hi])
    return px.log_prob(x)


def test_three_layer_graph_with_a_skip_edge_matches_the_joint_covariance():
    model = graph({
        "z3": {"dim": 2, "prior": {"kind": "normal", "hidden": []}},  # a learned root mean
        "z2": {"dim": 2, "parents": ["z3"], "prior": {**LINEAR, "scale": 0.7}},
        "z1": {"dim": 3, "parents": ["z2", "z3"], "prior": LINEAR},
    }, ["z1", "z3"], data_dim=4)
    with torch.no_grad():
        model.priors["z3"].loc.normal_()
    dec = lambda v: model.decode({"z1": v[..., :3], "z3": v[..., 3:]})
    blocks = [
        ("z3", 2, [], model.priors["z3"].distribution),
        ("z2", 2, ["z3"], model.priors["z2"].distribution),
        ("z1", 3, ["z2", "z3"], model.priors["z1"].distribution),
        ("x", 4, ["z1", "z3"], dec),
    ]
    x = model.sample(5, noise=True, seed=1) + 0.3
    expected = joint_reference(model, blocks, x)
    assert torch.allclose(pv.infer.exact_log_likelihood(model, x), expected, atol=1e-9)


def test_tiny_chain_by_quadrature():
    """z2 → z1 → x, all one-dimensional: ∫∫ p(x|z1) p(z1|z2) p(z2) on a grid."""
    model = graph({"z2": {"dim": 1}, "z1": {"dim": 1, "parents": ["z2"], "prior": LINEAR}},
                  ["z1"], data_dim=1, scale=0.8)
    grid = torch.linspace(-9, 9, 1201, dtype=torch.float64)
    step = float(grid[1] - grid[0])
    z2, z1 = torch.meshgrid(grid, grid, indexing="ij")
    log_p2 = model.priors["z2"].distribution(None).log_prob(z2.reshape(-1, 1))
    log_p1 = model.priors["z1"].distribution(z2.reshape(-1, 1)).log_prob(z1.reshape(-1, 1))
    x = torch.tensor([[-1.5], [0.2], [2.0]], dtype=torch.float64)
    log_px = model.decode(z1.reshape(-1, 1, 1)).log_prob(x)  # [G², 3]
    joint = (log_p2 + log_p1).unsqueeze(1) + log_px
    quad = torch.logsumexp(joint, 0) + 2 * math.log(step)
    assert torch.allclose(pv.infer.exact_log_likelihood(model, x), quad, atol=1e-6)


def test_importance_sampling_converges_to_the_exact_value_and_elbo_is_below():
    model = graph({"z2": {"dim": 2}, "z1": {"dim": 2, "parents": ["z2"], "prior": LINEAR}}, ["z1"])
    x = model.sample(8, noise=True, seed=2)
    exact = pv.infer.exact_log_likelihood(model, x)
    errors = [
        float((pv.infer.log_likelihood(model, x, num_samples=k, seed=0, proposal="prior").log_px
               - exact).abs().mean())
        for k in (10, 100_000)
    ]
    assert errors[1] < 0.02 and errors[1] < errors[0] / 3
    elbo = pv.infer.elbo(model, x, num_particles=4000, seed=0)
    assert torch.all(elbo < exact)  # the untrained guide: a gap of nats, far above MC error


def test_importance_sampling_with_the_trained_guide_converges():
    model = graph({"z2": {"dim": 2}, "z1": {"dim": 2, "parents": ["z2"], "prior": LINEAR}}, ["z1"])
    data = model.sample(512, noise=True, seed=3)
    model.float()
    pv.fit(model, data.float(), steps=400, batch_size=128, lr=1e-2, seed=0, progress=False)
    model.double()
    x = data[:8]
    exact = pv.infer.exact_log_likelihood(model, x)
    estimate = pv.infer.log_likelihood(model, x, num_samples=20_000, seed=1).log_px
    assert torch.allclose(estimate, exact, atol=0.01)
    assert float(pv.infer.elbo(model, x, num_particles=2000, seed=0).mean()) < float(exact.mean())


def test_conditional_linear_model_is_log_p_x_given_y():
    model = graph({"z": {"dim": 2, "parents": ["y"], "prior": LINEAR}}, ["z", "y"],
                  input={"y": {"kind": "categorical", "num_classes": 3}})
    y = torch.tensor([0, 1, 2, 1, 0])
    x = model.sample(5, noise=True, seed=4, y=y)
    eye = torch.eye(3, dtype=torch.float64)
    expected = []
    for row, c in zip(x, y):
        pz = model.priors["z"].distribution(eye[c])  # p(z | y = c)
        mean_z, cov_z = pz.mean, torch.diag(pz.stddev**2)
        wx, bx, sx = affine(lambda v, c=c: model.decode({"z": v, "y": c.expand(len(v))}), 2)
        px = torch.distributions.MultivariateNormal(wx @ mean_z + bx,
                                                    wx @ cov_z @ wx.T + torch.diag(sx**2))
        expected.append(px.log_prob(row))
    assert torch.allclose(pv.infer.exact_log_likelihood(model, x, y), torch.stack(expected), atol=1e-9)
    estimate = pv.infer.log_likelihood(model, x, y, num_samples=50_000, seed=0, proposal="prior")
    assert torch.allclose(estimate.log_px, torch.stack(expected), atol=0.03)
    with pytest.raises(ValueError, match="pass its values as y=|pass y="):
        pv.infer.exact_log_likelihood(model, x)


def test_m2_without_labels_is_the_log_sum_exp_over_classes():
    model = graph({"y": {"kind": "categorical", "num_classes": 3, "class_weights": "learned"},
                   "z": {"dim": 2}}, ["z", "y"])
    with torch.no_grad():
        model.priors["y"].logits.copy_(torch.tensor([0.5, -1.0, 0.2]))
    assert model.enumerate
    x = model.sample(6, noise=True, seed=5)
    exact = pv.infer.exact_log_likelihood(model, x)
    labelled = torch.stack([pv.infer.exact_log_likelihood(model, x, torch.full((6,), c))
                            for c in range(3)])
    assert torch.allclose(exact, labelled.logsumexp(0), atol=1e-9)
    # the same identity between the importance-sampled estimates (the guide enumerates y)
    k = 20_000
    unlabelled = pv.infer.log_likelihood(model, x, num_samples=k, seed=0, proposal="prior").log_px
    per_class = torch.stack([pv.infer.log_likelihood(model, x, torch.full((6,), c), num_samples=k,
                                                     seed=0, proposal="prior").log_px
                             for c in range(3)])
    assert torch.allclose(per_class, labelled, atol=0.03)
    assert torch.allclose(unlabelled, exact, atol=0.03)
    guided = pv.infer.log_likelihood(model, x, num_samples=k, seed=0).log_px
    assert torch.allclose(guided, exact, atol=0.05)


def test_graphs_that_are_not_linear_gaussian_are_refused():
    model = graph({"z2": {"dim": 2}, "z1": {"dim": 2, "parents": ["z2"],
                                            "prior": {"kind": "normal", "hidden": [4]}}}, ["z1"])
    with pytest.raises(NotImplementedError, match=r"latent 'z1' is not linear-Gaussian: its mean is an MLP"):
        pv.infer.exact_log_likelihood(model, torch.zeros(2, 3))
    net = graph({"z2": {"dim": 2}, "z1": {"dim": 2, "parents": ["z2"],
                                          "prior": {**LINEAR, "scale": "net"}}}, ["z1"])
    with pytest.raises(NotImplementedError, match="its scale is output by the net"):
        pv.infer.exact_log_likelihood(net, torch.zeros(2, 3))
    bern = pv.build({"family": "vae", "data_dim": 3, "latent": {"z": {"dim": 2}},
                     "decoder": {"kind": "mlp", "hidden": [], "parents": ["z"]}})
    with pytest.raises(NotImplementedError, match="needs a linear decoder .* likelihood.kind = 'normal'"):
        pv.infer.exact_log_likelihood(bern, torch.zeros(2, 3))


@pytest.mark.parametrize("prior", [
    {"kind": "mixture", "components": 3, "weights": "learned", "spread": 2.0},
    {"kind": "vamp", "components": 4},
])
def test_mixture_priors_are_summed_over_their_components(prior):
    """x = W z + b + σ ε with p(z) = Σ_k π_k N(μ_k, Σ_k): a mixture of K Gaussians in x."""
    model = graph({"z": {"dim": 2, "prior": prior}}, ["z"])
    if prior["kind"] == "mixture":
        with torch.no_grad():
            model.priors["z"].logits.copy_(torch.tensor([0.4, -0.3, 1.0], dtype=torch.float64))
            model.priors["z"].log_scales.uniform_(-0.6, 0.2)
    p_z = model.priors["z"].distribution()
    comps = p_z.component_distribution
    loc = comps.mean  # [K, 2]
    cov = torch.diag_embed(comps.variance)  # the components are diagonal Gaussians
    wx, bx, sx = decoder_affine(model, 2)
    px = torch.distributions.MixtureSameFamily(
        p_z.mixture_distribution,
        torch.distributions.MultivariateNormal(loc @ wx.T + bx, wx @ cov @ wx.T + torch.diag(sx**2)))
    x = model.sample(7, noise=True, seed=6)
    assert torch.allclose(pv.infer.exact_log_likelihood(model, x), px.log_prob(x), atol=1e-9)


def test_one_component_mixture_at_the_origin_is_exactly_the_standard_normal_graph():
    standard = graph({"z": {"dim": 2}}, ["z"])
    mixture = graph({"z": {"dim": 2, "prior": {"kind": "mixture", "components": 1,
                                               "spread": 0.0, "scale": 1.0}}}, ["z"])
    mixture.decoder.load_state_dict(standard.decoder.state_dict())
    x = torch.randn(5, 3, dtype=torch.float64)
    assert torch.allclose(pv.infer.exact_log_likelihood(standard, x),
                          pv.infer.exact_log_likelihood(mixture, x), atol=1e-12)

"""Model graphs: the spec's [latent.*] tables, their validation, and the Pyro program built from them."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

import ppl_vae as pv

HIERARCHICAL = """
family = "vae"
data_dim = 784

[latent.z2]                        # one table per latent variable; its name is its Pyro site name
dim = 50
prior = { kind = "standard_normal" }

[latent.z1]
dim = 100
parents = ["z2"]                   # p(z1 | z2)
prior = { kind = "normal", hidden = [100, 100], activation = "tanh", scale = "net" }

[decoder]                          # p(x | parents)
parents = ["z1"]
kind = "mlp"
hidden = [200, 200]

[likelihood]
kind = "bernoulli"

[guide]                            # q(z1 | x) q(z2 | z1, x) by default; per-latent overrides allowed
kind = "amortized"
hidden = [200, 200]
"""


def small(**changes):
    """A two-layer graph on 6-dim binary data."""
    spec = {
        "family": "vae", "data_dim": 6,
        "latent": {"z2": {"dim": 2}, "z1": {"dim": 3, "parents": ["z2"],
                                            "prior": {"kind": "normal", "hidden": [8]}}},
        "decoder": {"kind": "mlp", "hidden": [8], "parents": ["z1"]},
        "guide": {"kind": "amortized", "hidden": [8]},
    }
    spec.update(changes)
    return spec


def test_the_issue_toml_builds_the_two_layer_program(tmp_path):
    path = tmp_path / "hierarchical.toml"
    path.write_text(HIERARCHICAL)
    model = pv.build(path)
    assert isinstance(model, pv.models.Model)
    assert model.order == ["z2", "z1"] and model.guide_order == ["z1", "z2"]
    assert model.given["z1"] == ["x"]
    assert model.given["z2"] == ["x", "z1"]  # q(z1|x) q(z2|z1,x)
    assert "latent_dim" not in model.spec and "prior" not in model.spec
    x = (torch.rand(3, 784) < 0.5).float()
    g = poutine.trace(model.guide).get_trace(x)
    m = poutine.trace(poutine.replay(model.model, trace=g)).get_trace(x)
    assert [n for n in g.nodes if n in ("z1", "z2")] == ["z1", "z2"]  # bottom-up
    assert [n for n in m.nodes if n in ("z1", "z2")] == ["z2", "z1"]  # ancestral
    # p(z1 | z2) in the model trace is the prior part's distribution at the guide's z2
    z2 = g.nodes["z2"]["value"]
    expected = model.priors["z1"].distribution(z2).log_prob(g.nodes["z1"]["value"])
    assert torch.allclose(m.nodes["z1"]["fn"].log_prob(g.nodes["z1"]["value"]), expected)
    assert g.nodes["z2"]["fn"].event_shape == (50,) and g.nodes["z1"]["fn"].event_shape == (100,)


def test_top_down_order_conditions_the_lower_latent_on_the_upper():
    model = pv.build(small(guide={"kind": "amortized", "hidden": [8], "order": "top_down"}))
    assert model.guide_order == ["z2", "z1"]
    assert model.given["z2"] == ["x"]
    assert model.given["z1"] == ["x", "z2"]


def test_per_latent_guide_overrides():
    model = pv.build(small(guide={"kind": "amortized", "hidden": [8],
                                  "z2": {"given": ["z1"], "hidden": [5]}}))
    assert model.given["z2"] == ["z1"]
    assert model.encoders["z2"].net[0].in_features == 3
    assert model.encoders["z2"].net[0].out_features == 5
    with pytest.raises(ValueError, match=r"guide.z1.given names 'z2', which the encoder of 'z1'"):
        pv.build(small(guide={"kind": "amortized", "z1": {"given": ["z2"]}}))


def test_spec_round_trips_and_same_seed_same_weights():
    model = pv.build(small())
    again = pv.build(model.spec)
    assert again.spec == model.spec
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    # overriding one latent keeps the rest of the graph
    bigger = pv.build(model.spec, latent={"z1": {"dim": 4}})
    assert bigger.spec["latent"]["z1"]["dim"] == 4 and bigger.spec["latent"]["z2"]["dim"] == 2


def test_without_latent_tables_a_spec_is_the_one_latent_model():
    model = pv.build("vae")
    assert type(model).__name__ == "LatentVariableModel" and model.spec["latent_dim"] == 8


@pytest.mark.parametrize("change, message", [
    ({"latent": {"a": {"dim": 2, "parents": ["b"]}, "b": {"dim": 2, "parents": ["a"]}},
      "decoder": {"kind": "mlp", "parents": ["a"]}},
     r"the latent graph has a cycle: a -> b -> a"),
    ({"latent": {"z": {"dim": 2, "parents": ["w"]}}, "decoder": {"kind": "mlp", "parents": ["z"]}},
     r"latent.z.parents names 'w', which is neither a latent nor an input"),
    ({"latent": {"z": {"dim": 2}, "u": {"dim": 2}}, "decoder": {"kind": "mlp", "parents": ["z"]}},
     r"latent 'u' is unused: no latent names it as a parent and it is not a decoder parent"),
    ({"decoder": {"kind": "mlp", "parents": ["z9"]}},
     r"decoder.parents names 'z9', which is neither a latent nor an input"),
    ({"latent_dim": 4}, r"spec has both \[latent.\*\] tables .* and latent_dim"),
    ({"prior": {"kind": "standard_normal"}}, r"spec has both \[latent.\*\] tables .* and prior"),
    ({"latent": {"z": {"parents": []}}, "decoder": {"kind": "mlp", "parents": ["z"]}},
     r"\[latent.z\] has no dim"),
    ({"latent": {"x": {"dim": 2}}, "decoder": {"kind": "mlp", "parents": ["x"]}},
     r"latent name 'x' is invalid"),
    ({"guide": {"kind": "nope"}}, r"guide.kind='nope' is not recognised; valid values: amortized, local"),
    ({"objective": {"tc": 1.0}}, r"objective.tc is not defined on a model graph"),
    ({"latent": {"z": {"dim": 2, "prior": {"kind": "normal", "scale": "net"}}},
      "decoder": {"kind": "mlp", "parents": ["z"]}},
     r"latent.z.prior.scale='net' needs parents"),
    ({"latent": {"z2": {"dim": 2}, "z1": {"dim": 2, "parents": ["z2"],
                                          "prior": {"kind": "standard_normal"}}}},
     r"latent.z1.prior.kind='standard_normal' takes no parents"),
])
def test_invalid_graphs_are_value_errors_naming_the_culprit(change, message):
    with pytest.raises(ValueError, match=message):
        pv.build(small(**change))


def test_one_latent_overrides_on_a_graph_are_refused():
    with pytest.raises(ValueError, match=r"latent_dim cannot override a spec with \[latent.\*\]"):
        pv.build(small(), latent_dim=3)


def test_sample_is_ancestral_through_the_whole_graph():
    """A linear chain with known weights: the samples' covariance is the model's own."""
    spec = small(likelihood={"kind": "normal", "scale": 0.1},
                 decoder={"kind": "mlp", "hidden": [], "parents": ["z1"]})
    spec["latent"]["z1"]["prior"] = {"kind": "normal", "hidden": [], "scale": 0.5}
    model = pv.build(spec)
    x = model.sample(40000, noise=True, seed=0)
    w1, b1 = model.priors["z1"].net[0].weight, model.priors["z1"].net[0].bias
    wx, bx = model.decoder.net[0].weight, model.decoder.net[0].bias
    cov_z1 = w1 @ w1.T + 0.25 * torch.eye(3)
    cov = wx @ cov_z1 @ wx.T + 0.01 * torch.eye(6)
    assert torch.allclose(x.mean(0), wx @ b1 + bx, atol=0.03)
    assert torch.allclose(torch.cov(x.T), cov, atol=0.03)
    assert torch.equal(model.sample(5, seed=1), model.sample(5, seed=1))


def test_kl_weight_scales_every_latent_site_while_training():
    model = pv.build(small(objective={"kl": 4.0}))
    x = (torch.rand(3, 6) < 0.5).float()
    g = poutine.trace(model.guide).get_trace(x)
    m = poutine.trace(poutine.replay(model.model, trace=g)).get_trace(x)
    for trace in (g, m):
        assert trace.nodes["z1"]["scale"] == 4.0 and trace.nodes["z2"]["scale"] == 4.0
    assert m.nodes["x"]["scale"] == 1.0
    assert model.kl_weight == 4.0 and model.latent_sites == ("z2", "z1")


def test_fit_lowers_the_loss_and_save_load_round_trips(tmp_path, digits):
    model = pv.build(small(data_dim=64, latent={"z2": {"dim": 2}, "z1": {"dim": 4, "parents": ["z2"]}}))
    x = digits.x_train[:256]
    before = float(pv.infer.elbo(model, x, num_particles=4, seed=0).mean())
    pv.fit(model, x, steps=150, batch_size=64, lr=3e-3, seed=0)
    after = float(pv.infer.elbo(model, x, num_particles=4, seed=0).mean())
    assert after > before + 3.0
    path = pv.save(model, tmp_path / "graph.pt")
    loaded = pv.load(path)
    assert loaded.spec == model.spec
    a = pv.infer.log_likelihood(model, x[:20], num_samples=16, seed=3).log_px
    b = pv.infer.log_likelihood(loaded, x[:20], num_samples=16, seed=3).log_px
    assert torch.equal(a, b)


def test_decode_takes_the_decoder_parents():
    model = pv.build(small())
    z1 = torch.randn(4, 3)
    assert torch.equal(model.decode(z1).mean, model.decode({"z1": z1}).mean)
    with pytest.raises(ValueError, match="z1 has 2 columns but the latent has dim 3"):
        model.decode(torch.randn(4, 2))


def test_the_model_is_a_plain_pyro_program():
    """pyro's own Trace_ELBO on model/guide agrees with pv.infer.elbo in expectation."""
    model = pv.build(small())
    x = (torch.rand(5, 6) < 0.5).float()
    pyro.set_rng_seed(0)
    loss = pyro.infer.Trace_ELBO(num_particles=4000, vectorize_particles=True,
                                 max_plate_nesting=1).loss(model.model, model.guide, x)
    ours = pv.infer.elbo(model, x, num_particles=4000, seed=1).sum()
    assert abs(-loss - float(ours)) < 0.05 * abs(float(ours))
    assert isinstance(model.priors["z2"].distribution(None), dist.Independent)


def test_latent_space_tools_take_an_upper_latent():
    """latent='z2' decodes through the mean of p(z1 | z2); the one-latent path is unchanged."""
    model = pv.build(small())
    z2 = torch.randn(5, 2)
    through = model.decode({"z1": model.priors["z1"].distribution(z2).mean}).mean
    assert torch.allclose(model.decode(z2, latent="z2").mean, through)
    codes = torch.zeros(3, 2)
    codes[:, 1] = torch.tensor([-2.0, 0.0, 2.0])
    traversal = pv.infer.traverse(model, torch.zeros(2), 1, [-2.0, 0.0, 2.0], latent="z2")
    assert torch.allclose(traversal, model.decode(codes, latent="z2").mean)
    x = (torch.rand(20, 6) < 0.5).float()
    draws = pv.infer.sample_aggregate_posterior(model, x, 4, latent="z2", seed=0)
    assert draws.shape == (4, 6)
    with pytest.raises(ValueError, match="'w' is not a latent or input of the model graph"):
        model.decode({"w": z2})


def test_the_readme_declares_the_issue_toml_verbatim(tmp_path):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Declaring models"):]
    block = section[section.index("```toml\n") + 8 : section.index("```", section.index("```toml\n") + 8)]
    assert block.strip() == HIERARCHICAL.strip()
    path = tmp_path / "readme.toml"
    path.write_text(block)
    assert pv.build(path).order == ["z2", "z1"]


def test_m2_classification_term_adds_alpha_log_q_y_on_labelled_data():
    def m2(alpha):
        return pv.build({"family": "vae", "data_dim": 6,
                         "latent": {"y": {"kind": "categorical", "num_classes": 3,
                                          "classify": alpha}, "z": {"dim": 2}},
                         "decoder": {"kind": "mlp", "hidden": [8], "parents": ["z", "y"]},
                         "guide": {"kind": "amortized", "hidden": [8]}})
    plain, weighted = m2(0.0), m2(5.0)
    x, y = (torch.rand(4, 6) < 0.5).float(), torch.tensor([0, 2, 1, 1])
    elbo = pyro.infer.Trace_ELBO(max_plate_nesting=1)  # labelled: nothing to enumerate
    pyro.set_rng_seed(0)
    a = elbo.loss(plain.model, plain.guide, x, y)
    pyro.set_rng_seed(0)
    b = elbo.loss(weighted.model, weighted.guide, x, y)
    log_q = plain.encoders["y"].distribution(x).log_prob(y).sum()
    assert abs((a - b) - 5.0 * float(log_q.detach())) < 1e-3
    # the inference utilities leave the term out: the bound is on log p(x, y) itself
    assert torch.allclose(pv.infer.elbo(plain, x, y, num_particles=4, seed=0),
                          pv.infer.elbo(weighted, x, y, num_particles=4, seed=0))
    with pytest.raises(ValueError, match=r"latent.y.classify=-1 is invalid"):
        m2(-1)


def test_shared_guide_settings_reach_every_latent_without_its_own():
    model = pv.build("hierarchical", guide={"hidden": [64]})
    assert model.encoders["z1"].net[0].out_features == 64  # the shared setting
    assert model.encoders["z2"].net[0].out_features == 100  # [guide.z2] keeps its own
    assert model.spec["guide"]["z2"] == {"given": ["z1"], "hidden": [100, 100]}
    flipped = pv.build(pv.build(small()).spec, guide={"order": "top_down"})
    assert flipped.given == {"z2": ["x"], "z1": ["x", "z2"]}


def test_a_flow_on_one_latent_of_the_graph():
    model = pv.build(small(guide={"kind": "amortized", "hidden": [8],
                                  "z1": {"flow": {"kind": "iaf", "layers": 2, "hidden": [8]}}}))
    assert model.encoders["z1"].flow is not None and model.encoders["z2"].flow is None
    x = (torch.rand(5, 6) < 0.5).float()
    terms = pv.infer.elbo_terms(model, x, num_particles=3, seed=0)
    assert torch.allclose(terms.elbo, pv.infer.elbo(model, x, num_particles=3, seed=0), atol=1e-5)


def test_a_real_input_enters_prior_and_decoder_linearly():
    """A linear model with a real covariate y: p(x | y) = N(Wx (W_y y + b) + bx, ...)."""
    spec = small(input={"c": {"kind": "real", "dim": 2}},
                 latent={"z": {"dim": 2, "parents": ["c"], "prior": {"kind": "normal", "hidden": []}}},
                 decoder={"kind": "mlp", "hidden": [], "parents": ["z"]},
                 likelihood={"kind": "normal", "scale": 0.3})
    model = pv.build(spec).double()
    assert model.requires_labels and model.num_classes is None
    c = torch.randn(4, 2, dtype=torch.float64)
    x = model.sample(4, noise=True, seed=0, y=c)
    pz = model.priors["z"].distribution(c)
    w, b = model.decoder.net[0].weight, model.decoder.net[0].bias
    cov = w @ torch.diag_embed(pz.variance) @ w.T + 0.09 * torch.eye(6, dtype=torch.float64)
    expected = torch.distributions.MultivariateNormal(pz.mean @ w.T + b, cov).log_prob(x)
    assert torch.allclose(pv.infer.exact_log_likelihood(model, x, c), expected, atol=1e-9)
    with pytest.raises(ValueError, match=r"y has data dimension 3 but the model expects 2"):
        model.check_data(x, torch.zeros(4, 3))


def test_changing_a_latent_prior_kind_drops_the_old_kinds_keys():
    model = pv.build("mog_prior", latent={"z": {"prior": {"kind": "vamp", "components": 5}}})
    assert model.spec["latent"]["z"]["prior"] == {"kind": "vamp", "components": 5}
    assert model.spec["latent"]["z"]["dim"] == 8  # the rest of the latent's table is kept


def test_fit_with_validation_resumes_bit_for_bit(tmp_path, digits):
    spec = small(data_dim=64)
    x, x_val = digits.x_train[:300], digits.x_test[:50]
    options = {"batch_size": 50, "progress": False, "checkpoint_every": 10, "x_val": x_val,
               "eval_every": 10}
    straight = pv.build(spec)
    pv.fit(straight, x, steps=20, checkpoint=tmp_path / "a.pt", **options)
    resumed = pv.build(spec)
    pv.fit(resumed, x, steps=10, checkpoint=tmp_path / "b.pt", **options)
    resumed = pv.build(spec)
    result = pv.fit(resumed, x, steps=20, checkpoint=tmp_path / "b.pt", resume=True, **options)
    assert result.history.val_elbo.notna().any()
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_kl_warmup_scales_every_latent_of_a_graph():
    # the trainer reads the latent sites from the contract: warm-up reaches z1 and z2
    from pyro import poutine

    from ppl_vae.training import bounds

    model = pv.build("hierarchical", data_dim=16, latent={"z1": {"dim": 3}, "z2": {"dim": 2}})
    warm = bounds.Bound(bounds.parse("elbo", 1), model, kl_warmup=10)
    assert set(warm.latent_sites) == {"z1", "z2"}
    x = torch.bernoulli(torch.full((4, 16), 0.5))
    scale = bounds.LatentScale(warm.latent_sites, bounds.warmup_factor(3, 10))
    trace = poutine.trace(scale(model.model)).get_trace(x)
    assert {n: s["scale"] for n, s in trace.nodes.items() if n in ("z1", "z2")} == \
        {"z1": pytest.approx(0.3), "z2": pytest.approx(0.3)}

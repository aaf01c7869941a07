"""Model graphs with guide.kind = "local": free per-datapoint parameters for every latent."""

import tempfile
from pathlib import Path

import pytest
import torch
from pyro import poutine

import ppl_vae as pv

LINEAR = {
    "family": "vae", "data_dim": 4,
    "latent": {"z2": {"dim": 1},
               "z1": {"dim": 2, "parents": ["z2"], "prior": {"kind": "normal", "hidden": [],
                                                              "scale": "learned"}}},
    "decoder": {"parents": ["z1"], "hidden": []},
    "likelihood": {"kind": "normal", "scale": 0.5},
    "guide": {"kind": "local"},
}


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    x = torch.randn(30, 4) @ torch.randn(4, 4) * 0.5
    model = pv.build(LINEAR)
    result = pv.fit(model, x, steps=600, batch_size=10, lr=0.05, seed=0, progress=False)
    return model, x, result.history


def test_a_local_graph_trains_and_its_elbo_stays_below_the_exact_log_likelihood(trained):
    model, x, history = trained
    assert not model.amortized and not model.streamable
    assert history.loss.iloc[-50:].mean() < history.loss.iloc[:50].mean()
    exact = pv.infer.exact_log_likelihood(model, x)
    elbo = pv.infer.elbo(model, x, num_particles=2000, seed=0)
    # a mean-field Gaussian q cannot reach the correlated posterior: below, but not far
    gap = exact - elbo
    assert (gap > -0.05).all() and gap.mean() < 2.0


def test_a_minibatch_reads_the_parameters_of_its_rows(trained):
    model, x, _ = trained
    idx = torch.tensor([3, 17, 29])
    trace = poutine.trace(model.guide).get_trace(x[idx], idx=idx, num_data=len(x))
    for name in ("z1", "z2"):
        loc = trace.nodes[name]["fn"].mean
        assert torch.equal(loc, model.encoders[name].loc[idx].detach()), name


def test_local_parameters_round_trip_through_a_checkpoint(trained):
    model, x, _ = trained
    with tempfile.TemporaryDirectory() as tmp:
        pv.save(model, Path(tmp) / "m.pt")
        loaded = pv.load(Path(tmp) / "m.pt")
    assert type(loaded) is type(model)
    for name in ("z1", "z2"):
        assert torch.equal(loaded.encoders[name].loc, model.encoders[name].loc)
    with pytest.raises(ValueError, match="x has 5 rows but the local guide holds parameters for 30"):
        pv.infer.elbo(loaded, x[:5])


@pytest.mark.parametrize("guide, words", [
    ({"kind": "local", "order": "top_down"}, "takes no ['order']"),
    ({"kind": "local", "z1": {"covariance": "full"}}, "takes no ['z1']"),
    ({"kind": "local", "hidden": [3]}, "unknown key guide.'hidden'"),
])
def test_local_graph_guides_refuse_encoder_settings(guide, words):
    with pytest.raises(ValueError) as info:
        pv.build({**LINEAR, "guide": guide})
    assert words in str(info.value)


def test_local_graph_guides_refuse_what_needs_an_encoder():
    m2 = {**LINEAR, "latent": {"y": {"kind": "categorical", "num_classes": 2}, "z": {"dim": 2}},
          "decoder": {"parents": ["z", "y"], "hidden": []}}
    with pytest.raises(ValueError, match="cannot serve the categorical latent 'y'"):
        pv.build(m2)
    vamp = {**LINEAR, "latent": {"z": {"dim": 2, "prior": {"kind": "vamp", "components": 3}}},
            "decoder": {"parents": ["z"], "hidden": []}}
    with pytest.raises(ValueError, match="vamp.*guide.kind='local' does not have"):
        pv.build(vamp)


def test_a_conditional_graph_takes_a_local_guide():
    spec = {**LINEAR, "input": {"y": {"kind": "categorical", "num_classes": 3}},
            "latent": {"z": {"dim": 2, "parents": ["y"]}},
            "decoder": {"parents": ["z", "y"], "hidden": [8]}}
    model = pv.build(spec)
    assert model.requires_labels and not model.amortized
    x, y = torch.randn(12, 4), torch.arange(12) % 3
    pv.fit(model, x, y, steps=5, batch_size=4, progress=False)
    assert torch.isfinite(pv.infer.log_likelihood(model, x, y, num_samples=50).log_px).all()

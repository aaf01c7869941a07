"""The tcvae preset: beta as the TC weight, round trip, the β-TCVAE objective, its effect on TC."""

import pytest
import torch
from pyro.infer import Trace_ELBO

import ppl_vae as pv
from ppl_vae import estimators


def test_preset_sets_tc_weight_from_beta_and_keeps_kl_weight_one():
    model = pv.build("tcvae")
    assert model.spec["beta"] == 6.0 and model.kl_weight == 1.0
    assert model.spec["objective"]["tc"] == 5.0 and model.spec["penalty"] == []
    assert pv.build("tcvae", beta=2.5).objective.weights["tc"] == pytest.approx(1.5)


def test_spec_round_trips_through_build():
    model = pv.build("tcvae", data_dim=20, latent_dim=3, beta=4.0, seed=3)
    again = pv.build(model.spec)
    assert again.spec == model.spec
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)


def test_toml_spec_of_the_earlier_preset(tmp_path):
    # The earlier tcvae preset spelled the TC term as a weightless [[penalty]].
    path = tmp_path / "my_tcvae.toml"
    path.write_text(
        'family = "tcvae"\ndata_dim = 16\nbeta = 3.0\n'
        '[[penalty]]\nkind = "total_correlation"\nestimator = "mws"\n'
    )
    model = pv.build(path)
    assert model.spec["objective"]["tc"] == 2.0 and model.spec["objective"]["estimator"] == "mws"
    assert model.spec["penalty"] == []


def test_other_penalties_are_kept():
    model = pv.build("tcvae", objective={"mi": 1.0}, penalty=[])
    assert model.objective.terms == {"mi": 1.0, "tc": 5.0}


def test_incompatible_guides_are_refused():
    with pytest.raises(ValueError, match="guide.covariance='full'"):
        pv.build("tcvae", guide={"covariance": "full"})
    with pytest.raises(ValueError, match="objective.tc needs an amortized guide"):
        pv.build("tcvae", guide={"kind": "local"})


def test_trace_elbo_loss_is_minus_elbo_plus_beta_minus_one_tc():
    # Same weights, same draws: the tcvae loss exceeds the VAE's by (β−1)·Σ_i TC_i·N/B.
    beta, n = 4.0, 30
    tc_model = pv.build("tcvae", data_dim=10, latent_dim=3, beta=beta, seed=1)
    vae = pv.build("vae", data_dim=10, latent_dim=3, seed=1)
    vae.load_state_dict(tc_model.state_dict())
    x = (torch.rand(n, 10, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    idx = torch.arange(10)
    losses = []
    for m in (tc_model, vae):
        torch.manual_seed(7)
        losses.append(Trace_ELBO().differentiable_loss(m.model, m.guide, x[idx], idx=idx, num_data=n))
    torch.manual_seed(7)
    z = tc_model.q.distribution(x[idx]).rsample()
    base = tc_model.q.distribution(x[idx]).base_dist
    tc = estimators.total_correlation(z, base.loc, base.scale, n)
    expected = (beta - 1) * tc.sum() * n / len(idx)
    diff = float((losses[0] - losses[1]).detach())
    assert diff == pytest.approx(float(expected.detach()), rel=1e-4, abs=1e-3)


@pytest.mark.slow
def test_tc_penalty_lowers_measured_tc_on_sprites():
    torch.manual_seed(0)
    data = pv.data.load("sprites", size=13, scales=2, orientations=4, positions=6, seed=0)
    x = torch.as_tensor(data.x_train)
    net = {"hidden": [128]}
    tc = {}
    for family, beta in (("vae", 1.0), ("tcvae", 8.0)):
        model = pv.build(family, data_dim=169, latent_dim=6, beta=beta, decoder=net, guide=net)
        pv.fit(model, x, steps=300, batch_size=128, lr=2e-3, seed=0, progress=False)
        tc[family] = pv.metrics.elbo_decomposition(model, x, seed=0)["total_correlation"]
    assert tc["tcvae"] < 0.7 * tc["vae"], tc

"""The objective part: the loss is −ELBO + Σ weight·term, and earlier specs build the same model."""

import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO

import ppl_vae as pv
from ppl_vae import estimators
from ppl_vae.parts.objective import Objective

WEIGHTS = {"kl": 2.0, "mi": 0.5, "tc": 3.0, "dimwise_kl": -0.25}


def _data(n=30, d=10, seed=0):
    return (torch.rand(n, d, generator=torch.Generator().manual_seed(seed)) > 0.5).float()


@pytest.mark.parametrize("estimator", ["mss", "mws"])
def test_trace_elbo_loss_is_minus_elbo_plus_weighted_terms(estimator):
    """For one fixed z per datapoint, by hand:

    loss = (N/B) Σ_i [−log p(x_i|z_i) + kl·(log q(z_i|x_i) − log p(z_i))
                      + mi·MI_i + tc·TC_i + dimwise_kl·DWKL_i]

    with MI, TC, DWKL from estimators.kl_decomposition on the same minibatch.
    """
    model = pv.build("vae", data_dim=10, latent_dim=3, seed=1, objective={**WEIGHTS, "estimator": estimator})
    x, n = _data(), 30
    idx = torch.arange(5, 17)
    torch.manual_seed(7)
    loss = Trace_ELBO().differentiable_loss(model.model, model.guide, x[idx], idx=idx, num_data=n)
    torch.manual_seed(7)
    q = model.q.distribution(x[idx])
    z = q.rsample()  # the z the guide drew
    p = model.prior.distribution()
    recon = model.decode(z).log_prob(x[idx])
    terms = estimators.kl_decomposition(z, q.base_dist.loc, q.base_dist.scale, n, estimator=estimator)
    per_point = (
        -recon
        + WEIGHTS["kl"] * (q.log_prob(z) - p.log_prob(z))
        + WEIGHTS["mi"] * terms.mutual_information
        + WEIGHTS["tc"] * terms.total_correlation
        + WEIGHTS["dimwise_kl"] * terms.dimwise_kl
    )
    expected = per_point.sum() * n / len(idx)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-3)


def test_default_objective_is_the_plain_elbo():
    model = pv.build("vae", data_dim=10, latent_dim=3)
    assert model.spec["objective"] == {"kl": 1.0, "mi": 0.0, "tc": 0.0, "dimwise_kl": 0.0, "estimator": "mss"}
    tr = poutine.trace(model.model).get_trace(_data())
    assert not [name for name in tr.nodes if name.startswith("penalty")]


def test_terms_are_factor_sites_scaled_by_the_plate():
    model = pv.build("vae", data_dim=10, latent_dim=3, objective={"tc": 2.5})
    x, n = _data(), 40
    idx = torch.arange(4, 12)
    guide_tr = poutine.trace(model.guide).get_trace(x[idx], idx=idx, num_data=n)
    model_tr = poutine.trace(poutine.replay(model.model, trace=guide_tr)).get_trace(x[idx], idx=idx, num_data=n)
    model_tr.compute_log_prob()
    site = model_tr.nodes["penalty_tc"]
    z = guide_tr.nodes["z"]["value"]
    base = model.q.distribution(x[idx]).base_dist
    tc = estimators.total_correlation(z, base.loc, base.scale, n)
    assert site["scale"] == pytest.approx(n / len(idx))
    torch.testing.assert_close(site["unscaled_log_prob"], -2.5 * tc, rtol=1e-5, atol=1e-5)


def test_leading_particle_dims_are_one_minibatch_each():
    from ppl_vae.parts.base import PenaltyInputs

    model = pv.build("vae", data_dim=10, latent_dim=3, objective={"tc": 1.0})
    q = model.q.distribution(_data()[:8])
    z = q.sample((2,))  # [2, 8, 3]
    inputs = PenaltyInputs(x=None, y=None, z=z, posterior=q, prior=model.prior, num_data=40)
    value = model.objective.decomposition(inputs)["tc"]
    assert value.shape == (2, 8)
    for s in range(2):
        ref = estimators.total_correlation(z[s], q.base_dist.loc, q.base_dist.scale, 40)
        torch.testing.assert_close(value[s], ref)


# -- specs written for the earlier presets -------------------------------------

def test_beta_is_one_documented_weight_per_preset(tmp_path):
    assert pv.build("vae", beta=4.0).spec["objective"]["kl"] == 4.0
    path = tmp_path / "beta_vae.toml"
    path.write_text('family = "vae"\ndata_dim = 16\nbeta = 4.0\n')
    model = pv.build(path)
    assert model.kl_weight == 4.0 and model.spec["beta"] == 4.0
    tc = pv.build({"family": "tcvae", "beta": 6})
    assert tc.spec["objective"]["kl"] == 1.0 and tc.spec["objective"]["tc"] == 5.0
    assert tc.spec["beta"] == 6.0


def test_same_seed_same_weights_as_the_vae_it_extends():
    a = pv.build({"family": "tcvae", "beta": 6, "seed": 3})
    b = pv.build({"family": "vae", "seed": 3, "likelihood": {"kind": "bernoulli"}})
    for (name, u), (_, v) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(u, v, msg=name)


def test_earlier_tc_and_mi_penalties_become_objective_weights():
    old = pv.build("tcvae", beta=3.0, penalty=[{"kind": "total_correlation", "estimator": "mws"}])
    assert old.spec["objective"]["tc"] == 2.0 and old.spec["objective"]["estimator"] == "mws"
    assert old.spec["penalty"] == []
    same = pv.build("tcvae", beta=3.0, penalty=[{"kind": "total_correlation", "weight": 2.0}])
    assert same.spec["objective"]["tc"] == 2.0
    no_beta = pv.build({"family": "tcvae", "penalty": [{"kind": "total_correlation", "estimator": "mws"}]})
    assert no_beta.spec["objective"]["tc"] == 5.0 and no_beta.spec["objective"]["estimator"] == "mws"
    mi = pv.build("vae", penalty=[{"kind": "mutual_information", "weight": 0.5}])
    assert mi.spec["objective"]["mi"] == 0.5
    assert pv.build(mi.spec).spec == mi.spec


def test_conflicts_and_removed_kinds_say_what_to_write():
    with pytest.raises(ValueError, match=r"objective.tc=4.0 conflicts with beta=3.0.*tc = beta - kl = 2"):
        pv.build("tcvae", beta=3.0, penalty=[{"kind": "total_correlation", "weight": 4.0}])
    with pytest.raises(ValueError, match=r"objective.kl=2.0 conflicts with beta=4.0"):
        pv.build({"family": "vae", "beta": 4.0, "objective": {"kl": 2.0}})
    with pytest.raises(ValueError, match=r"write \[objective\] kl = 1.5"):
        pv.build("vae", penalty=[{"kind": "kl", "weight": 0.5}])
    with pytest.raises(ValueError, match=r"write \[objective\] mi = <weight>"):
        pv.build("vae", penalty=[{"kind": "mutual_information"}])
    with pytest.raises(ValueError, match=r"unknown key objective.'lambda'; valid keys: dimwise_kl, estimator, kl, mi, tc"):
        pv.build("vae", objective={"lambda": 1.0})
    with pytest.raises(ValueError, match="estimator='bogus'"):
        pv.build("vae", objective={"estimator": "bogus"})


def test_beta_override_of_a_resolved_spec_replaces_the_weight_it_aliases():
    model = pv.build("tcvae", data_dim=16)
    again = pv.build(model.spec, beta=2.0)
    assert again.spec["objective"]["tc"] == 1.0 and again.spec["beta"] == 2.0
    assert pv.build(again.spec).spec == again.spec
    assert pv.build("tcvae", objective={"tc": 3.0}).spec["beta"] == 4.0


@pytest.mark.parametrize("term", ["tc", "mi", "dimwise_kl"])
def test_decomposition_terms_need_an_amortized_diagonal_guide(term):
    with pytest.raises(ValueError, match="guide.covariance='full'.*set guide.covariance = 'diagonal'"):
        pv.build("vae", guide={"covariance": "full"}, objective={term: 1.0})
    with pytest.raises(ValueError, match="amortized guide.*guide.kind='local'"):
        pv.build("lvm", objective={term: 1.0})


def test_dimwise_kl_needs_a_factorised_prior():
    with pytest.raises(ValueError, match="dimwise_kl needs a prior p\\(z\\) that factorises"):
        pv.build("rdvae", objective={"dimwise_kl": 1.0})


def test_objective_is_a_part_without_state():
    assert isinstance(pv.build("tcvae").objective, Objective)
    assert not any(k.startswith("objective") for k in pv.build("rdvae").state_dict())


def test_a_resolved_spec_of_the_earlier_tcvae_family_builds_the_same_objective():
    """``model.spec`` as the earlier tcvae family stored it (in checkpoints, too)."""
    net = {"kind": "mlp", "hidden": [16], "activation": "relu"}
    old = {
        "family": "tcvae", "data_dim": 12, "latent_dim": 3, "beta": 6.0, "seed": 0,
        "prior": {"kind": "standard_normal"}, "likelihood": {"kind": "bernoulli"},
        "decoder": net,
        "guide": {"kind": "amortized", "hidden": [16], "activation": "relu", "covariance": "diagonal"},
        "penalty": [{"kind": "total_correlation", "estimator": "mss"}],
    }
    model = pv.build(old)
    assert model.spec["objective"] == {"kl": 1.0, "mi": 0.0, "tc": 5.0, "dimwise_kl": 0.0, "estimator": "mss"}
    assert pv.build({**old, "family": "vae", "penalty": []}).kl_weight == 6.0  # vae: beta = kl

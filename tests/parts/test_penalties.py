"""Penalty parts: values equal the shared estimators, broadcasting, compatibility, factor sites."""

import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

import ppl_vae as pv
from ppl_vae import estimators
from ppl_vae.math import kl_normal_standard
from ppl_vae.parts.base import Context, PenaltyInputs
from ppl_vae.parts.penalties import MutualInformation, PosteriorKL, TotalCorrelation
from ppl_vae.parts.priors import StandardNormal

CTX = Context(data_dim=5, latent_dim=3)


def _batch(b=16, latent=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    loc = torch.randn(b, latent, generator=g)
    scale = 0.3 + torch.rand(b, latent, generator=g)
    z = loc + scale * torch.randn(b, latent, generator=g)
    q = dist.Normal(loc, scale).to_event(1)
    return z, loc, scale, q


def _inputs(z, q, num_data):
    return PenaltyInputs(
        x=torch.zeros(z.shape[-2], 5), y=None, z=z, posterior=q,
        prior=StandardNormal(CTX), num_data=num_data,
    )


@pytest.mark.parametrize("estimator", ["mss", "mws"])
def test_total_correlation_equals_estimator_on_a_batch(estimator):
    z, loc, scale, q = _batch()
    value = TotalCorrelation(CTX, weight=2.0, estimator=estimator)(_inputs(z, q, 100))
    expected = estimators.total_correlation(z, loc, scale, 100, estimator=estimator)
    assert value.shape == (16,)
    torch.testing.assert_close(value, expected)


def test_mutual_information_equals_decomposition_term():
    z, loc, scale, q = _batch()
    value = MutualInformation(CTX, estimator="mss")(_inputs(z, q, 50))
    expected = estimators.kl_decomposition(z, loc, scale, 50).mutual_information
    torch.testing.assert_close(value, expected)


def test_kl_penalty_is_the_closed_form_kl_of_each_posterior():
    z, loc, scale, q = _batch()
    value = PosteriorKL(CTX)(_inputs(z, q, 50))
    torch.testing.assert_close(value, kl_normal_standard(loc, scale))


def test_leading_particle_dims_broadcast_slice_by_slice():
    _, loc, scale, q = _batch(b=8)
    z = loc + scale * torch.randn(2, 8, 3, generator=torch.Generator().manual_seed(1))
    value = TotalCorrelation(CTX)(_inputs(z, q, 40))
    assert value.shape == (2, 8)
    for s in range(2):
        torch.testing.assert_close(value[s], estimators.total_correlation(z[s], loc, scale, 40))


def test_unknown_estimator_is_refused():
    with pytest.raises(ValueError, match="estimator='bogus'.*mws, mss"):
        TotalCorrelation(CTX, estimator="bogus")


@pytest.mark.parametrize("kind", ["total_correlation", "mutual_information"])
def test_full_covariance_and_local_guides_are_refused(kind):
    with pytest.raises(ValueError, match="guide.covariance='full'.*set guide.covariance = 'diagonal'"):
        pv.build("vae", guide={"covariance": "full"}, penalty=[{"kind": kind}])
    with pytest.raises(ValueError, match="amortized guide.*guide.kind='local'"):
        pv.build("lvm", penalty=[{"kind": kind}])


def test_model_adds_minus_weight_times_value_scaled_by_the_plate():
    # The factor site is -weight * value per datapoint, scaled N/B by the data plate.
    model = pv.build("vae", latent_dim=3, penalty=[{"kind": "total_correlation", "weight": 2.5}])
    x = (torch.rand(12, 64, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    idx, n = torch.arange(4, 12), 40
    guide_tr = poutine.trace(model.guide).get_trace(x[idx], idx=idx, num_data=n)
    model_tr = poutine.trace(poutine.replay(model.model, trace=guide_tr)).get_trace(
        x[idx], idx=idx, num_data=n
    )
    model_tr.compute_log_prob()
    site = model_tr.nodes["penalty_total_correlation"]
    z = guide_tr.nodes["z"]["value"]
    base = model.q.distribution(x[idx]).base_dist
    tc = estimators.total_correlation(z, base.loc, base.scale, n)
    assert site["scale"] == pytest.approx(n / len(idx))
    torch.testing.assert_close(site["unscaled_log_prob"], -2.5 * tc, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(site["log_prob"], -2.5 * tc * n / len(idx), rtol=1e-5, atol=1e-4)


def test_penalty_spec_round_trips_with_its_keys():
    model = pv.build("vae", penalty=[{"kind": "mutual_information", "weight": 0.5, "estimator": "mws"}])
    assert model.spec["penalty"] == [
        {"kind": "mutual_information", "weight": 0.5, "estimator": "mws"}
    ]
    assert pv.build(model.spec).spec == model.spec
    with pytest.raises(ValueError, match="unknown key penalty\\[0\\].'rho'"):
        pv.build("vae", penalty=[{"kind": "total_correlation", "rho": 1.0}])

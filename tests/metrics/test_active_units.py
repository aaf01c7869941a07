"""Active units per layer (Burda et al. 2016) and the posterior mean E_q[z | x] they rest on."""

import pytest
import torch

import ppl_vae as pv


def linear_two_layer():
    """x (6) -> q(z1 | x) (4 dims), q(z2 | z1) (3 dims), linear encoders."""
    model = pv.build({
        "family": "vae", "data_dim": 6,
        "latent": {"z2": {"dim": 3}, "z1": {"dim": 4, "parents": ["z2"]}},
        "decoder": {"kind": "mlp", "hidden": [8], "parents": ["z1"]},
        "guide": {"kind": "amortized", "hidden": [], "z2": {"given": ["z1"]}},
    })
    with torch.no_grad():
        out = model.encoders["z1"].net[0]
        out.weight[:2] = 0.0  # z1's dims 0 and 1: a posterior mean that ignores x
        out.bias[:2] = 0.3
        out.weight[2] *= 0.01  # dim 2: moves, but by less than the threshold
    return model


def test_first_layer_counts_the_dimensions_whose_encoder_mean_varies():
    model = linear_two_layer()
    x = (torch.rand(400, 6) < 0.5).float()
    loc = model.encoders["z1"].distribution(x).mean
    variance = loc.double().var(0, unbiased=False)
    assert variance[0] == 0 and variance[2] < 1e-2 and variance[3] > 1e-2  # the set-up
    assert pv.metrics.active_units(model, x, latent="z1") == int((variance > 1e-2).sum()) == 1
    assert torch.allclose(pv.metrics.unit_variances(model, x, latent="z1"), variance)


def test_upper_layer_integrates_out_the_lower_one():
    """q(z2 | z1) linear: E_q[z2 | x] = W E_q[z1 | x] + b exactly, reached by Monte Carlo."""
    model = linear_two_layer()
    x = (torch.rand(50, 6) < 0.5).float()
    mean_z1 = model.encoders["z1"].distribution(x).mean
    layer = model.encoders["z2"].net[0]
    expected = mean_z1 @ layer.weight[:3].T + layer.bias[:3]
    got = pv.infer.posterior_mean(model, x, latent="z2", num_samples=20_000, seed=0)
    assert torch.allclose(got, expected, atol=0.02)
    one = pv.infer.posterior_mean(model, x, latent="z2", num_samples=1, seed=0)
    assert not torch.allclose(one, expected, atol=0.02)  # one pass is one z1 draw


def test_several_latents_need_a_name():
    with pytest.raises(ValueError, match=r"several continuous latent sites .* pass latent="):
        pv.metrics.active_units(linear_two_layer(), torch.zeros(5, 6))

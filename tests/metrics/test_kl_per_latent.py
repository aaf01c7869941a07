"""The ELBO per site (pv.infer.elbo_terms) and the KL per latent."""

import pytest
import torch

import ppl_vae as pv


def two_layer():
    return pv.build({"family": "vae", "data_dim": 6,
                     "latent": {"z2": {"dim": 2}, "z1": {"dim": 3, "parents": ["z2"]}},
                     "decoder": {"kind": "mlp", "hidden": [8], "parents": ["z1"]},
                     "guide": {"kind": "amortized", "hidden": [8]}})


def test_terms_add_up_to_the_elbo_with_the_same_draws():
    model = two_layer()
    x = (torch.rand(9, 6) < 0.5).float()
    terms = pv.infer.elbo_terms(model, x, num_particles=5, seed=2)
    assert set(terms.kl) == {"z1", "z2"} and set(terms.reconstruction) == {"x"}
    assert torch.allclose(terms.elbo, pv.infer.elbo(model, x, num_particles=5, seed=2), atol=1e-5)


def test_one_latent_kl_is_the_closed_form_kl_to_the_standard_normal():
    model = pv.build("vae", data_dim=6, latent_dim=3, decoder={"hidden": [8]}, guide={"hidden": [8]})
    x = (torch.rand(9, 6) < 0.5).float()
    with torch.no_grad():
        q = model.encode(x)
        exact = torch.distributions.kl_divergence(
            q.base_dist, torch.distributions.Normal(0.0, 1.0)).sum(-1).mean()
    got = pv.metrics.kl_per_latent(model, x, num_particles=20_000, seed=0)
    assert abs(got["z"] - float(exact)) < 0.01 * float(exact) + 0.005


def test_enumerated_programs_are_refused():
    model = pv.build("m2", data_dim=6, latent={"z": {"dim": 2}})
    with pytest.raises(ValueError, match="enumerates a discrete latent"):
        pv.infer.elbo_terms(model, torch.zeros(3, 6))
    labelled = pv.infer.elbo_terms(model, torch.zeros(3, 6), torch.tensor([0, 1, 2]), seed=0)
    assert set(labelled.kl) == {"z"}  # the observed label is neither a KL nor x's term

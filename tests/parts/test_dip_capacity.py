"""DIP-VAE penalties and the capacity-annealed penalty against hand computations."""

import numpy as np
import pytest
import torch
from pyro import poutine

import ppl_vae as pv
from ppl_vae.parts.capacity import capacity
from ppl_vae.parts.dip import mean_covariance, moment_penalty


def posterior(loc, scale):
    loc = torch.as_tensor(loc, dtype=torch.float32)
    return torch.distributions.Independent(
        torch.distributions.Normal(loc, torch.full_like(loc, scale)), 1)


def inputs(loc, scale=1.0, prior=None):
    return pv.parts.PenaltyInputs(None, None, None, posterior(loc, scale), prior, len(loc))


def dip(kind, **keys):
    return pv.build("vae", latent_dim=2, penalty=[{"kind": kind, **keys}]).penalties[0]


def test_zero_at_identity_covariance():
    loc = np.sqrt(2) * np.array([[1, 0], [-1, 0], [0, 1], [0, -1]])  # Cov[μ] = I exactly
    assert torch.allclose(mean_covariance(torch.tensor(loc)), torch.eye(2, dtype=torch.float64))
    assert dip("dip_i")(inputs(loc)).item() == pytest.approx(0.0, abs=1e-6)
    # DIP-II adds E[σ²] = 0.25 on the diagonal: Cov[μ] = 0.75 I gives Cov_q = I
    assert dip("dip_ii")(inputs(np.sqrt(0.75) * loc, scale=0.5)).item() == pytest.approx(
        0.0, abs=1e-6)


def test_hand_computed_values():
    loc = [[1.0, 1.0], [-1.0, -1.0]]  # Cov[μ] = [[1, 1], [1, 1]] (population moments)
    # DIP-I, λ_od = 10, λ_d = 100: off-diagonal 10 · (1² + 1²) = 20, diagonal 0
    assert dip("dip_i")(inputs(loc)).item() == pytest.approx(20.0)
    # DIP-II, λ_od = λ_d = 10, σ = 0.5: diagonal 1.25 -> 10 · 2 · 0.25² = 1.25; total 21.25
    assert dip("dip_ii")(inputs(loc, scale=0.5)).item() == pytest.approx(21.25)
    # explicit λ_d; Cov = diag(0.5, 2): λ_d · (0.25 + 1)
    cov = torch.tensor([[0.5, 0.0], [0.0, 2.0]])
    assert moment_penalty(cov, lambda_od=3.0, lambda_d=2.0).item() == pytest.approx(2.5)


def test_dip_is_a_weighted_factor_site_of_the_model():
    model = pv.build("vae", data_dim=64, latent_dim=2,
                     penalty=[{"kind": "dip_i", "weight": 0.5, "lambda_od": 1.0}])
    x = torch.tensor(pv.data.load("digits", binarize=True).x_train[:16])
    trace = poutine.trace(model.model).get_trace(x)
    site = trace.nodes["penalty_dip_i"]
    loc = model.q.distribution(x).base_dist.loc
    expected = -0.5 * moment_penalty(mean_covariance(loc), lambda_od=1.0, lambda_d=10.0)
    got = site["fn"].log_prob(site["value"])
    assert torch.allclose(got, expected.expand(16), atol=1e-5)


@pytest.mark.parametrize("keys, message", [
    ({"lambda_od": -1.0}, "penalty.lambda_od"),
    ({"lambda_d": float("nan")}, "penalty.lambda_d"),
])
def test_bad_lambdas_are_refused(keys, message):
    with pytest.raises(ValueError, match=message):
        dip("dip_ii", **keys)


def test_capacity_schedule_by_hand():
    assert capacity(0, c_min=1.0, c_max=5.0, iterations=100) == 1.0
    assert capacity(25, c_min=1.0, c_max=5.0, iterations=100) == 2.0
    assert capacity(500, c_min=1.0, c_max=5.0, iterations=100) == 5.0


def test_capacity_penalty_value_and_counter():
    model = pv.build("vae", latent_dim=2,
                     penalty=[{"kind": "capacity", "c_max": 4.0, "iterations": 4}])
    part = model.penalties[0]
    # q = N((1, 0), I): KL to N(0, I) = 0.5 · 1² = 0.5 per datapoint
    batch = inputs([[1.0, 0.0], [-1.0, 0.0]], prior=model.prior)
    assert part(batch).item() == pytest.approx(0.5)   # step 0: C = 0
    assert part(batch).item() == pytest.approx(0.5)   # step 1: C = 1 -> |0.5 - 1|
    with torch.no_grad():
        assert part(batch).item() == pytest.approx(1.5)  # step 2: C = 2; not counted
    assert int(part.step) == 2 and part.current_capacity == 2.0


def test_capacity_needs_a_closed_form_kl():
    model = pv.build("vae", latent_dim=2, penalty=[{"kind": "capacity"}])
    q = torch.distributions.MultivariateNormal(torch.zeros(3, 2), torch.eye(2))
    with pytest.raises(ValueError, match="closed form"):
        model.penalties[0](pv.parts.PenaltyInputs(None, None, None, q, _Mixture(), 3))


class _Mixture:
    def distribution(self):
        mix = torch.distributions.Categorical(torch.ones(2))
        comp = torch.distributions.Independent(torch.distributions.Normal(
            torch.zeros(2, 2), torch.ones(2, 2)), 1)
        return torch.distributions.MixtureSameFamily(mix, comp)


@pytest.mark.parametrize("c_max", [3.0, 8.0])
def test_capacity_kl_follows_the_schedule_when_trained(c_max):
    data = pv.data.load("digits", binarize=True)
    model = pv.build("vae", data_dim=64, latent_dim=4, decoder={"hidden": [64]},
                     guide={"hidden": [64]},
                     penalty=[{"kind": "capacity", "weight": 50.0, "c_max": c_max,
                               "iterations": 300}])
    pv.fit(model, data.x_train, steps=400, batch_size=100, lr=3e-3, seed=0, progress=False)
    assert int(model.penalties[0].step) == 400  # one model run per step
    q = model.encode(torch.tensor(data.x_train[:500]))
    kl = torch.distributions.kl_divergence(q, model.prior.distribution()).mean().item()
    # C = c_max from step 300 on; measured KL 3.36 and 7.47 (the reconstruction pulls
    # against it with weight 1 against γ = 50)
    assert kl == pytest.approx(c_max, abs=0.7)


def test_presets_are_the_specs_they_promise():
    assert pv.build("beta_vae", beta=6.0).objective.kl == 6.0
    dip_i, dip_ii = pv.build("dip_vae_i").penalties[0], pv.build("dip_vae_ii").penalties[0]
    assert (dip_i.part_name, dip_i.lambda_od, dip_i.lambda_d) == ("dip_i", 10.0, 100.0)
    assert (dip_ii.part_name, dip_ii.lambda_od, dip_ii.lambda_d) == ("dip_ii", 10.0, 10.0)
    annealed = pv.build("annealed_vae").penalties[0]
    assert (annealed.weight, annealed.c_max, annealed.iterations) == (1000.0, 25.0, 100000)


def test_dip_combines_with_tcvae():
    model = pv.build("tcvae", penalty=[{"kind": "dip_ii", "lambda_od": 2.0}])
    x = torch.tensor(pv.data.load("digits", binarize=True).x_train[:32])
    trace = poutine.trace(model.model).get_trace(x)
    assert {"penalty_tc", "penalty_dip_ii"} <= set(trace.nodes)

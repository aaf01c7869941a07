"""The RD-VAE repulsive loss L_rep (lecture notes, last section) against hand computations."""

import pytest
import torch

import ppl_vae as pv
from ppl_vae.parts.repulsion import repulsive_loss


def test_three_means_hand_computed():
    # μ0 = (0,0), μ1 = (1,0), μ2 = (0,2); ρ = 4.
    # squared distances: d01 = 1, d02 = 4, d12 = 1 + 4 = 5.
    # hinges max(0, ρ − d): 3, 0, 0; each unordered pair counts twice (i, j) and (j, i):
    # L_rep = (1/4) · 2 · 3² = 4.5
    means = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    assert repulsive_loss(means, rho=4.0).item() == pytest.approx(4.5)
    # ρ = 6: hinges 5, 2, 1 -> (1/6) · 2 · (25 + 4 + 1) = 10
    assert repulsive_loss(means, rho=6.0).item() == pytest.approx(10.0)


def test_zero_when_all_pairs_farther_than_rho():
    means = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])  # min squared distance 9
    assert repulsive_loss(means, rho=8.9).item() == 0.0
    assert repulsive_loss(means, rho=9.0).item() == 0.0  # touching ρ exactly: still zero


def test_gradient_pushes_close_means_apart():
    means = torch.tensor([[0.0, 0.0], [0.5, 0.0], [10.0, 10.0]], requires_grad=True)
    repulsive_loss(means, rho=4.0).backward()
    step = -means.grad  # gradient descent direction
    assert step[0, 0] < 0 < step[1, 0]  # the close pair moves apart along x
    assert torch.all(step[2] == 0)  # the far mean feels nothing
    after = (means - 0.01 * means.grad).detach()
    assert (after[1] - after[0]).norm() > 0.5


@pytest.mark.parametrize("rho", [0.0, -1.0, float("nan")])
def test_rho_must_be_positive(rho):
    with pytest.raises(ValueError, match="rho"):
        pv.build("rdvae", penalty=[{"kind": "repulsion", "weight": 1.0, "rho": rho}])
    with pytest.raises(ValueError, match="rho"):
        repulsive_loss(torch.zeros(3, 2), rho=rho)


def test_penalty_in_model_is_weighted_scalar():
    model = pv.build("rdvae", penalty=[{"kind": "repulsion", "weight": 2.5, "rho": 100.0}])
    penalty = model.penalties[0]
    expected = repulsive_loss(model.prior.class_means, rho=100.0)
    assert penalty.rho == 100.0 and penalty.weight == 2.5
    assert penalty(pv.parts.PenaltyInputs(None, None, None, None, model.prior, 1)) == expected
    assert expected > 0  # initial means (radius 3) are closer than √100


def test_refuses_prior_without_class_means():
    with pytest.raises(ValueError, match="class_conditional"):
        pv.build("vae", penalty=[{"kind": "repulsion", "rho": 4.0}])

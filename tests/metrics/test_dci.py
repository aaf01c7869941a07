"""DCI sanity anchors: identity ≈ 1, rotation and noise low, invariant to latent order."""

import numpy as np
import pytest
from scipy.stats import special_ortho_group

from ppl_vae.metrics import dci
from ppl_vae.metrics.dci import _dci_scores

N = 1200


def discrete_factors(n=N, sizes=(3, 6, 10, 8), seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, k, n) for k in sizes], axis=1)


def test_closed_form_scores_of_importance_matrices():
    # diagonal: each latent serves one factor and each factor one latent
    assert _dci_scores(np.eye(3)) == pytest.approx((1.0, 1.0))
    # uniform: maximal entropy both ways
    assert _dci_scores(np.ones((3, 3))) == pytest.approx((0.0, 0.0))
    # one factor split evenly over two latents: D = 1, that factor's C = 1 - log 2 / log 3
    d, c = _dci_scores(np.array([[0.5, 0.0], [0.5, 0.0], [0.0, 1.0]]))
    assert d == pytest.approx(1.0)
    assert c == pytest.approx((1 - np.log(2) / np.log(3) + 1) / 2)


def test_identity_representation_scores_one():
    f = discrete_factors()
    lat = f + 0.05 * np.random.default_rng(1).normal(size=f.shape)
    scores = dci(lat, f, seed=0)
    assert set(scores) == {
        "disentanglement",
        "completeness",
        "informativeness",
        "informativeness_train",
    }
    assert all(isinstance(v, float) for v in scores.values())
    assert scores["disentanglement"] > 0.95
    assert scores["completeness"] > 0.95
    assert scores["informativeness"] > 0.95


def test_random_rotation_mixing_all_factors_scores_low():
    f = discrete_factors()
    standardised = (f - f.mean(0)) / f.std(0)
    rotated = standardised @ special_ortho_group.rvs(4, random_state=1)
    scores = dci(rotated, f, seed=0)
    assert scores["disentanglement"] < 0.5  # measured 0.21 with 3000 rows
    assert scores["completeness"] < 0.5
    assert scores["informativeness"] > 0.6  # the information is still there, only mixed


def test_noise_is_uninformative_and_order_of_latents_does_not_matter():
    f = discrete_factors()
    noise = np.random.default_rng(2).normal(size=(N, 4))
    assert dci(noise, f, num_trees=10)["disentanglement"] < 0.2
    lat = f + 0.5 * np.random.default_rng(3).normal(size=f.shape)
    a, b = dci(lat, f, seed=4, num_trees=10), dci(lat[:, ::-1], f, seed=4, num_trees=10)
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=0.03), key


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"factors": np.zeros((N - 1, 4))}, "factors has"),
        ({"latents": np.full((N, 4), np.inf)}, "latents contains NaN or inf"),
        ({"test_fraction": 1.0}, "test_fraction=1.0"),
        ({"max_rows": 1}, "max_rows=1"),
        ({"seed": -1}, "seed=-1"),
        ({"factors": np.zeros((N, 2))}, "all constant"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(kwargs, match):
    args = {"latents": np.zeros((N, 4)), "factors": discrete_factors()}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        dci(args.pop("latents"), args.pop("factors"), **args)

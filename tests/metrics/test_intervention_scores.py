"""BetaVAE and FactorVAE scores: sanity anchors on constructed codes, both samplers."""

import numpy as np
import pytest

from ppl_vae.data import SpriteGrid
from ppl_vae.metrics import ArraySampler, GridSampler, betavae_score, factorvae_score

SIZES = (3, 4, 5)
SMALL = {"num_train": 300, "num_eval": 200}


def grid_factors(sizes=SIZES, repeat=20):
    """Every factor combination, ``repeat`` times: [prod(sizes) * repeat, F]."""
    codes = np.stack(np.unravel_index(np.arange(np.prod(sizes)), sizes), axis=1)
    return np.tile(codes, (repeat, 1))


def standardised(f):
    return (f - f.mean(0)) / f.std(0)


def test_perfect_code_scores_one_and_noise_scores_chance():
    f = grid_factors()
    perfect = ArraySampler(standardised(f) + 0.01 * np.random.default_rng(0).normal(size=f.shape), f)
    assert betavae_score(perfect, **SMALL)["eval_accuracy"] == 1.0
    assert factorvae_score(perfect, **SMALL)["eval_accuracy"] == 1.0
    noise = ArraySampler(np.random.default_rng(1).normal(size=(len(f), 3)), f)
    # chance is 1/3; measured ~0.3-0.4 at this size
    assert betavae_score(noise, **SMALL)["eval_accuracy"] < 0.5
    assert factorvae_score(noise, **SMALL)["eval_accuracy"] < 0.55


def test_mixed_code_scores_lower_on_factorvae():
    f = grid_factors()
    z = standardised(f)
    a = np.pi / 4  # rotate factors 0 and 1 into each other: neither has its own latent
    rot = z.copy()
    rot[:, 0], rot[:, 1] = np.cos(a) * z[:, 0] - np.sin(a) * z[:, 1], np.sin(a) * z[:, 0] + np.cos(a) * z[:, 1]
    score = factorvae_score(ArraySampler(rot, f), **SMALL)["eval_accuracy"]
    assert 0.4 < score < 0.95  # factor 2 stays perfect, 0 and 1 share two latents


def test_factorvae_majority_vote_by_hand():
    # latent 0 = factor 0 exactly, latent 1 = factor 1 exactly, latent 2 collapsed:
    # every vote for factor k lands on latent k, so train accuracy is exactly 1 and
    # the collapsed latent is pruned.
    f = grid_factors(sizes=(2, 3), repeat=30)
    z = np.column_stack([f[:, 0], f[:, 1], np.zeros(len(f))]).astype(float)
    out = factorvae_score(ArraySampler(z, f), num_train=50, num_eval=50)
    assert out == {"train_accuracy": 1.0, "eval_accuracy": 1.0, "num_active": 2}


def test_constant_code_scores_zero_on_factorvae():
    f = grid_factors()
    out = factorvae_score(ArraySampler(np.zeros((len(f), 3)), f), **SMALL)
    assert out["eval_accuracy"] == 0.0 and out["num_active"] == 0


def test_seed_reproduces_and_changes():
    f = grid_factors()
    s = ArraySampler(np.random.default_rng(3).normal(size=(len(f), 3)), f)
    assert betavae_score(s, seed=5, **SMALL) == betavae_score(s, seed=5, **SMALL)
    assert factorvae_score(s, seed=5, **SMALL) != factorvae_score(s, seed=6, **SMALL)


def test_fixed_draw_keeps_the_factor():
    f = grid_factors()
    s = ArraySampler(standardised(f), f)
    rng = np.random.default_rng(0)
    values = rng.integers(0, 4, size=500)
    _, codes = s.draw(500, rng, fix=(1, values))
    assert np.array_equal(codes[:, 1], values)
    assert len(np.unique(codes[:, 0])) == 3  # the others still vary


def test_grid_sampler_on_sprites_with_a_factor_reading_encoder():
    grid = SpriteGrid(size=16, grid="small")
    images = grid.render(np.arange(len(grid)))
    # a 'perfect' encoder: looks each image up and returns its standardised codes
    # (some small sprites look alike under rotation, so a few lookups pick a twin)
    lookup = {row.tobytes(): code for row, code in zip(images, standardised(grid.codes(
        np.arange(len(grid)))))}
    sampler = GridSampler(grid, lambda x: np.array([lookup[r.tobytes()] for r in x]))
    assert sampler.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    out = factorvae_score(sampler, num_train=60, num_eval=40, num_variance_estimate=500)
    assert out["eval_accuracy"] >= 0.9  # measured 0.95; noise would give ~0.2


@pytest.mark.parametrize("bad, message", [
    (object(), "has no 'factor_sizes'"),
])
def test_bad_sampler_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        betavae_score(bad)


def test_single_varying_factor_is_refused():
    f = np.column_stack([np.arange(60) % 3, np.zeros(60)])
    with pytest.raises(ValueError, match="at least 2 factors that vary"):
        betavae_score(ArraySampler(np.random.default_rng(0).normal(size=(60, 2)), f))

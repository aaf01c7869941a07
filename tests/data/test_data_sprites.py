"""Procedural dSprites: the rendered pixels agree with the stored factors."""

import numpy as np
import pytest

from ppl_vae import data
from ppl_vae.data.sprites import FACTOR_NAMES, render


@pytest.fixture(scope="module")
def grid():
    return data.load("sprites")  # full default grid, 32x32


def _all(ds):
    x = np.concatenate([ds.x_train, ds.x_test])
    f = np.concatenate([ds.factors_train, ds.factors_test])
    return x, f


def test_full_grid_size_and_factor_columns(grid):
    x, f = _all(grid)
    assert len(x) == 3 * 4 * 8 * 8 * 8
    assert grid.factor_names == FACTOR_NAMES == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert grid.image_shape == (32, 32) and set(np.unique(x)) == {0.0, 1.0}
    assert len({tuple(r) for r in f}) == len(f)  # each combination exactly once
    np.testing.assert_array_equal(np.concatenate([grid.y_train, grid.y_test]), f[:, 0])
    small = data.load("sprites", size=16, scales=2, orientations=3, positions=4)
    assert small.n_train + small.n_test == 3 * 2 * 3 * 4 * 4 and small.data_dim == 256


def test_every_sprite_nonempty_and_inside_the_image(grid):
    x, _ = _all(grid)
    imgs = x.reshape(-1, 32, 32)
    assert x.sum(1).min() >= 10
    border = imgs[:, 0].sum() + imgs[:, -1].sum() + imgs[:, :, 0].sum() + imgs[:, :, -1].sum()
    assert border == 0  # never touches the edge, so nothing is clipped


def test_distinct_factors_give_distinct_images_up_to_symmetry(grid):
    x, f = _all(grid)
    period = {0: np.pi / 2, 1: np.pi, 2: 2 * np.pi}  # square, ellipse, heart
    key = [(r[0], r[1], round(r[2] % period[int(r[0])], 6), r[3], r[4]) for r in f]
    by_image = {}
    for k, row in zip(key, x):
        by_image.setdefault(row.tobytes(), set()).add(k)
    # identical images only ever come from symmetry-equivalent orientations
    assert all(len(keys) == 1 for keys in by_image.values())
    assert len(by_image) == 4 * 64 * (2 + 4 + 8)
    # and those symmetries really hold: square at 0 and pi/2 identical, ellipse not
    sq = render(np.array([[0, 1, 0, 0.5, 0.5], [0, 1, np.pi / 2, 0.5, 0.5]]))
    el = render(
        np.array([[1, 1, 0, 0.5, 0.5], [1, 1, np.pi / 2, 0.5, 0.5], [1, 1, np.pi, 0.5, 0.5]])
    )
    np.testing.assert_array_equal(sq[0], sq[1])
    assert not np.array_equal(el[0], el[1]) and np.array_equal(el[0], el[2])


def test_centroid_tracks_position(grid):
    x, f = _all(grid)
    imgs = x.reshape(-1, 32, 32)
    mass = imgs.sum((1, 2))
    cols = (np.arange(32) + 0.5) / 32
    cx = (imgs.sum(1) * cols).sum(1) / mass
    cy = (imgs.sum(2) * cols).sum(1) / mass
    # squares and ellipses are centrally symmetric: centroid == centre up to pixelation
    sym = f[:, 0] < 2
    assert np.abs(cx - f[:, 3])[sym].max() < 1.5 / 32
    assert np.abs(cy - f[:, 4])[sym].max() < 1.5 / 32
    assert np.corrcoef(cx, f[:, 3])[0, 1] > 0.97 and np.corrcoef(cy, f[:, 4])[0, 1] > 0.97
    # hearts: the centre of the bounding disc lies close to the centroid too
    assert np.abs(cx - f[:, 3])[~sym].max() < 2 / 32
    assert np.abs(cy - f[:, 4])[~sym].max() < 2 / 32


def test_orientation_is_a_counter_clockwise_rotation():
    centre = 0.5  # a pixel-grid symmetry point of a 32x32 image
    angles = [0, np.pi / 2, np.pi, 3 * np.pi / 2]
    hearts = render(np.array([[2, 1, a, centre, centre] for a in angles])).reshape(4, 32, 32)
    # an upright heart has its lobes (widest row) above the centre and its tip below
    widest = hearts[0].sum(1).argmax()
    assert widest < 16 and hearts[0][16:].sum() < hearts[0][:16].sum()
    for k in range(1, 4):
        # np.rot90 turns the array counter-clockwise; allow a few boundary pixels
        assert np.abs(hearts[k] - np.rot90(hearts[0], k)).sum() <= 4


def test_area_grows_with_scale_and_matches_shape_areas(grid):
    x, f = _all(grid)
    area = x.sum(1)
    radius_px = f[:, 1] * 0.22 * 32
    for s in range(3):
        means = [area[(f[:, 0] == s) & (f[:, 1] == v)].mean() for v in np.unique(f[:, 1])]
        assert np.all(np.diff(means) > 0)
    # area / radius^2 of the canonical shapes: square 2 (corners on the circle),
    # ellipse pi * 1 * 0.5, heart 2.342 (numerical area of the scaled implicit heart)
    ratio = area / radius_px**2
    for s, expected in enumerate([2.0, np.pi / 2, 2.342]):
        assert abs(ratio[f[:, 0] == s].mean() - expected) / expected < 0.03


def test_random_combinations_deterministic_for_seed():
    a = data.load("sprites", n=200, seed=5)
    b = data.load("sprites", n=200, seed=5)
    c = data.load("sprites", n=200, seed=6)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.factors_test, b.factors_test)
    assert not np.array_equal(a.factors_train, c.factors_train)
    assert a.n_train + a.n_test == 200
    grid_values = a.params["factor_values"]
    for j, name in enumerate(FACTOR_NAMES):
        assert np.isin(a.factors_train[:, j], grid_values[name]).all()
    # rows are exactly the render of their factors
    np.testing.assert_array_equal(a.x_train, render(a.factors_train, size=32))


@pytest.mark.parametrize(
    "opts, arg",
    [
        ({"size": 8}, "size=8"),
        ({"scales": 0}, "scales=0"),
        ({"orientations": 2.5}, "orientations=2.5"),
        ({"positions": -1}, "positions=-1"),
        ({"n": 1}, "n=1"),
        ({"binarize": "yes"}, "binarize"),
        ({"shapes": 2}, "unknown option"),
    ],
)
def test_sprites_bad_options(opts, arg):
    with pytest.raises(ValueError, match=arg):
        data.load("sprites", **opts)

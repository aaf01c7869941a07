"""The streamed sprites grid: dSprites' counts, the in-memory loader's order and pixels."""

import itertools

import numpy as np
import pytest

from ppl_vae import data
from ppl_vae.data.sprites import MAX_RADIUS, SHAPES, _inside, factor_grid, render

SMALL = {"size": 16, "scales": 2, "orientations": 3, "positions": 4}


def _render_every_pixel(factors, size):
    """The renderer without windows: every pixel centre tested (the definition)."""
    centres = (np.arange(size) + 0.5) / size
    py, px = np.meshgrid(centres, centres, indexing="ij")
    out = np.zeros((len(factors), size * size), dtype=np.float32)
    for i, (s, scale, angle, x0, y0) in enumerate(factors):
        r = scale * MAX_RADIUS
        dx, dy = (px.ravel() - x0) / r, (y0 - py.ravel()) / r
        u = np.cos(angle) * dx + np.sin(angle) * dy
        v = -np.sin(angle) * dx + np.cos(angle) * dy
        out[i] = _inside(int(s), u, v)
    return out


def test_dsprites_grid_counts_without_rendering():
    grid = data.SpriteGrid(size=64)
    assert len(grid) == 3 * 6 * 40 * 32 * 32 == 737_280
    assert grid.shape == (3, 6, 40, 32, 32) and grid.data_dim == 4096
    assert grid.nbytes == {"float32": 737_280 * 4096 * 4, "uint8": 737_280 * 4096,
                           "packed_bits": 737_280 * 512}  # 377,487,360 bytes bit-packed
    assert len(np.unique(grid.factors(np.arange(0, len(grid), 997))[:, 2])) == 40
    last = grid.codes([len(grid) - 1])[0]
    np.testing.assert_array_equal(last, [2, 5, 39, 31, 31])
    with pytest.raises(ValueError, match="11.2 GiB as float32.*SpriteGrid"):
        data.load("sprites", size=64, grid="dsprites")  # 11 GiB: refused before rendering


def test_grid_order_and_pixels_are_the_loaders():
    grid = data.SpriteGrid(**SMALL)
    full = data.load("sprites", **SMALL)
    values = factor_grid(**SMALL)
    product = np.array(list(itertools.product(*values.values())))
    np.testing.assert_array_equal(grid.factors(np.arange(len(grid))), product)
    # every row of the in-memory dataset is the grid's image of its factors
    x = np.concatenate([full.x_train, full.x_test])
    f = np.concatenate([full.factors_train, full.factors_test])
    index = {tuple(row): i for i, row in enumerate(product)}
    at = np.array([index[tuple(row)] for row in f])
    np.testing.assert_array_equal(np.sort(at), np.arange(len(grid)))
    some = np.array([0, 5, 17, len(grid) - 1])
    pos = [int(np.flatnonzero(at == i)[0]) for i in some]
    np.testing.assert_array_equal(grid.render(some), x[pos])


def test_render_equals_testing_every_pixel_at_dsprites_size():
    grid = data.SpriteGrid(size=64)
    idx = np.random.default_rng(0).choice(len(grid), size=12, replace=False)
    idx = np.concatenate([idx, [0, len(grid) - 1]])  # smallest square, largest heart at a corner
    np.testing.assert_array_equal(grid.render(idx), _render_every_pixel(grid.factors(idx), 64))
    # also off the grid: larger than the largest scale, or cut off by the border
    odd = np.array([[2, 1.4, 0.3, 0.05, 0.95], [0, 1.0, 1.0, -0.05, 0.5], [1, 0.7, 2.0, 0.5, 1.1]])
    np.testing.assert_array_equal(render(odd, size=32), _render_every_pixel(odd, 32))


def test_indexing_is_rendering():
    import torch

    grid = data.SpriteGrid(**SMALL)
    idx = np.array([3, 1, 200])
    np.testing.assert_array_equal(grid[idx], grid.render(idx))
    np.testing.assert_array_equal(grid[torch.as_tensor(idx)], grid.render(idx))
    np.testing.assert_array_equal(grid[7], grid.render([7])[0])


def test_codes_and_index_of_are_inverse():
    grid = data.SpriteGrid(size=64)
    idx = np.array([0, 1, 1024, 123_456, 737_279])
    codes = grid.codes(idx)
    np.testing.assert_array_equal(grid.index_of(codes), idx)
    f = grid.factors(idx)
    for j, name in enumerate(grid.values):
        np.testing.assert_array_equal(f[:, j], grid.values[name][codes[:, j]])


def test_iter_batches_visit_every_image_once():
    grid = data.SpriteGrid(**SMALL)
    batches = list(grid.iter_batches(50, seed=3))
    seen = np.concatenate([b.indices for b in batches])
    np.testing.assert_array_equal(np.sort(seen), np.arange(len(grid)))
    assert [len(b.x) for b in batches] == [50] * (len(grid) // 50) + [len(grid) % 50]
    b = batches[1]
    np.testing.assert_array_equal(b.x, grid.render(b.indices))
    np.testing.assert_array_equal(b.y, b.factors[:, 0].astype(int))
    again = next(iter(grid.iter_batches(50, seed=3)))
    np.testing.assert_array_equal(again.indices, batches[0].indices)
    assert len(list(grid.iter_batches(50, drop_last=True))) == len(grid) // 50
    ordered = next(iter(grid.iter_batches(7, shuffle=False)))
    np.testing.assert_array_equal(ordered.indices, np.arange(7))


def test_subset_is_an_in_memory_dataset_of_distinct_images():
    grid = data.SpriteGrid(size=64)
    ds = grid.subset(60, seed=1)
    assert (ds.n_train, ds.n_test, ds.data_dim, ds.image_shape) == (48, 12, 4096, (64, 64))
    f = np.concatenate([ds.factors_train, ds.factors_test])
    assert len({tuple(r) for r in f}) == 60  # without replacement
    np.testing.assert_array_equal(ds.x_train, render(ds.factors_train, size=64))
    same = data.load("sprites", size=64, grid="dsprites", n=60, seed=1)
    np.testing.assert_array_equal(same.x_train, ds.x_train)
    assert same.params["counts"] == {"scales": 6, "orientations": 40, "positions": 32}
    assert tuple(same.params["shape_names"]) == SHAPES
    # the small grid keeps drawing with replacement unless told otherwise
    def distinct(d):
        return len({tuple(r) for r in np.concatenate([d.factors_train, d.factors_test])})

    assert distinct(data.load("sprites", **SMALL, n=300)) < 288  # 300 draws, 288 images
    assert distinct(data.load("sprites", **SMALL, n=288, replace=False)) == 288


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda g: g.render([[0, 1]]), "1-D array"),
        (lambda g: g.render([0.5]), "integers"),
        (lambda g: g.render([len(g)]), "pass indices in"),
        (lambda g: g.index_of([1, 2]), "\\[n, 5\\]"),
        (lambda g: next(g.iter_batches(0)), "batch_size=0"),
    ],
)
def test_bad_arguments_are_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call(data.SpriteGrid(**SMALL))


@pytest.mark.parametrize(
    "opts, match",
    [
        ({"grid": "full"}, "grid='full'"),
        ({"size": 16, "grid": "dsprites", "scales": 1, "orientations": 1, "positions": 1, "n": 5},
         "n=5 exceeds"),
        ({"replace": "no", "n": 5}, "replace"),
    ],
)
def test_bad_loader_options(opts, match):
    with pytest.raises(ValueError, match=match):
        data.load("sprites", **opts)

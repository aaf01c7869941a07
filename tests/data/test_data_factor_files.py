"""dSprites / Shapes3D loaders on small generated files of the published layout."""

import numpy as np
import pytest

import ppl_vae as pv

DSPRITES_SIZES = (1, 3, 6, 40, 32, 32)


def write_dsprites(path, rows=500, *, image_shape=(64, 64), classes=None, extra=None):
    rng = np.random.default_rng(0)
    if classes is None:
        classes = np.stack([rng.integers(0, s, rows) for s in DSPRITES_SIZES], axis=1)
    imgs = rng.integers(0, 2, size=(rows, *image_shape), dtype=np.uint8)
    np.savez_compressed(path, imgs=imgs, latents_classes=classes,
                        latents_values=classes.astype(float), **(extra or {}))
    return imgs, classes


def test_dsprites_subset_is_loaded_with_names_codes_and_pixels(tmp_path):
    path = tmp_path / "dsprites.npz"
    imgs, classes = write_dsprites(path)
    data = pv.data.load("dsprites", path=path, subset=True, test_fraction=0.2, seed=3)
    assert data.factor_names == ("color", "shape", "scale", "orientation", "posX", "posY")
    assert data.n_train == 400 and data.n_test == 100 and data.image_shape == (64, 64)
    assert data.params["subset"] is True and data.params["file_rows"] == 500
    # every loaded row is a file row with its own factors
    lookup = {img.tobytes(): c for img, c in zip(imgs.reshape(500, -1).astype(np.float32), classes)}
    for x, f in zip(data.x_train[:20], data.factors_train[:20]):
        assert np.array_equal(lookup[x.tobytes()], f)


def test_a_short_file_is_refused_without_subset(tmp_path):
    path = tmp_path / "dsprites.npz"
    write_dsprites(path)
    with pytest.raises(ValueError, match="has 500 rows, the published file 737280: pass subset=True"):
        pv.data.load("dsprites", path=path)


@pytest.mark.parametrize("kwargs, message", [
    ({"image_shape": (32, 32)}, r"'imgs' has shape \(500, 32, 32\)"),
    ({"classes": np.zeros((500, 5), dtype=int)}, r"'latents_classes' has shape \(500, 5\)"),
    ({"classes": np.full((500, 6), 3)}, "factor 'color' takes 4 values, the published 1"),
])
def test_files_off_the_published_layout_are_refused(tmp_path, kwargs, message):
    path = tmp_path / "bad.npz"
    write_dsprites(path, **kwargs)
    with pytest.raises(ValueError, match=message):
        pv.data.load("dsprites", path=path, subset=True)


def test_missing_key_path_and_budget(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="has no array 'imgs'"):
        pv.data.load("dsprites", path=path)
    with pytest.raises(ValueError, match="needs path="):
        pv.data.load("dsprites")
    with pytest.raises(ValueError, match="does not exist"):
        pv.data.load("dsprites", path=tmp_path / "nope.npz")
    good = tmp_path / "d.npz"
    write_dsprites(good)
    with pytest.raises(ValueError, match="memory budget"):
        pv.data.load("dsprites", path=good, subset=True, memory_budget=100_000)


def test_n_draws_rows(tmp_path):
    path = tmp_path / "d.npz"
    write_dsprites(path)
    data = pv.data.load("dsprites", path=path, subset=True, n=50)
    assert data.n_train + data.n_test == 50


def test_shapes3d_from_a_small_h5(tmp_path):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(0)
    sizes = (10, 10, 10, 8, 4, 15)
    codes = np.stack([rng.integers(0, s, 300) for s in sizes], axis=1)
    codes[:15, :] = np.arange(15)[:, None] % np.array(sizes)  # every value of every factor
    labels = codes / np.array(sizes)  # values, not codes, as in the published file
    images = rng.integers(0, 256, size=(300, 64, 64, 3), dtype=np.uint8)
    path = tmp_path / "3dshapes.h5"
    with h5py.File(path, "w") as fh:
        fh["images"], fh["labels"] = images, labels
    data = pv.data.load("shapes3d", path=path, subset=True, test_fraction=0.5)
    assert data.factor_names[0] == "floor_hue" and data.image_shape == (64, 64, 3)
    assert data.x_train.max() <= 1.0 and data.x_train.shape[1] == 64 * 64 * 3
    both = np.concatenate([data.factors_train, data.factors_test])
    assert sorted(both[:, 5].astype(int).tolist()) == sorted(codes[:, 5].tolist())
    with pytest.raises(ValueError, match="pass subset=True"):
        pv.data.load("shapes3d", path=path)


def test_binarize_thresholds_shapes3d_pixels(tmp_path):
    h5py = pytest.importorskip("h5py")
    images = np.full((20, 64, 64, 3), 200, dtype=np.uint8)
    images[:, :32] = 10
    labels = np.tile(np.arange(20)[:, None] % np.array([10, 10, 10, 8, 4, 15]), 1) / 20
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as fh:
        fh["images"], fh["labels"] = images, labels
    data = pv.data.load("shapes3d", path=path, subset=True, binarize=True)
    assert set(np.unique(data.x_train)) == {0.0, 1.0}
    assert data.x_train.mean() == pytest.approx(0.5)

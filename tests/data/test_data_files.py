"""User files: .npz round trip and MNIST IDX folders (plain and gzipped)."""

import gzip
import struct

import numpy as np
import pytest

from ppl_vae import data
from ppl_vae.data import read_idx


def _write_idx(path, array, *, gz=False):
    """Minimal IDX writer, independent of the reader under test."""
    codes = {np.dtype("uint8"): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    array = np.asarray(array)
    if array.dtype == np.int32:
        array = array.astype(">i4")
    if array.dtype == np.float32:
        array = array.astype(">f4")
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    payload = header + array.tobytes()
    opener = gzip.open if gz else open
    with opener(path, "wb") as fh:
        fh.write(payload)


def _mnist_folder(root, *, gz, n_train=7, n_test=3, rows=4, cols=5):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, rows, cols), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, rows, cols), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    root.mkdir(exist_ok=True)
    for name, arr in arrays.items():
        _write_idx(root / (name + (".gz" if gz else "")), arr, gz=gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_round_trip(tmp_path, gz):
    arrays = _mnist_folder(tmp_path / "mnist", gz=gz)
    ds = data.load(tmp_path / "mnist")
    assert ds.image_shape == (4, 5) and ds.x_train.shape == (7, 20) and ds.x_test.shape == (3, 20)
    np.testing.assert_allclose(
        ds.x_train, arrays["train-images-idx3-ubyte"].reshape(7, 20) / 255, rtol=1e-6
    )
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert ds.y_train.dtype == np.int64 and ds.x_train.dtype == np.float32
    # the named loader with root= gives the same data; binarize and n_train work
    named = data.load("mnist", root=str(tmp_path / "mnist"), binarize=True, n_train=2)
    np.testing.assert_array_equal(named.x_train, (ds.x_train[:2] > 0.5).astype(np.float32))
    assert set(np.unique(named.x_test)) <= {0.0, 1.0}


def test_read_idx_other_dtypes(tmp_path):
    ints = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    floats = np.linspace(-1, 1, 5, dtype=np.float32)
    _write_idx(tmp_path / "i", ints)
    _write_idx(tmp_path / "f.gz", floats, gz=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "i"), ints)
    np.testing.assert_array_equal(read_idx(tmp_path / "f.gz"), floats)


def test_idx_missing_and_corrupt_files(tmp_path):
    _mnist_folder(tmp_path / "m", gz=False)
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.*put the four IDX files"):
        data.load(tmp_path / "m")
    with pytest.raises(ValueError, match="does not exist.*root="):
        data.load("mnist", root=tmp_path / "nowhere")
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x09abc")
    with pytest.raises(ValueError, match="truncated"):
        data.load(tmp_path / "m")
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.load(tmp_path / "m")
    with pytest.raises(ValueError, match="root="):
        data.load(tmp_path / "m", root="x")


def test_npz_round_trip_with_split(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.random((50, 3)).astype(np.float32)
    y = np.arange(50) % 2
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    ds = data.load(str(tmp_path / "mine.npz"), test_fraction=0.2, seed=3)
    assert ds.name == "mine" and ds.n_train == 40 and ds.n_test == 10 and ds.image_shape is None
    # rows keep their labels, and train+test is exactly the file's rows
    both = np.concatenate([ds.x_train, ds.x_test])
    labels = np.concatenate([ds.y_train, ds.y_test])
    order = np.lexsort(both.T)
    np.testing.assert_array_equal(both[order], x[np.lexsort(x.T)])
    np.testing.assert_array_equal(labels[order], y[np.lexsort(x.T)])
    again = data.load(tmp_path / "mine.npz", test_fraction=0.2, seed=3)
    np.testing.assert_array_equal(again.x_test, ds.x_test)


def test_npz_given_test_split_images_and_binarize(tmp_path):
    x = np.arange(2 * 6 * 4, dtype=np.uint8).reshape(6, 2, 4) * 5
    np.savez(tmp_path / "img.npz", x=x, x_test=x[:2], y=np.arange(6), y_test=np.arange(2))
    ds = data.load(tmp_path / "img.npz")
    assert ds.image_shape == (2, 4) and ds.n_train == 6 and ds.n_test == 2
    np.testing.assert_allclose(ds.x_train, x.reshape(6, 8) / 255, rtol=1e-6)
    binary = data.load(tmp_path / "img.npz", binarize=True)
    np.testing.assert_array_equal(
        binary.x_test, (x[:2].reshape(2, 8) / 255 > 0.5).astype(np.float32)
    )


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"data": np.zeros((4, 2))}, "has no array 'x'.*holds: data"),
        ({"x": np.zeros(4)}, "shape"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(3)}, "'y'.*4 rows"),
        ({"x": np.zeros((4, 2)), "x_test": np.zeros((2, 2)), "y": np.zeros(4)}, "y_test"),
        ({"x": np.full((4, 2), np.nan)}, "NaN"),
    ],
)
def test_npz_bad_contents(tmp_path, arrays, match):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=match):
        data.load(tmp_path / "bad.npz")


def test_npz_missing_or_not_an_archive(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        data.load(tmp_path / "nope.npz")
    (tmp_path / "fake.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a readable .npz"):
        data.load(tmp_path / "fake.npz")
    with pytest.raises(ValueError, match="unknown option.*test_fraction, seed, binarize"):
        np.savez(tmp_path / "ok.npz", x=np.zeros((4, 2)))
        data.load(tmp_path / "ok.npz", size=3)

"""MNIST through download=True, with a file:// mirror of the real files in ../shared/data/mnist.

The checksums are the published MD5s of the uncompressed files; a corrupt or
truncated mirror is refused and nothing unverified stays in the cache folder.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

import ppl_vae as pv
from ppl_vae.data.download import MNIST_MD5

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"
pytestmark = pytest.mark.skipif(
    not (SHARED / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"real MNIST files not found in {SHARED} (the project's shared data folder)",
)


def _url(folder: Path) -> str:
    return folder.resolve().as_uri() + "/"


def test_download_from_a_file_mirror_verifies_and_caches(tmp_path):
    cache = tmp_path / "cache"
    ds = pv.data.load("mnist", root=cache, download=True, mirrors=[_url(SHARED)], n_test=500)
    assert ds.x_train.shape == (60_000, 784) and ds.x_test.shape == (500, 784)
    assert ds.image_shape == (28, 28) and set(ds.y_train.tolist()) == set(range(10))
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    files = sorted(p.name for p in cache.iterdir())
    assert files == sorted(f"{stem}.gz" for stem in MNIST_MD5)
    stamps = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    # a second call finds verified files and fetches nothing (a dead mirror is not touched)
    pv.data.load("mnist", root=cache, download=True, mirrors=["file:///nonexistent/"], n_train=10)
    assert stamps == {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}


def test_corrupt_or_truncated_mirror_is_refused_and_not_kept(tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(SHARED, bad)
    labels = bad / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[100] ^= 0xFF  # one flipped byte: the checksum differs
    labels.write_bytes(gzip.compress(bytes(raw)))
    images = bad / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:5000])  # truncated stream
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte"):
        pv.data.load("mnist", root=cache, download=True, mirrors=[_url(bad)])
    assert not (cache / "t10k-images-idx3-ubyte.gz").exists()
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporaries
    # the next mirror in the list is tried and wins
    ds = pv.data.load("mnist", root=cache, download=True, mirrors=[_url(bad), _url(SHARED)],
                      n_train=5, n_test=5)
    assert ds.x_train.shape == (5, 784)


def test_mirrors_without_download_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="download=True"):
        pv.data.load("mnist", root=tmp_path, mirrors=[_url(SHARED)])


def test_mirrors_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PPL_VAE_MNIST_MIRRORS", _url(SHARED))
    ds = pv.data.load("mnist", root=tmp_path / "c", download=True, n_train=3, n_test=3)
    assert ds.x_test.shape == (3, 784)


def test_a_damaged_cached_file_is_fetched_again(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "train-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    ds = pv.data.load("mnist", root=cache, download=True, mirrors=[_url(SHARED)], n_train=3,
                      n_test=3)
    assert ds.y_train.shape == (3,)
    assert (cache / "train-labels-idx1-ubyte.gz").stat().st_size > 1000

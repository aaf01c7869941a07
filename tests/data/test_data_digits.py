"""scikit-learn digits loader."""

from collections import Counter

import numpy as np
import pytest
from sklearn.datasets import load_digits as sk_load_digits

from ppl_vae import data


def test_digits_values_labels_and_split():
    ds = data.load("digits")
    assert ds.image_shape == (8, 8) and ds.data_dim == 64 and ds.name == "digits"
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert ds.n_train + ds.n_test == 1797
    assert set(ds.y_train) == set(range(10)) and ds.num_classes == 10
    # every test row is a real digit with its true label, intensities / 16
    sk = sk_load_digits()
    lookup = {
        row.tobytes(): label for row, label in zip((sk.data / 16).astype(np.float32), sk.target)
    }
    assert all(lookup[row.tobytes()] == label for row, label in zip(ds.x_test, ds.y_test))
    # stratified: each class is ~20 % test
    frac = np.bincount(ds.y_test) / (np.bincount(ds.y_test) + np.bincount(ds.y_train))
    assert np.all(np.abs(frac - 0.2) < 0.02)


def test_digits_split_reproducible_and_disjoint():
    a, b = data.load("digits"), data.load("digits")
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    # train and test partition the 1,797 digits: as multisets their union is the full set
    # (row multisets, because the raw data holds a few exact duplicate images)
    full = Counter(row.tobytes() for row in (sk_load_digits().data / 16).astype(np.float32))
    split = Counter(row.tobytes() for row in np.concatenate([a.x_train, a.x_test]))
    assert split == full
    c = data.load("digits", test_fraction=0.5)
    assert abs(c.n_test - 1797 / 2) < 10


def test_digits_binarize_and_subset():
    ds = data.load("digits", binarize=True)
    assert set(np.unique(ds.x_train)) == {0.0, 1.0}
    raw = data.load("digits")
    np.testing.assert_array_equal(ds.x_train, (raw.x_train > 0.5).astype(np.float32))
    low = ds.subset(classes=range(5))
    assert set(low.y_train) == set(range(5)) and set(low.y_test) == set(range(5))


@pytest.mark.parametrize("opts", [{"test_fraction": 0.0}, {"test_fraction": "x"}, {"binarize": 1}])
def test_digits_bad_options(opts):
    (name,) = opts
    with pytest.raises(ValueError, match=name):
        data.load("digits", **opts)

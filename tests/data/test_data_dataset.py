"""Dataset container: validation, subset/relabel, reproducible splits."""

import numpy as np
import pytest

from ppl_vae.data import Dataset, split_indices


def _toy():
    rng = np.random.default_rng(0)
    return Dataset(
        x_train=rng.random((20, 4)),
        x_test=rng.random((10, 4)),
        y_train=np.arange(20) % 5,
        y_test=np.arange(10) % 5,
        image_shape=(2, 2),
        name="toy",
    )


def test_fields_are_converted_to_documented_dtypes():
    ds = _toy()
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.data_dim == 4 and ds.num_classes == 5 and ds.n_train == 20
    assert ds.images("test").shape == (10, 2, 2)
    assert "n_train=20" in repr(ds)
    with pytest.raises(AttributeError):
        ds.name = "other"  # frozen


def test_subset_keeps_only_given_classes_and_relabels():
    ds = _toy()
    sub = ds.subset(classes=[3, 1])
    assert set(sub.y_train) == {1, 3} and set(sub.y_test) == {1, 3}
    np.testing.assert_array_equal(sub.x_train, ds.x_train[np.isin(ds.y_train, [1, 3])])
    rel = ds.subset(classes=[3, 1], relabel=True)
    assert rel.params["label_map"] == {3: 0, 1: 1}
    np.testing.assert_array_equal(rel.y_train, np.where(sub.y_train == 3, 0, 1))
    assert rel.num_classes == 2
    head = ds.subset(n_train=3, n_test=2)
    np.testing.assert_array_equal(head.x_train, ds.x_train[:3])
    assert head.n_test == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"classes": [7]}, "matches no training rows"),
        ({"classes": []}, "classes"),
        ({"n_train": 0}, "n_train=0"),
    ],
)
def test_subset_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _toy().subset(**kwargs)


def test_subset_without_labels_is_an_error():
    ds = Dataset(x_train=np.zeros((3, 2)), x_test=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="needs labels"):
        ds.subset(classes=[0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"x_test": np.zeros((2, 3))}, "share the dimension"),
        ({"y_train": np.zeros(4)}, "y_train has shape"),
        ({"y_train": np.zeros(3) + 0.5, "y_test": np.zeros(2)}, "non-integer"),
        ({"y_train": np.zeros(3)}, "only one split"),
        ({"image_shape": (3, 3)}, "image_shape"),
        (
            {
                "factors_train": np.zeros((3, 1)),
                "factors_test": np.zeros((2, 1)),
                "factor_names": ("a", "b"),
            },
            "factor_names",
        ),
    ],
)
def test_dataset_validation(kwargs, match):
    base = {"x_train": np.zeros((3, 2)), "x_test": np.zeros((2, 2))}
    with pytest.raises(ValueError, match=match):
        Dataset(**{**base, **kwargs})


def test_split_indices_disjoint_reproducible_and_stratified():
    y = np.repeat(np.arange(4), [10, 20, 30, 40])
    a_train, a_test = split_indices(100, test_fraction=0.3, seed=1, stratify=y)
    _b_train, b_test = split_indices(100, test_fraction=0.3, seed=1, stratify=y)
    np.testing.assert_array_equal(a_test, b_test)
    assert not set(a_train) & set(a_test)
    assert sorted(np.concatenate([a_train, a_test])) == list(range(100))
    np.testing.assert_array_equal(np.bincount(y[a_test]), [3, 6, 9, 12])
    with pytest.raises(ValueError, match="test_fraction=0"):
        split_indices(10, test_fraction=0, seed=0)

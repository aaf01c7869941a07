"""The :class:`Dataset` container every loader returns, plus shared split helpers.

A dataset is a frozen bundle of numpy arrays: flattened data ``x`` (float32
``[N, D]``), optional integer labels ``y`` (int64 ``[N]``), optional ground-truth
generating factors (``[N, F]``) and, for image data, the shape to un-flatten a row
into. Loaders build one with :func:`split_indices` (a reproducible, optionally
stratified train/test split) and :func:`binarize` (threshold at 0.5).
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field

import numpy as np

from ppl_vae import _checks
from ppl_vae._checks import _short


def binarize(x: np.ndarray, *, threshold: float = 0.5) -> np.ndarray:
    """Return ``x > threshold`` as float32 0/1 values (same shape as ``x``).

    Examples
    --------
    >>> import numpy as np
    >>> from ppl_vae.data import binarize
    >>> binarize(np.array([0.1, 0.5, 0.9]))
    array([0., 0., 1.], dtype=float32)
    """
    return (np.asarray(x) > threshold).astype(np.float32)


def split_indices(
    n: int, *, test_fraction: float, seed: int, stratify: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Reproducible train/test index split of ``range(n)``.

    Parameters
    ----------
    n : int
        Number of datapoints.
    test_fraction : float
        Fraction in (0, 1) sent to the test split (rounded, at least one point per side).
    seed : int
        Seed of the permutation; the same seed always gives the same split.
    stratify : array [n], optional
        Class labels; when given, every class is split in the same proportion
        (classes with a single member go to train).

    Returns
    -------
    train, test : int64 arrays
        Disjoint index arrays whose union is ``range(n)``, each shuffled.

    Examples
    --------
    >>> from ppl_vae.data import split_indices
    >>> train, test = split_indices(10, test_fraction=0.2, seed=0)
    >>> len(train), len(test), sorted([*train, *test]) == list(range(10))
    (8, 2, True)
    """
    test_fraction = _checks.fraction("test_fraction", test_fraction)
    if n < 2:
        raise ValueError(f"cannot split {n} datapoint(s) into train and test: pass at least 2")
    rng = np.random.default_rng(seed)
    if stratify is None:
        order = rng.permutation(n)
        n_test = min(max(round(test_fraction * n), 1), n - 1)
        return order[n_test:], order[:n_test]
    stratify = np.asarray(stratify)
    train, test = [], []
    for label in np.unique(stratify):
        members = rng.permutation(np.flatnonzero(stratify == label))
        k = round(test_fraction * len(members)) if len(members) > 1 else 0
        test.append(members[:k])
        train.append(members[k:])
    train, test = np.concatenate(train), np.concatenate(test)
    if len(test) == 0:  # every class too small: fall back to a plain split
        return split_indices(n, test_fraction=test_fraction, seed=seed)
    return rng.permutation(train), rng.permutation(test)


def _as_2d(name: str, value, dtype) -> np.ndarray | None:
    if value is None:
        return None
    arr = _checks.real_array(name, value, columns=True, finite=False, empty_ok=True, dtype=dtype)
    return np.ascontiguousarray(arr)


def _as_labels(name: str, value, n: int) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.shape != (n,):
        raise ValueError(
            f"{name} has shape {arr.shape}: pass one integer label per row, shape ({n},)"
        )
    if arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)):
        raise ValueError(f"{name} holds non-integer values: pass integer class labels")
    if arr.dtype.kind not in "iuf" and arr.size:
        raise ValueError(f"{name} has dtype {arr.dtype}: pass integer class labels")
    return arr.astype(np.int64)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test dataset of flattened datapoints.

    Attributes
    ----------
    x_train, x_test : float32 arrays [N, D]
        Data, one flattened datapoint per row.
    y_train, y_test : int64 arrays [N] or None
        Class labels (digit, sprite shape, mixture component), when there are any.
    factors_train, factors_test : float arrays [N, F] or None
        Ground-truth generating factors (sprites) or true latents (linear_gaussian).
    factor_names : tuple of str or None
        Names of the ``F`` factor columns.
    image_shape : tuple of int or None
        Shape that one row reshapes to for display, e.g. ``(8, 8)``.
    name : str
        Dataset name, e.g. ``"digits"``.
    params : dict
        True generating parameters (synthetic sets) or rendering settings (sprites).

    Examples
    --------
    >>> import numpy as np
    >>> from ppl_vae.data import Dataset
    >>> ds = Dataset(x_train=np.zeros((8, 4), np.float32), x_test=np.ones((2, 4), np.float32),
    ...              y_train=np.arange(8) % 2, y_test=np.array([0, 1]), image_shape=(2, 2))
    >>> ds.n_train, ds.n_test, ds.data_dim, ds.num_classes
    (8, 2, 4, 2)
    >>> ds.subset(classes=[1]).n_train
    4
    """

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray | None = None
    y_test: np.ndarray | None = None
    factors_train: np.ndarray | None = None
    factors_test: np.ndarray | None = None
    factor_names: tuple[str, ...] | None = None
    image_shape: tuple[int, ...] | None = None
    name: str = "data"
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        put = lambda key, value: object.__setattr__(self, key, value)
        for split in ("train", "test"):
            x = _as_2d(f"x_{split}", getattr(self, f"x_{split}"), np.float32)
            if x is None:
                raise ValueError(f"x_{split}=None is invalid: pass an array of shape [N, D]")
            put(f"x_{split}", x)
            put(f"y_{split}", _as_labels(f"y_{split}", getattr(self, f"y_{split}"), len(x)))
            f = _as_2d(f"factors_{split}", getattr(self, f"factors_{split}"), np.float64)
            if f is not None and len(f) != len(x):
                raise ValueError(
                    f"factors_{split} has {len(f)} rows but x_{split} has {len(x)}: "
                    "pass one factor row per datapoint"
                )
            put(f"factors_{split}", f)
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise ValueError(
                f"x_train has {self.x_train.shape[1]} columns but x_test has "
                f"{self.x_test.shape[1]}: train and test data must share the dimension"
            )
        if (self.y_train is None) != (self.y_test is None):
            raise ValueError(
                "labels given for only one split: pass both y_train and y_test or neither"
            )
        if (self.factors_train is None) != (self.factors_test is None):
            raise ValueError("factors given for only one split: pass both or neither")
        if self.factor_names is not None:
            put("factor_names", tuple(str(n) for n in self.factor_names))
            if self.factors_train is None or len(self.factor_names) != self.factors_train.shape[1]:
                raise ValueError(
                    f"factor_names={self.factor_names} does not match the factor columns: "
                    "pass one name per column of factors_train"
                )
        if self.image_shape is not None:
            put("image_shape", tuple(int(s) for s in self.image_shape))
            if int(np.prod(self.image_shape)) != self.data_dim:
                raise ValueError(
                    f"image_shape={self.image_shape} has {int(np.prod(self.image_shape))} pixels "
                    f"but rows have {self.data_dim} values: pass a matching shape or None"
                )
        put("params", dict(self.params))

    # ----------------------------------------------------------------- properties
    @property
    def data_dim(self) -> int:
        """Number of values per datapoint, ``D``."""
        return int(self.x_train.shape[1])

    @property
    def num_classes(self) -> int | None:
        """``max label + 1`` over both splits, or None without labels."""
        if self.y_train is None:
            return None
        return int(max(self.y_train.max(initial=-1), self.y_test.max(initial=-1))) + 1

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    @property
    def n_test(self) -> int:
        return len(self.x_test)

    # -------------------------------------------------------------------- helpers
    def images(self, split: str = "train") -> np.ndarray:
        """The ``split`` data reshaped to ``[N, *image_shape]`` (image datasets only)."""
        if split not in ("train", "test"):
            raise ValueError(f"split={_short(split)} is not recognised; valid values: train, test")
        if self.image_shape is None:
            raise ValueError(
                f"dataset {self.name!r} has no image_shape: it is not an image dataset"
            )
        x = getattr(self, f"x_{split}")
        return x.reshape(len(x), *self.image_shape)

    def subset(
        self,
        *,
        classes=None,
        n_train: int | None = None,
        n_test: int | None = None,
        relabel: bool = False,
    ) -> Dataset:
        """A new Dataset keeping only some rows.

        Parameters
        ----------
        classes : iterable of int, optional
            Keep only datapoints whose label is one of these (e.g. digits 0-4 as the
            in-domain set, 5-9 as out-of-domain).
        n_train, n_test : int, optional
            Keep only the first ``n`` remaining rows of each split.
        relabel : bool
            Map the kept ``classes`` to ``0..len(classes)-1`` in the order given,
            so a classifier can be built with ``num_classes=len(classes)``. The
            mapping is stored in ``params["label_map"]``.
        """
        params = dict(self.params)
        keep = {"train": np.arange(self.n_train), "test": np.arange(self.n_test)}
        mapping = None
        if classes is not None:
            if self.y_train is None:
                raise ValueError(
                    f"classes={_short(classes)} needs labels, but dataset {self.name!r} has none"
                )
            classes = [int(c) for c in np.atleast_1d(np.asarray(classes))]
            if not classes:
                raise ValueError("classes=[] is invalid: pass at least one label to keep")
            for split in keep:
                y = getattr(self, f"y_{split}")
                keep[split] = np.flatnonzero(np.isin(y, classes))
            if len(keep["train"]) == 0:
                present = sorted(set(np.unique(self.y_train).tolist()))
                raise ValueError(
                    f"classes={classes} matches no training rows: labels present are {present}"
                )
            if relabel:
                mapping = {c: i for i, c in enumerate(dict.fromkeys(classes))}
                params["label_map"] = mapping
        for split, limit in (("train", n_train), ("test", n_test)):
            if limit is not None:
                if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 1:
                    raise ValueError(f"n_{split}={_short(limit)} is invalid: pass an integer >= 1")
                keep[split] = keep[split][: int(limit)]
        new = {}
        for split, idx in keep.items():
            new[f"x_{split}"] = self.x_train[idx] if split == "train" else self.x_test[idx]
            y = getattr(self, f"y_{split}")
            if y is not None:
                y = y[idx]
                if mapping is not None:
                    y = np.array([mapping[int(v)] for v in y], dtype=np.int64)
            new[f"y_{split}"] = y
            f = getattr(self, f"factors_{split}")
            new[f"factors_{split}"] = None if f is None else f[idx]
        return dataclasses.replace(self, **new, params=params)

    def __repr__(self) -> str:
        parts = [
            f"name={self.name!r}",
            f"n_train={self.n_train}",
            f"n_test={self.n_test}",
            f"data_dim={self.data_dim}",
        ]
        if self.image_shape is not None:
            parts.append(f"image_shape={self.image_shape}")
        if self.y_train is not None:
            parts.append(f"num_classes={self.num_classes}")
        if self.factor_names is not None:
            parts.append(f"factor_names={self.factor_names}")
        return f"Dataset({', '.join(parts)})"

"""scikit-learn's bundled 8x8 handwritten digits (no download).

1,797 grey-level images of the digits 0-9 (UCI "optdigits" test set as shipped
with :func:`sklearn.datasets.load_digits`). Intensities 0..16 are divided by 16
so pixels lie in [0, 1]; ``binarize=True`` thresholds them at 0.5. The
train/test split is stratified by digit and uses a fixed seed, so every call
with the same ``test_fraction`` returns the same split.
"""

from __future__ import annotations

import numpy as np

from ppl_vae import _checks
from ppl_vae.data.dataset import Dataset, split_indices
from ppl_vae.data.dataset import binarize as _binarize

#: Seed of the fixed train/test split; changing it changes every result table.
SPLIT_SEED = 0


def load_digits(*, test_fraction: float = 0.2, binarize: bool = False) -> Dataset:
    """Load the scikit-learn digits as a :class:`Dataset`.

    Parameters
    ----------
    test_fraction : float
        Fraction of each digit class held out for testing, in (0, 1).
    binarize : bool
        Threshold intensities at 0.5 to get 0/1 pixels (for Bernoulli likelihoods).

    Returns
    -------
    Dataset
        ``x`` float32 ``[N, 64]`` in [0, 1], ``y`` the digit (0-9), ``image_shape=(8, 8)``.

    Examples
    --------
    >>> from ppl_vae.data import load_digits
    >>> ds = load_digits(binarize=True)
    >>> ds.x_train.shape[1], ds.image_shape, ds.num_classes
    (64, (8, 8), 10)
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    test_fraction = _checks.fraction("test_fraction", test_fraction)
    _checks.flag("binarize", binarize)
    bunch = _sk_load_digits()
    x = (bunch.data / 16.0).astype(np.float32)  # [1797, 64], intensities 0..16
    y = bunch.target.astype(np.int64)
    if binarize:
        x = _binarize(x)
    train, test = split_indices(len(x), test_fraction=test_fraction, seed=SPLIT_SEED, stratify=y)
    return Dataset(
        x_train=x[train],
        x_test=x[test],
        y_train=y[train],
        y_test=y[test],
        image_shape=(8, 8),
        name="digits",
        params={"test_fraction": test_fraction, "binarize": binarize, "split_seed": SPLIT_SEED},
    )

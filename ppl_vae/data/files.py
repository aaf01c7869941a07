"""User data from local files: ``.npz`` archives and MNIST-format IDX folders.

``.npz``
    Must hold an array ``x`` ``[N, ...]`` (rows are flattened; if ``x`` has more
    than two axes, ``x.shape[1:]`` becomes ``image_shape``). Optional arrays:
    ``y`` (integer labels), ``x_test`` / ``y_test`` (a given test split; otherwise
    ``x`` is split by ``test_fraction``), ``factors`` / ``factors_test`` and
    ``factor_names``. Integer pixel data (``uint8``) is divided by 255.
IDX folder (MNIST, Fashion-MNIST, ...)
    A directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each optionally
    gzipped (``.gz``) and also accepted with a ``.`` before ``idx`` as some
    mirrors name them. Images are flattened to ``[N, rows*cols]`` and scaled to
    [0, 1]. The IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/) is
    two zero bytes, a type code, the number of axes, one big-endian uint32 per
    axis, then the big-endian data.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from ppl_vae import _checks
from ppl_vae.data.dataset import Dataset, split_indices
from ppl_vae.data.dataset import binarize as _binarize

#: IDX type code -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
#: Where ``load("mnist")`` looks when no ``root`` is given.
DEFAULT_MNIST_ROOT = Path(os.environ.get("PPL_VAE_MNIST", "~/.cache/ppl_vae/mnist")).expanduser()


def _to_unit(x: np.ndarray) -> np.ndarray:
    """Scale 8-bit pixel data to [0, 1]; other dtypes are only cast to float32."""
    if x.dtype == np.uint8:
        return (x / 255.0).astype(np.float32)
    return x.astype(np.float32)


def read_idx(path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a numpy array of its native shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path} is truncated or corrupt: header says shape {shape} ({expected} bytes) "
            f"but {len(raw) - header} data bytes follow"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def _find_idx(root: Path, stem: str) -> Path:
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (root / name).is_file():
            return root / name
    wanted = ", ".join(f"{s}[.gz]" for s in IDX_FILES.values())
    raise ValueError(
        f"MNIST file {stem!r} (or {stem}.gz) not found in {str(root)!r}: put the four IDX files "
        f"({wanted}) in that folder, or pass the folder that holds them"
    )


def load_mnist(
    root=None, *, binarize: bool = False, n_train: int | None = None, n_test: int | None = None
) -> Dataset:
    """Load MNIST-format IDX files from a local folder (nothing is downloaded).

    Parameters
    ----------
    root : str or Path, optional
        Folder with the four IDX files; defaults to ``$PPL_VAE_MNIST`` or
        ``~/.cache/ppl_vae/mnist``.
    binarize : bool
        Threshold intensities at 0.5 to get 0/1 pixels.
    n_train, n_test : int, optional
        Keep only the first ``n`` images of each split (quick experiments).

    Returns
    -------
    Dataset
        ``x`` float32 ``[N, rows*cols]`` in [0, 1], ``y`` the labels, ``image_shape=(rows, cols)``.
    """
    root = DEFAULT_MNIST_ROOT if root is None else Path(root).expanduser()
    _checks.flag("binarize", binarize)
    if not root.is_dir():
        raise ValueError(
            f"MNIST folder {str(root)!r} does not exist: create it and put the IDX files "
            f"({', '.join(IDX_FILES.values())}, optionally .gz) in it, or pass root=<folder>"
        )
    arrays = {key: read_idx(_find_idx(root, stem)) for key, stem in IDX_FILES.items()}
    parts = {}
    for split, limit in (("train", n_train), ("test", n_test)):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{split} IDX files disagree: images have shape {images.shape}, labels {labels.shape}; "
                "expected [N, rows, cols] images and [N] labels"
            )
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ValueError(f"n_{split}={limit!r} is invalid: pass an integer >= 1 or None")
            images, labels = images[:limit], labels[:limit]
        x = _to_unit(images.reshape(len(images), -1))
        parts[f"x_{split}"] = _binarize(x) if binarize else x
        parts[f"y_{split}"] = labels.astype(np.int64)
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise ValueError(
            "train and test IDX images have different sizes: use files from one dataset"
        )
    return Dataset(
        **parts,
        image_shape=tuple(arrays["train_images"].shape[1:]),
        name=root.name or "mnist",
        params={"root": str(root), "binarize": binarize},
    )


def load_npz(path, *, test_fraction: float = 0.2, seed: int = 0, binarize: bool = False) -> Dataset:
    """Load a user ``.npz`` archive (see the module docstring for its arrays).

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file.
    test_fraction : float
        Fraction held out for testing when the file has no ``x_test``.
    seed : int
        Seed of that split (stratified by ``y`` when labels are present).
    binarize : bool
        Threshold values at 0.5 to get 0/1 data.
    """
    path = Path(path).expanduser()
    test_fraction = _checks.fraction("test_fraction", test_fraction)
    seed = _checks.seed("seed", seed)
    _checks.flag("binarize", binarize)
    if not path.is_file():
        raise ValueError(f"data file {str(path)!r} does not exist: check the path")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as err:
        raise ValueError(
            f"{str(path)!r} is not a readable .npz archive ({err}): save it with np.savez"
        ) from err
    if "x" not in arrays:
        raise ValueError(
            f"{str(path)!r} has no array 'x' (it holds: {', '.join(sorted(arrays)) or 'nothing'}): "
            "save your data with np.savez(path, x=data, y=labels)"
        )
    x = arrays["x"]
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(
            f"array 'x' in {str(path)!r} has shape {x.shape}: pass [N, D] or [N, H, W] data"
        )
    image_shape = tuple(x.shape[1:]) if x.ndim > 2 else None
    flat = lambda a: _to_unit(np.asarray(a).reshape(len(a), -1))
    y, factors = arrays.get("y"), arrays.get("factors")
    for key, value in (("y", y), ("factors", factors)):
        if value is not None and (value.ndim == 0 or len(value) != len(x)):
            raise ValueError(
                f"array {key!r} in {str(path)!r} has shape {value.shape} but 'x' has {len(x)} rows: "
                f"save one {key} entry per row of x"
            )
    if "x_test" in arrays:
        for key, present in (("y", "y_test"), ("factors", "factors_test")):
            if (key in arrays) != (present in arrays):
                raise ValueError(
                    f"{str(path)!r} has {key if key in arrays else present!r} but not "
                    f"{present if key in arrays else key!r}: give both splits or neither"
                )
        parts = {
            "x_train": flat(x),
            "x_test": flat(arrays["x_test"]),
            "y_train": y,
            "y_test": arrays.get("y_test"),
            "factors_train": factors,
            "factors_test": arrays.get("factors_test"),
        }
    else:
        train, test = split_indices(len(x), test_fraction=test_fraction, seed=seed, stratify=y)
        x = flat(x)
        parts = {
            "x_train": x[train],
            "x_test": x[test],
            "y_train": None if y is None else y[train],
            "y_test": None if y is None else y[test],
            "factors_train": None if factors is None else factors[train],
            "factors_test": None if factors is None else factors[test],
        }
    if not (np.isfinite(parts["x_train"]).all() and np.isfinite(parts["x_test"]).all()):
        raise ValueError(f"{str(path)!r} contains NaN or inf in its data: clean or drop those rows")
    if binarize:
        parts["x_train"], parts["x_test"] = _binarize(parts["x_train"]), _binarize(parts["x_test"])
    names = arrays.get("factor_names")
    return Dataset(
        **parts,
        factor_names=None if names is None else tuple(str(s) for s in names),
        image_shape=image_shape,
        name=path.stem,
        params={"path": str(path), "binarize": binarize},
    )

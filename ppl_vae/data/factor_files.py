"""The published ground-truth-factor image sets, read from a file the user gives.

Nothing is downloaded. Each file is checked against its published layout before its
pixels are read: the arrays it must hold, their shapes and dtypes, and that every
factor code lies in its published range.

``"dsprites"`` — Matthey, Higgins, Hassabis & Lerchner (2017), ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``
    ``imgs`` uint8 ``[737280, 64, 64]`` (0/1), ``latents_classes`` ``[737280, 6]``,
    ``latents_values`` ``[737280, 6]``; factors color 1, shape 3, scale 6,
    orientation 40, posX 32, posY 32, rows in row-major order over them.
``"shapes3d"`` — Burgess & Kim (2018), ``3dshapes.h5`` (needs ``h5py``)
    ``images`` uint8 ``[480000, 64, 64, 3]``, ``labels`` float ``[480000, 6]``;
    factors floor_hue 10, wall_hue 10, object_hue 10, scale 8, shape 4,
    orientation 15 (labels are the factor values; each column is mapped to codes).

The factors of the returned :class:`~ppl_vae.data.Dataset` are the integer factor
codes (``factor_names`` the published names); pixels are scaled to [0, 1].

Subsets. A file with fewer rows than published (the same keys and per-row shapes) is
refused unless ``subset=True``: then its rows are used as they are, and
``Dataset.params["subset"]`` records it (``params["file_rows"]``: the file's rows). ``n`` draws that many rows at random from the
file (all by default); the memory budget (:func:`ppl_vae._checks.memory_budget`) is
checked for the file's arrays before they are read and for the float32 rows kept.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ppl_vae import _checks
from ppl_vae.data.dataset import Dataset, split_indices
from ppl_vae.data.dataset import binarize as _binarize
from ppl_vae.data.files import _npz_sizes


class Layout(NamedTuple):
    images: str  # key of the image array
    factors: str  # key of the factor array (codes or values)
    rows: int
    image_shape: tuple[int, ...]
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]


LAYOUTS = {
    "dsprites": Layout("imgs", "latents_classes", 737_280, (64, 64),
                       ("color", "shape", "scale", "orientation", "posX", "posY"),
                       (1, 3, 6, 40, 32, 32)),
    "shapes3d": Layout("images", "labels", 480_000, (64, 64, 3),
                       ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"),
                       (10, 10, 10, 8, 4, 15)),
}


def _check_arrays(name: str, path: Path, images_shape, factors_shape, subset: bool) -> int:
    """Rows of the file after checking its arrays' shapes against the published layout."""
    layout = LAYOUTS[name]
    where = f"{name} file {str(path)!r}"
    if tuple(images_shape[1:]) != layout.image_shape:
        raise ValueError(f"{where}: {layout.images!r} has shape {tuple(images_shape)}, not "
                         f"[N, {', '.join(map(str, layout.image_shape))}]: pass the published file")
    if tuple(factors_shape) != (images_shape[0], len(layout.factor_names)):
        raise ValueError(f"{where}: {layout.factors!r} has shape {tuple(factors_shape)}, not "
                         f"[{images_shape[0]}, {len(layout.factor_names)}]: pass the published file")
    rows = int(images_shape[0])
    if rows > layout.rows or (rows < layout.rows and not subset):
        fix = ("pass subset=True to use a file with fewer rows" if rows < layout.rows
               else "pass the published file")
        raise ValueError(f"{where} has {rows} rows, the published file {layout.rows}: {fix}")
    return rows


def _codes(name: str, path: Path, factors: np.ndarray) -> np.ndarray:
    """Integer factor codes ``[N, F]``, checked against the published factor sizes."""
    layout = LAYOUTS[name]
    if name == "dsprites":
        codes = factors.astype(np.int64)
        if not np.array_equal(codes, factors):
            raise ValueError(f"dsprites file {str(path)!r}: latents_classes holds non-integers")
    else:
        codes = np.stack([np.unique(c, return_inverse=True)[1].reshape(-1) for c in factors.T], 1)
    counts = codes.max(axis=0) + 1 if len(codes) else np.zeros(len(layout.factor_sizes))
    for f, (count, size) in enumerate(zip(counts, layout.factor_sizes)):
        if codes[:, f].min() < 0 or count > size:
            raise ValueError(
                f"{name} file {str(path)!r}: factor {layout.factor_names[f]!r} takes "
                f"{int(count)} values, the published {size}: pass the published file")
    return codes


def _rows(total: int, n, seed: int) -> np.ndarray:
    if n is None:
        return np.arange(total)
    n = _checks.positive_int("n", n, maximum=total, fix=f"pass 1 <= n <= {total}")
    return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))


def _read_npz(path: Path, budget: int):
    layout = LAYOUTS["dsprites"]
    _npz_sizes(path, budget)
    with np.load(path) as archive:
        missing = [k for k in (layout.images, layout.factors) if k not in archive.files]
        if missing:
            raise ValueError(f"dsprites file {str(path)!r} has no array {missing[0]!r}: pass "
                             "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz")
        return archive[layout.images], archive[layout.factors]


def _read_h5(path: Path, budget: int, rows_of):
    try:
        import h5py
    except ImportError:
        raise ImportError("load('shapes3d') reads an HDF5 file: pip install h5py") from None
    layout = LAYOUTS["shapes3d"]
    with h5py.File(path, "r") as fh:
        missing = [k for k in (layout.images, layout.factors) if k not in fh]
        if missing:
            raise ValueError(f"shapes3d file {str(path)!r} has no dataset {missing[0]!r}: "
                             "pass 3dshapes.h5")
        images, labels = fh[layout.images], fh[layout.factors]
        rows = rows_of(images.shape, labels.shape)
        _checks.within_budget(f"shapes3d images ({len(rows)} rows)",
                              len(rows) * math.prod(images.shape[1:]), budget, "pass a smaller n")
        return images[rows] if len(rows) < images.shape[0] else images[()], labels[()][rows]


def load_factor_file(name: str, path, *, n=None, subset: bool = False, seed: int = 0,
                     test_fraction: float = 0.2, binarize: bool = False,
                     memory_budget=None) -> Dataset:
    """Load ``name`` (``"dsprites"`` or ``"shapes3d"``) from ``path``; see the module docstring."""
    if path is None:
        raise ValueError(f"load({name!r}) needs path=: the published file, which is not "
                         "downloaded for you")
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"{name} file {str(path)!r} does not exist: check the path")
    seed = _checks.seed("seed", seed)
    budget = _checks.memory_budget(memory_budget)
    subset = _checks.flag("subset", subset)
    chosen = {}

    def rows_of(images_shape, factors_shape):
        total = chosen["total"] = _check_arrays(name, path, images_shape, factors_shape, subset)
        chosen["rows"] = _rows(total, n, seed)
        _checks.within_budget(f"{name} rows as float32 ({len(chosen['rows'])} rows)",
                              4 * len(chosen["rows"]) * math.prod(images_shape[1:]), budget,
                              "pass a smaller n")
        return chosen["rows"]

    if name == "dsprites":
        images, factors = _read_npz(path, budget)
        rows = rows_of(images.shape, factors.shape)
        images, factors = images[rows], factors[rows]
    else:
        images, factors = _read_h5(path, budget, rows_of)
    return _dataset(name, images, _codes(name, path, np.asarray(factors)),
                    file_rows=chosen["total"], seed=seed, test_fraction=test_fraction,
                    binarize=_checks.flag("binarize", binarize))


def _dataset(name, images, codes, *, file_rows, seed, test_fraction, binarize) -> Dataset:
    layout = LAYOUTS[name]
    x = images.reshape(len(images), -1)
    x = x.astype(np.float32) if name == "dsprites" else (x / 255.0).astype(np.float32)
    x = _binarize(x) if binarize else x
    train, test = split_indices(len(x), test_fraction=_checks.fraction("test_fraction",
                                                                       test_fraction), seed=seed)
    return Dataset(
        x_train=x[train], x_test=x[test],
        factors_train=codes[train].astype(np.float64), factors_test=codes[test].astype(np.float64),
        factor_names=layout.factor_names, image_shape=layout.image_shape, name=name,
        params={"factor_sizes": layout.factor_sizes, "file_rows": file_rows,
                "subset": file_rows < layout.rows},
    )


def load_dsprites(path=None, *, n=None, subset: bool = False, seed: int = 0,
                  test_fraction: float = 0.2, binarize: bool = False,
                  memory_budget=None) -> Dataset:
    """The real dSprites file at ``path``; see :mod:`ppl_vae.data.factor_files`.

    Parameters
    ----------
    path : str or Path
        ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``.
    n : int, optional
        Rows drawn at random (``seed``) from the file; default all 737,280 (11.3 GiB
        as float32: pass ``n`` on a small machine).
    subset : bool, default False
        Accept a file with fewer rows than published.
    seed : int, default 0
        Seeds the row draw and the train/test split.
    test_fraction : float, default 0.2
    binarize : bool, default False
        Threshold pixels at 0.5 (dSprites' pixels are 0/1 already).
    memory_budget : int or str, optional
        Most bytes one array may take (default ``$PPL_VAE_MEMORY_BUDGET`` or half the RAM).

    Examples
    --------
    A 10-row file of the published layout (the real one has 737,280 rows):

    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import ppl_vae as pv
    >>> rng = np.random.default_rng(0)
    >>> sizes = (1, 3, 6, 40, 32, 32)              # color, shape, scale, orientation, posX, posY
    >>> classes = np.stack([rng.integers(0, s, 10) for s in sizes], axis=1)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "dsprites.npz"
    ...     np.savez(path, imgs=rng.integers(0, 2, (10, 64, 64), dtype=np.uint8),
    ...              latents_classes=classes, latents_values=classes.astype(float))
    ...     data = pv.data.load_dsprites(path, subset=True)   # subset: fewer rows than published
    >>> data.n_train, data.n_test, data.image_shape, data.x_train.shape
    (8, 2, (64, 64), (8, 4096))
    >>> data.factor_names[3], data.params["subset"], data.params["file_rows"]
    ('orientation', True, 10)
    """
    return load_factor_file("dsprites", path, n=n, subset=subset, seed=seed,
                            test_fraction=test_fraction, binarize=binarize,
                            memory_budget=memory_budget)


def load_shapes3d(path=None, *, n=None, subset: bool = False, seed: int = 0,
                  test_fraction: float = 0.2, binarize: bool = False,
                  memory_budget=None) -> Dataset:
    """The Shapes3D file ``3dshapes.h5`` at ``path`` (needs ``h5py``); arguments as for
    :func:`load_dsprites` (all 480,000 rows are 22 GiB as float32: pass ``n``).

    Examples
    --------
    A 12-row file of the published layout (the real one has 480,000 rows); ``labels``
    holds factor values, returned as integer codes:

    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import pytest
    >>> h5py = pytest.importorskip("h5py")          # Shapes3D is an HDF5 file
    >>> import ppl_vae as pv
    >>> rng = np.random.default_rng(0)
    >>> sizes = (10, 10, 10, 8, 4, 15)   # floor_hue, wall_hue, object_hue, scale, shape, orientation
    >>> labels = np.stack([rng.integers(0, s, 12) / s for s in sizes], axis=1)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "3dshapes.h5"
    ...     with h5py.File(path, "w") as fh:
    ...         _ = fh.create_dataset("images", data=rng.integers(0, 256, (12, 64, 64, 3),
    ...                                                           dtype=np.uint8))
    ...         _ = fh.create_dataset("labels", data=labels)
    ...     data = pv.data.load_shapes3d(path, subset=True, test_fraction=0.25)
    >>> data.n_train, data.n_test, data.image_shape, data.x_train.shape
    (9, 3, (64, 64, 3), (9, 12288))
    >>> float(data.x_train.min()) >= 0.0 and float(data.x_train.max()) <= 1.0
    True
    >>> data.factor_names[4], bool((data.factors_train[:, 4] < 4).all())
    ('shape', True)
    """
    return load_factor_file("shapes3d", path, n=n, subset=subset, seed=seed,
                            test_fraction=test_fraction, binarize=binarize,
                            memory_budget=memory_budget)

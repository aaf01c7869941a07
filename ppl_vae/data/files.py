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
import math
import os
import struct
import zipfile
import zlib
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
    with np.errstate(over="ignore"):  # values beyond float32 become inf and are refused
        return x.astype(np.float32)


#: Deflate cannot shrink data more than ~1032:1; a gzip whose header claims more is lying.
MAX_DEFLATE_RATIO = 1032


def _idx_error(path: Path, what: str) -> ValueError:
    return ValueError(f"IDX file {str(path)!r} {what}: use the original (optionally gzipped) file")


def _read_exactly(fh, n: int, path: Path) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise _idx_error(path, f"is truncated ({len(data)} of {n} bytes)")
    return data


def read_idx(path, *, memory_budget=None) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a numpy array of its native shape.

    Reading is bounded: the header's claimed size is checked against the file's
    real size (for ``.gz``, against what deflate can hold) and against the memory
    budget before any data is read, and a gzip is never inflated past the size its
    header declares. Float data must be finite.

    Parameters
    ----------
    path : str or Path
        The IDX file.
    memory_budget : int or str, optional
        Most bytes the array may take (e.g. ``"2G"``); default ``$PPL_VAE_MEMORY_BUDGET``,
        else half the physical memory.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from ppl_vae.data import read_idx
    >>> with tempfile.TemporaryDirectory() as tmp:   # IDX: magic (uint8, 2-d), dims, bytes
    ...     path = Path(tmp) / "tiny-idx2-ubyte"
    ...     _ = path.write_bytes(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6)))
    ...     read_idx(path)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    path = Path(path)
    budget = _checks.memory_budget(memory_budget)
    try:
        on_disk = path.stat().st_size
        compressed = path.suffix == ".gz"
        with (gzip.open if compressed else open)(path, "rb") as fh:
            magic = fh.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
                raise _idx_error(path, f"is not an IDX file (bad magic number {magic!r})")
            ndim = magic[3]
            if ndim == 0:
                raise _idx_error(path, "declares 0 axes")
            shape = struct.unpack(f">{ndim}I", _read_exactly(fh, 4 * ndim, path))
            dtype = np.dtype(_IDX_DTYPES[magic[2]])
            expected = math.prod(shape) * dtype.itemsize
            header = 4 + 4 * ndim
            if not compressed and header + expected != on_disk:
                raise _idx_error(
                    path, f"is truncated or corrupt: its header says shape {shape} "
                    f"({expected} bytes) but {on_disk - header} data bytes follow",
                )
            if compressed and expected > MAX_DEFLATE_RATIO * on_disk + 1024:
                raise _idx_error(
                    path, f"claims shape {shape} ({expected} bytes), more than a "
                    f"{on_disk}-byte gzip file can hold",
                )
            _checks.within_budget(
                f"IDX file {str(path)!r} (shape {shape})", expected, budget,
                "pass a smaller file",
            )
            raw = _read_exactly(fh, expected, path)
            if compressed and fh.read(1):
                raise _idx_error(
                    path, f"holds more data than its header's shape {shape} ({expected} bytes)"
                )
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise _idx_error(path, f"cannot be read ({type(err).__name__}: {err})") from None
    arr = np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    if dtype.kind == "f" and not np.isfinite(arr).all():
        raise _idx_error(path, "contains NaN or inf")
    return arr


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
    root=None,
    *,
    binarize: bool = False,
    n_train: int | None = None,
    n_test: int | None = None,
    memory_budget=None,
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
    memory_budget : int or str, optional
        Most bytes one file's array may take (see :func:`read_idx`).

    Returns
    -------
    Dataset
        ``x`` float32 ``[N, rows*cols]`` in [0, 1], ``y`` the labels, ``image_shape=(rows, cols)``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from ppl_vae.data import load_mnist
    >>> def idx(shape):                                # IDX bytes of zeros, uint8
    ...     head = bytes([0, 0, 8, len(shape)])
    ...     return head + b"".join(n.to_bytes(4, "big") for n in shape) + bytes(
    ...         __import__("math").prod(shape))
    >>> with tempfile.TemporaryDirectory() as root:
    ...     for split, n in (("train", 6), ("t10k", 2)):
    ...         _ = (Path(root) / f"{split}-images-idx3-ubyte").write_bytes(idx((n, 4, 4)))
    ...         _ = (Path(root) / f"{split}-labels-idx1-ubyte").write_bytes(idx((n,)))
    ...     ds = load_mnist(root)
    >>> ds.x_train.shape, ds.x_test.shape, ds.image_shape
    ((6, 16), (2, 16), (4, 4))
    """
    root = DEFAULT_MNIST_ROOT if root is None else Path(root).expanduser()
    _checks.flag("binarize", binarize)
    if not root.is_dir():
        raise ValueError(
            f"MNIST folder {str(root)!r} does not exist: create it and put the IDX files "
            f"({', '.join(IDX_FILES.values())}, optionally .gz) in it, or pass root=<folder>"
        )
    for split, limit in (("train", n_train), ("test", n_test)):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"n_{split}={limit!r} is invalid: pass an integer >= 1 or None")
    budget = _checks.memory_budget(memory_budget)
    arrays = {
        key: read_idx(_find_idx(root, stem), memory_budget=budget)
        for key, stem in IDX_FILES.items()
    }
    parts = {}
    for split, limit in (("train", n_train), ("test", n_test)):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{split} IDX files disagree: images have shape {images.shape}, labels {labels.shape}; "
                "expected [N, rows, cols] images and [N] labels"
            )
        if limit is not None:
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


def _npz_sizes(path: Path, budget: int) -> None:
    """Check every array's header of the archive against its real size and ``budget``.

    Runs before ``np.load`` reads any data, so a header claiming 10**13 values is
    refused without allocating.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                    header = member.tell()
                nbytes = math.prod(shape) * dtype.itemsize
                name = info.filename.removesuffix(".npy")
                if dtype.hasobject:
                    raise ValueError(
                        f"array {name!r} in {str(path)!r} holds Python objects, which are "
                        "never loaded: save numeric arrays"
                    )
                if header + nbytes != info.file_size:
                    raise ValueError(
                        f"array {name!r} in {str(path)!r} claims shape {shape} "
                        f"({nbytes} bytes) but holds {info.file_size - header}: the file is "
                        "corrupt; save it again with np.savez"
                    )
                _checks.within_budget(
                    f"array {name!r} in {str(path)!r} (shape {shape})", nbytes, budget,
                    "pass a smaller file",
                )
                if info.file_size > MAX_DEFLATE_RATIO * max(info.compress_size, 1) + 1024:
                    raise ValueError(
                        f"array {name!r} in {str(path)!r} claims {info.file_size} bytes from "
                        f"{info.compress_size} compressed: the file is corrupt"
                    )
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, SyntaxError, TypeError) as err:
        raise ValueError(
            f"{str(path)!r} is not a readable .npz archive ({type(err).__name__}: "
            f"{str(err)[:150]}): save it with np.savez"
        ) from None
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise ValueError(
            f"{str(path)!r} is not a readable .npz archive ({str(err)[:150]}): save it with np.savez"
        ) from None


def _numeric(path: Path, key: str, value: np.ndarray, *, integer: bool = False) -> np.ndarray:
    if value.dtype.kind not in "biuf":
        want = "integer labels" if integer else "real numbers"
        raise ValueError(
            f"array {key!r} in {str(path)!r} has dtype {value.dtype}: save {want}"
        )
    return value


def load_npz(
    path,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    binarize: bool = False,
    memory_budget=None,
) -> Dataset:
    """Load a user ``.npz`` archive (see the module docstring for its arrays).

    A file without ``x_test`` is split: ``test_fraction`` of its rows (20 % by
    default), drawn with ``seed`` (stratified by ``y`` when present), become
    ``x_test`` and the rest ``x_train`` — so ``x_train`` alone is not every row.
    Save ``x_test`` in the file to fix the split yourself; ``ppl-vae evaluate``
    scores every row of an ``.npz`` file unless given ``--split`` (and
    ``--test-fraction``). ``params["split"]`` says which: ``{"test_fraction": f,
    "seed": s}`` when this loader split the rows, ``"file"`` when the file held
    ``x_test``.

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
    memory_budget : int or str, optional
        Most bytes one array may take (e.g. ``"2G"``), checked against the array
        headers before anything is read; default ``$PPL_VAE_MEMORY_BUDGET``, else
        half the physical memory.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from ppl_vae.data import load_npz
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "data.npz"
    ...     np.savez(path, x=np.zeros((10, 3), np.float32))
    ...     ds = load_npz(path, test_fraction=0.2, seed=0)
    >>> ds.x_train.shape, ds.x_test.shape
    ((8, 3), (2, 3))
    """
    path = Path(path).expanduser()
    test_fraction = _checks.fraction("test_fraction", test_fraction)
    seed = _checks.seed("seed", seed)
    _checks.flag("binarize", binarize)
    if not path.is_file():
        raise ValueError(f"data file {str(path)!r} does not exist: check the path")
    _npz_sizes(path, _checks.memory_budget(memory_budget))
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(
            f"{str(path)!r} is not a readable .npz archive ({err}): save it with np.savez"
        ) from err
    if "x" not in arrays:
        raise ValueError(
            f"{str(path)!r} has no array 'x' (it holds: {', '.join(sorted(arrays)) or 'nothing'}): "
            "save your data with np.savez(path, x=data, y=labels)"
        )
    for key in ("x", "x_test", "factors", "factors_test"):
        if key in arrays:
            _numeric(path, key, arrays[key])
    for key in ("y", "y_test"):
        if key in arrays:
            _numeric(path, key, arrays[key], integer=True)
    x = arrays["x"]
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(
            f"array 'x' in {str(path)!r} has shape {x.shape}: pass [N, D] or [N, H, W] data"
        )
    if int(np.prod(x.shape[1:])) == 0:
        raise ValueError(
            f"array 'x' in {str(path)!r} has shape {x.shape}: each row needs at least one value"
        )
    image_shape = tuple(x.shape[1:]) if x.ndim > 2 else None
    flat = lambda a: _to_unit(np.asarray(a).reshape(len(a), -1))
    y, factors = arrays.get("y"), arrays.get("factors")
    for key in ("y", "y_test"):
        if key in arrays and arrays[key].ndim != 1:
            raise ValueError(
                f"array {key!r} in {str(path)!r} has shape {arrays[key].shape}: save one integer "
                "label per row of x, shape [N]"
            )
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
        params={"path": str(path), "binarize": binarize,
                "split": "file" if "x_test" in arrays
                else {"test_fraction": test_fraction, "seed": seed}},
    )

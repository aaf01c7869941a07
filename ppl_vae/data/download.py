"""MNIST fetched on request: ``pv.data.load("mnist", download=True)``.

The four gzipped IDX files are fetched from the first mirror that answers
(``mirrors=``, or ``$PPL_VAE_MNIST_MIRRORS`` as a comma-separated list; any
``urllib`` URL, ``file://`` included), checked against the MD5 of the published
uncompressed files, and only then moved into the cache folder. A corrupted or
truncated download is a ``ValueError`` naming the file and is not kept; files
already in the folder that pass the check are not fetched again.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ppl_vae import _checks
from ppl_vae.data.dataset import Dataset
from ppl_vae.data.files import DEFAULT_MNIST_ROOT, IDX_FILES, load_mnist

#: MD5 of each uncompressed file, as published with MNIST (LeCun, Cortes and Burges).
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
#: Uncompressed sizes, which cap decompression (a larger stream is refused).
MNIST_BYTES = {
    "train-images-idx3-ubyte": 47_040_016,
    "train-labels-idx1-ubyte": 60_008,
    "t10k-images-idx3-ubyte": 7_840_016,
    "t10k-labels-idx1-ubyte": 10_008,
}
#: Mirrors tried in order when none are given.
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_TIMEOUT_S = 60


def mirrors_from(mirrors=None) -> list[str]:
    """The mirror list: ``mirrors``, else ``$PPL_VAE_MNIST_MIRRORS``, else the defaults."""
    if mirrors is None:
        env = os.environ.get("PPL_VAE_MNIST_MIRRORS")
        mirrors = env.split(",") if env else DEFAULT_MIRRORS
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    out = [str(m).strip() for m in mirrors if str(m).strip()]
    if not out:
        raise ValueError(f"mirrors={mirrors!r} is empty: pass one or more base URLs")
    return [m if m.endswith("/") else m + "/" for m in out]


def _uncompressed_md5(gz_bytes: bytes, stem: str) -> str:
    """MD5 of the decompressed stream, refusing more bytes than the file should hold."""
    limit = MNIST_BYTES[stem]
    digest, size = hashlib.md5(), 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(gz_bytes)) as fh:
            while chunk := fh.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise ValueError(f"{stem}.gz inflates beyond its {limit} bytes")
                digest.update(chunk)
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{stem}.gz is not a valid gzip stream ({err})") from err
    return digest.hexdigest()


def _verified(path: Path, stem: str) -> bool:
    """True for a cached file that passes its checksum; a damaged one is fetched again."""
    if not path.is_file():
        return False
    try:
        return _uncompressed_md5(path.read_bytes(), stem) == MNIST_MD5[stem]
    except ValueError:
        return False


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
        return response.read(64 * 2**20)  # the largest file is ~10 MB compressed


def fetch_mnist(root=None, *, mirrors=None) -> Path:
    """Make sure ``root`` holds the four verified MNIST files, fetching what is missing.

    Returns the folder. Raises ``ValueError`` when no mirror gives a file that
    passes its checksum; nothing unverified is left in the folder.

    Examples
    --------
    >>> import tempfile
    >>> from ppl_vae.data import fetch_mnist
    >>> with tempfile.TemporaryDirectory() as root:   # a mirror without the files: refused
    ...     fetch_mnist(root, mirrors=["file:///nonexistent/"])
    Traceback (most recent call last):
        ...
    ValueError: ...
    """
    root = DEFAULT_MNIST_ROOT if root is None else Path(root).expanduser()
    urls = mirrors_from(mirrors)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the MNIST folder {str(root)!r}: {err.strerror}") from err
    for stem in IDX_FILES.values():
        target = root / f"{stem}.gz"
        if _verified(target, stem):
            continue
        problems = []
        for base in urls:
            try:
                data = _fetch(base + f"{stem}.gz")
                got = _uncompressed_md5(data, stem)
            except (urllib.error.URLError, OSError, ValueError) as err:
                problems.append(f"{base}: {getattr(err, 'reason', err)}")
                continue
            if got != MNIST_MD5[stem]:
                problems.append(f"{base}: checksum {got} != {MNIST_MD5[stem]} (corrupt or truncated)")
                continue
            with tempfile.NamedTemporaryFile(dir=root, prefix=f".{stem}.", delete=False) as tmp:
                try:
                    tmp.write(data)
                except OSError:
                    Path(tmp.name).unlink(missing_ok=True)
                    raise
            os.replace(tmp.name, target)
            break
        else:
            raise ValueError(
                f"could not fetch a valid {stem}.gz into {str(root)!r} from any mirror ("
                + "; ".join(problems)
                + "): pass mirrors=[...] or set PPL_VAE_MNIST_MIRRORS, or put the files there"
            )
    return root


def load_mnist_dataset(root=None, *, download: bool = False, mirrors=None, binarize=False,
                       n_train: int | None = None, n_test: int | None = None) -> Dataset:
    """``load("mnist")``: read the local IDX folder, fetching it first with ``download=True``.

    Other options are :func:`~ppl_vae.data.files.load_mnist`'s.
    """
    _checks.flag("download", download)
    if download:
        root = fetch_mnist(root, mirrors=mirrors)
    elif mirrors is not None:
        raise ValueError("mirrors= is only used with download=True: add download=True")
    return load_mnist(root, binarize=binarize, n_train=n_train, n_test=n_test)

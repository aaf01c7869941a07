"""Datasets: ``load(name_or_path, **options) -> Dataset``.

Built-in names (nothing is downloaded):

``"digits"``
    scikit-learn's bundled 8x8 handwritten digits in [0, 1]; options
    ``test_fraction``, ``binarize``. See :mod:`ppl_vae.data.digits`.
``"sprites"``
    procedurally rendered dSprites-style binary images with ground-truth factors
    (shape, scale, orientation, pos_x, pos_y); options ``size``, ``scales``,
    ``orientations``, ``positions``, ``grid`` (``"small"``, or ``"dsprites"``:
    dSprites' 737,280 combinations), ``n``, ``replace``, ``seed``, ``test_fraction``,
    ``binarize``. See :mod:`ppl_vae.data.sprites`; a grid too large for memory is
    streamed in rendered batches by :class:`SpriteGrid` (:mod:`ppl_vae.data.sprite_grid`).
``"gmm_synthetic"``
    a diagonal Gaussian mixture with known ``weights``, ``means``, ``scales`` in
    ``Dataset.params``; options ``num_components``, ``data_dim``, ``n``,
    ``separation``, ``seed``, ``test_fraction``.
``"linear_gaussian"``
    ``x = W z + b + sigma * eps`` with known ``W``, ``b``, ``sigma``; options
    ``data_dim``, ``latent_dim``, ``sigma``, ``n``, ``seed``, ``test_fraction``.
``"dsprites"``, ``"shapes3d"``
    the published ground-truth-factor files from a local ``path`` (nothing is
    downloaded), checked against their published layout; options ``path``, ``n``,
    ``subset``, ``seed``, ``test_fraction``, ``binarize``, ``memory_budget``. See
    :mod:`ppl_vae.data.factor_files`.
``"mnist"``
    MNIST IDX files from a local folder; options ``root`` (default
    ``$PPL_VAE_MNIST`` or ``~/.cache/ppl_vae/mnist``), ``download`` (fetch the four
    files from ``mirrors`` into ``root`` and check their MD5 first), ``binarize``, ``n_train``,
    ``n_test``.

Or a path: a ``.npz`` file (array ``x``, optional ``y``, ``x_test``, ``y_test``;
options ``test_fraction``, ``seed``, ``binarize``), or a folder of MNIST-format
IDX files (options as for ``"mnist"`` without ``root``).

Examples
--------
>>> import ppl_vae as pv
>>> ds = pv.data.load("digits", binarize=True)
>>> ds.x_train.shape, ds.image_shape
((1438, 64), (8, 8))
>>> in_domain = ds.subset(classes=[0, 1, 2, 3, 4])
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from ppl_vae.data.dataset import Dataset, binarize, split_indices
from ppl_vae.data.digits import load_digits
from ppl_vae.data.download import fetch_mnist, load_mnist_dataset
from ppl_vae.data.factor_files import load_dsprites, load_shapes3d
from ppl_vae.data.files import load_mnist, load_npz, read_idx
from ppl_vae.data.sprite_grid import SpriteBatch, SpriteGrid
from ppl_vae.data.sprites import load_sprites
from ppl_vae.data.sprites import render as render_sprites
from ppl_vae.data.synthetic import load_gmm_synthetic, load_linear_gaussian

__all__ = [
    "LOADERS",
    "Dataset",
    "SpriteBatch",
    "SpriteGrid",
    "binarize",
    "fetch_mnist",
    "load",
    "load_digits",
    "load_dsprites",
    "load_gmm_synthetic",
    "load_linear_gaussian",
    "load_mnist",
    "load_npz",
    "load_shapes3d",
    "load_sprites",
    "options",
    "read_idx",
    "render_sprites",
    "split_indices",
]

#: Dataset name -> loader. A new built-in dataset is one loader plus one entry here.
LOADERS = {
    "digits": load_digits,
    "sprites": load_sprites,
    "gmm_synthetic": load_gmm_synthetic,
    "linear_gaussian": load_linear_gaussian,
    "mnist": load_mnist_dataset,
    "dsprites": load_dsprites,
    "shapes3d": load_shapes3d,
}


def _options_of(loader, *, path_given: bool = False) -> list[str]:
    # every parameter, except the file path when load() passes it positionally
    names = inspect.signature(loader).parameters
    return [name for name in names if not (path_given and name == "path")]


def options(name_or_path) -> list[str]:
    """Option names :func:`load` accepts for a built-in dataset (e.g. ``"size"`` for
    rendered data); ``[]`` for anything else (a file's loader is chosen by its path).

    Examples
    --------
    >>> import ppl_vae as pv
    >>> pv.data.options("digits")
    ['test_fraction', 'binarize']
    >>> pv.data.options("data.npz")                          # a file: no dataset options
    []
    """
    loader = LOADERS.get(name_or_path) if isinstance(name_or_path, str) else None
    return _options_of(loader) if loader is not None else []


def _call(loader, label: str, *args, **options) -> Dataset:
    valid = _options_of(loader, path_given=bool(args))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for dataset {label!r}; "
            f"valid options: {', '.join(valid) or 'none'}"
        )
    return loader(*args, **options)


def load(name_or_path, **options) -> Dataset:
    """Load a dataset by name or from a local file/folder.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        A built-in name (see the module docstring: ``"digits"``, ``"sprites"``,
        ``"gmm_synthetic"``, ``"linear_gaussian"``, ``"mnist"``), a path to a
        ``.npz`` file, or a path to a folder of MNIST IDX files.
    **options
        Keyword options of the chosen loader; an unknown option is a ValueError
        that lists the valid ones.

    Returns
    -------
    Dataset

    Examples
    --------
    >>> import ppl_vae as pv
    >>> ds = pv.data.load("gmm_synthetic", n=100, seed=0)
    >>> ds.x_train.shape, ds.x_test.shape
    ((80, 2), (20, 2))
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ValueError(
            f"name_or_path={name_or_path!r} is invalid: pass a dataset name "
            f"({', '.join(LOADERS)}) or a path to a .npz file or an IDX folder"
        )
    if isinstance(name_or_path, str) and name_or_path in LOADERS:
        return _call(LOADERS[name_or_path], name_or_path, **options)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if "root" in options:
            raise ValueError(
                "root= is only for load('mnist', root=...): the folder is already given"
            )
        return _call(load_mnist, str(path), path, **options)
    if path.suffix == ".npz":
        if not path.is_file():
            raise ValueError(f"data file {str(path)!r} does not exist: check the path")
        return _call(load_npz, str(path), path, **options)
    raise ValueError(
        f"unknown dataset {str(name_or_path)!r}: valid names are {', '.join(LOADERS)}, "
        "or pass a path to an existing .npz file or a folder of MNIST IDX files"
    )

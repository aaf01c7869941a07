"""The full sprites grid, streamed: images rendered on demand from their grid index.

dSprites has 3 shapes x 6 scales x 40 orientations x 32 x 32 positions = 737,280
images of 64 x 64 pixels: 11.3 GiB as float32, 2.8 GiB as bytes, 360 MiB bit-packed.
:class:`SpriteGrid` holds none of them. An image is a function of its index in
the grid (row-major over :data:`~ppl_vae.data.sprites.FACTOR_NAMES`, the order of
``load_sprites(..., n=None)``), so the factors of any index are computed by
``np.unravel_index`` and its pixels by :func:`~ppl_vae.data.sprites.render` (15,000 to
30,000 64 x 64 images a second on one CPU core). Memory is one batch of images.

Example
-------
>>> grid = SpriteGrid(size=64)                 # dSprites' grid, 737,280 images
>>> for batch in grid.iter_batches(256, seed=0):  # doctest: +SKIP
...     loss = step(batch.x)                   # float32 [256, 4096]
>>> data = grid.subset(20_000, seed=0)         # an ordinary in-memory Dataset  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from ppl_vae import _checks
from ppl_vae.data.dataset import Dataset
from ppl_vae.data.sprites import (
    FACTOR_NAMES,
    check_size,
    factor_grid,
    grid_counts,
    grid_factors,
    load_sprites,
    render,
)


class SpriteBatch(NamedTuple):
    """One batch of :meth:`SpriteGrid.iter_batches`.

    Examples
    --------
    >>> from ppl_vae.data import SpriteGrid
    >>> batch = next(SpriteGrid(size=16, grid="small").iter_batches(4, seed=0))
    >>> batch._fields
    ('indices', 'x', 'factors', 'y')
    >>> batch.x.shape, batch.factors.shape
    ((4, 256), (4, 5))
    """

    indices: np.ndarray  # int64 [B]: positions in the grid
    x: np.ndarray  # float32 [B, size*size]
    factors: np.ndarray  # float64 [B, 5]
    y: np.ndarray  # int64 [B]: the shape index


class SpriteGrid:
    """Every combination of the sprites' factors, rendered on demand.

    Parameters
    ----------
    size : int
        Image side in pixels (64: dSprites' size).
    scales, orientations, positions : int, optional
        Factor counts; default dSprites' (6, 40, 32), see ``grid``.
    grid : {"dsprites", "small"}
        Which counts the omitted ones take (as in :func:`~ppl_vae.data.load_sprites`).

    Examples
    --------
    >>> from ppl_vae.data import SpriteGrid
    >>> grid = SpriteGrid(size=16, grid="small")           # 3 shapes x 4 x 8 x 8 x 8
    >>> grid.shape, grid.data_dim
    ((3, 4, 8, 8, 8), 256)
    >>> grid.subset(50, seed=0).x_train.shape
    (40, 256)
    """

    def __init__(self, *, size: int = 64, scales: int | None = None,
                 orientations: int | None = None, positions: int | None = None,
                 grid: str = "dsprites"):
        self.size = check_size(size)
        self.grid = grid
        self.counts = grid_counts(grid, scales=scales, orientations=orientations,
                                  positions=positions)
        self.values = factor_grid(size=self.size, **self.counts)
        self.shape = tuple(len(self.values[name]) for name in FACTOR_NAMES)

    def __len__(self) -> int:
        return math.prod(self.shape)

    def __repr__(self) -> str:
        return (f"SpriteGrid(size={self.size}, n={len(self)}, "
                f"shape={dict(zip(FACTOR_NAMES, self.shape))})")

    @property
    def data_dim(self) -> int:
        return self.size * self.size

    @property
    def image_shape(self) -> tuple[int, int]:
        return (self.size, self.size)

    @property
    def nbytes(self) -> dict[str, int]:
        """Bytes the whole grid would take held in memory, per storage format."""
        pixels = len(self) * self.data_dim
        return {"float32": 4 * pixels, "uint8": pixels, "packed_bits": len(self) * math.ceil(
            self.data_dim / 8)}

    # ------------------------------------------------------------------ indices
    def _indices(self, indices) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise ValueError(
                f"indices of shape {idx.shape} and dtype {idx.dtype} are invalid: pass a 1-D "
                "array of integers"
            )
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValueError(
                f"indices range over [{idx.min()}, {idx.max()}] but the grid holds {len(self)} "
                f"images: pass indices in [0, {len(self) - 1}]"
            )
        return idx

    def codes(self, indices) -> np.ndarray:
        """Integer factor codes ``[n, 5]`` (which value of each factor) of ``indices``."""
        return np.stack(np.unravel_index(self._indices(indices), self.shape), axis=1)

    def factors(self, indices) -> np.ndarray:
        """Factor values ``[n, 5]`` (shape, scale, orientation, pos_x, pos_y) of ``indices``."""
        return grid_factors(self.values, self._indices(indices))

    def index_of(self, codes) -> np.ndarray:
        """Grid positions of integer factor ``codes [n, 5]`` (the inverse of :meth:`codes`)."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[1] != len(FACTOR_NAMES):
            raise ValueError(f"codes has shape {codes.shape}: pass an array [n, 5]")
        return np.ravel_multi_index(tuple(codes.T), self.shape)

    # ------------------------------------------------------------------- images
    def render(self, indices) -> np.ndarray:
        """Images ``float32 [n, size*size]`` of grid positions ``indices``."""
        return render(self.factors(indices), size=self.size)

    def __getitem__(self, indices) -> np.ndarray:
        """``grid[indices]`` is :meth:`render`: rows of a lazily indexed ``[N, D]`` array,
        so code that only needs ``len(x)`` and ``x[idx]`` takes the grid for an array."""
        if np.ndim(indices) == 0:
            return self.render([indices])[0]
        return self.render(indices)

    def iter_batches(self, batch_size: int, *, seed: int = 0, shuffle: bool = True,
                     drop_last: bool = False) -> Iterator[SpriteBatch]:
        """One pass over the grid in batches, each rendered when it is needed.

        Parameters
        ----------
        batch_size : int
        seed : int
            Seeds the order (a permutation of all indices, 8 bytes per image).
        shuffle : bool
            False: grid order.
        drop_last : bool
            Skip a last batch smaller than ``batch_size``.

        Yields
        ------
        SpriteBatch
            ``indices``, ``x`` ``[B, size*size]``, ``factors [B, 5]``, ``y`` (shape).
        """
        batch_size = _checks.positive_int("batch_size", batch_size)
        seed = _checks.seed("seed", seed)
        order = (np.random.default_rng(seed).permutation(len(self)) if shuffle
                 else np.arange(len(self)))
        for start in range(0, len(self), batch_size):
            idx = order[start : start + batch_size]
            if drop_last and len(idx) < batch_size:
                return
            f = grid_factors(self.values, idx)
            yield SpriteBatch(idx, render(f, size=self.size), f, f[:, 0].astype(np.int64))

    def subset(self, n: int, *, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
        """``n`` distinct images drawn at random from the grid, as an in-memory Dataset.

        The same as ``pv.data.load("sprites", n=n, replace=False, ...)`` with this
        grid's size and counts.
        """
        return load_sprites(size=self.size, grid=self.grid, **self.counts, n=n, replace=False,
                            seed=seed, test_fraction=test_fraction)

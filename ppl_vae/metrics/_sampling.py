"""Factor-controlled batches for the intervention metrics (BetaVAE and FactorVAE scores).

Those scores need representations of datapoints whose factors are chosen: a batch in
which one factor takes given values while the others vary at random. A *sampler* is
any object with

- ``factor_sizes``: tuple of ints, the number of values of each factor;
- ``factor_names``: tuple of F labels;
- ``draw(n, rng, fix=None) -> (representations [n, L], codes [n, F])``: ``n``
  datapoints with random factors; ``fix=(k, values)`` (``values`` int ``[n]``) sets
  factor ``k`` of row ``i`` to code ``values[i]``.

Two are provided:

:class:`ArraySampler`
    In-memory ``(latents, factors)``, e.g. the encoder means of a dataset: a drawn row
    is a random stored row, and with ``fix`` a random stored row whose factor ``k``
    has the wanted code (the other factors are then distributed as in the data).
:class:`GridSampler`
    A factor grid that renders any combination by index (``pv.data.SpriteGrid``: it
    has ``shape``, ``index_of(codes)`` and ``render(indices)``) and an ``encode``
    function from images ``[n, D]`` to representations ``[n, L]``: factors are drawn
    uniformly from the grid, exactly as disentanglement_lib draws them.
"""

from __future__ import annotations

import numpy as np

from ppl_vae.metrics._arrays import factor_codes, latent_array


def factor_names_of(factors, factor_names, num_factors: int) -> list:
    """``factor_names``, else a DataFrame's column names, else ``0..F-1``."""
    if factor_names is None and hasattr(factors, "columns"):
        factor_names = [str(c) for c in factors.columns]
    if factor_names is None:
        return list(range(num_factors))
    names = list(factor_names)
    if len(names) != num_factors:
        raise ValueError(
            f"factor_names has {len(names)} entries but factors has {num_factors} columns: "
            "give one name per factor column"
        )
    return names


class ArraySampler:
    """Draws stored rows of ``(latents [N, L], factors [N, F])``; see the module docstring.

    Examples
    --------
    >>> import numpy as np
    >>> from ppl_vae.metrics import ArraySampler
    >>> factors = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 25)   # 2 binary factors
    >>> latents = factors + 0.1 * np.random.default_rng(0).standard_normal((100, 2))
    >>> sampler = ArraySampler(latents, factors, factor_names=["shape", "size"])
    >>> sampler.factor_sizes, sampler.factor_names
    ((2, 2), ('shape', 'size'))
    >>> reps, codes = sampler.draw(5, np.random.default_rng(0), fix=(0, np.ones(5, dtype=int)))
    >>> reps.shape, codes[:, 0].tolist()                # factor 0 fixed to code 1
    ((5, 2), [1, 1, 1, 1, 1])
    """

    def __init__(self, latents, factors, *, factor_names=None):
        self.latents = latent_array("latents", latents)
        self.codes = factor_codes(np.asarray(factors), n=self.latents.shape[0])
        self.factor_sizes = tuple(int(c.max()) + 1 for c in self.codes.T)
        self.factor_names = tuple(factor_names_of(factors, factor_names, self.codes.shape[1]))
        # per factor: rows sorted by code, and where each code's run starts and how long it is
        self._order = np.argsort(self.codes, axis=0, kind="stable")  # [N, F]
        self._counts = [np.bincount(c, minlength=s) for c, s in zip(self.codes.T,
                                                                     self.factor_sizes)]
        self._starts = [np.concatenate([[0], np.cumsum(c)[:-1]]) for c in self._counts]

    def draw(self, n: int, rng: np.random.Generator, fix=None):
        if fix is None:
            rows = rng.integers(0, len(self.latents), size=n)
        else:
            k, values = fix
            values = np.asarray(values, dtype=np.int64)
            offset = (rng.random(len(values)) * self._counts[k][values]).astype(np.int64)
            rows = self._order[self._starts[k][values] + offset, k]
        return self.latents[rows], self.codes[rows]


class GridSampler:
    """Renders drawn factor combinations from ``grid`` and encodes them; see the module
    docstring. ``factor_names`` defaults to the grid's own (``grid.factor_names``, or
    ``pv.data.sprites.FACTOR_NAMES`` for a ``SpriteGrid``).

    Examples
    --------
    >>> import numpy as np
    >>> import ppl_vae as pv
    >>> grid = pv.data.SpriteGrid(size=16, grid="small")       # 3 x 4 x 8 x 8 x 8 sprites
    >>> encode = lambda x: np.stack([x.mean(1), x[:, :128].mean(1)], axis=1)  # [n, 256] -> [n, 2]
    >>> sampler = pv.metrics.GridSampler(grid, encode)
    >>> sampler.factor_sizes, sampler.factor_names[0]
    ((3, 4, 8, 8, 8), 'shape')
    >>> reps, codes = sampler.draw(4, np.random.default_rng(0), fix=(0, np.full(4, 2)))
    >>> reps.shape, codes.shape, codes[:, 0].tolist()    # every image is shape 2
    ((4, 2), (4, 5), [2, 2, 2, 2])
    """

    def __init__(self, grid, encode, *, factor_names=None):
        for attr in ("shape", "index_of", "render"):
            if not hasattr(grid, attr):
                raise ValueError(
                    f"grid of type {type(grid).__name__} has no {attr!r}: pass a "
                    "pv.data.SpriteGrid (or an object with shape, index_of and render)"
                )
        if not callable(encode):
            raise ValueError(f"encode={encode!r} is not callable: pass images [n, D] -> [n, L]")
        self.grid, self.encode = grid, encode
        self.factor_sizes = tuple(int(s) for s in grid.shape)
        if factor_names is None:
            factor_names = getattr(grid, "factor_names", None)
        if factor_names is None:
            from ppl_vae.data.sprites import FACTOR_NAMES

            factor_names = FACTOR_NAMES
        self.factor_names = tuple(factor_names_of(None, factor_names, len(self.factor_sizes)))

    def draw(self, n: int, rng: np.random.Generator, fix=None):
        codes = np.stack([rng.integers(0, s, size=n) for s in self.factor_sizes], axis=1)
        if fix is not None:
            k, values = fix
            codes[:, k] = values
        images = self.grid.render(self.grid.index_of(codes))
        reps = latent_array("encode(images)", self.encode(images))
        if reps.shape[0] != n:
            raise ValueError(f"encode returned {reps.shape[0]} rows for {n} images: "
                             "return one representation per image")
        return reps, codes


def check_sampler(sampler) -> None:
    """Raise a ValueError unless ``sampler`` has the attributes of the module docstring."""
    for attr in ("factor_sizes", "factor_names", "draw"):
        if not hasattr(sampler, attr):
            raise ValueError(
                f"sampler of type {type(sampler).__name__} has no {attr!r}: pass an "
                "ArraySampler(latents, factors) or a GridSampler(grid, encode)"
            )

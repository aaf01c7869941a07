"""Latent traversals ordered by information (lecture notes, Fig. 17.14).

One row per latent dimension, columns from −k to +k around a starting code,
rows sorted by the dimension's average KL(q(z_l|x) ‖ p(z_l)) over a dataset —
the ordering Chen et al. (2018, "Isolating Sources of Disentanglement in
Variational Autoencoders", Section 6 and Fig. 1) use: dimensions with (almost)
no KL carry no information and decode to the same image in every column.

The decoding itself is ``pv.infer.traverse(model, z, dim, values)``; this module
only chooses the start, the values and the order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ppl_vae import _checks, _seed, infer
from ppl_vae.metrics.decomposition import factorised_prior, posterior_normal


@dataclass
class Traversal:
    """Decoded traversals and how they were made (see :func:`traversal_images`).

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((30, 4), 0.5))
    >>> trav = pv.analysis.traversal_images(model, x, index=0, steps=5)
    >>> trav.images.shape, sorted(trav.dims), trav.offsets.tolist(), trav.index
    (torch.Size([2, 5, 4]), [0, 1], [-3.0, -1.5, 0.0, 1.5, 3.0], 0)
    """

    images: torch.Tensor  # [R, S, D] row r varies dimension dims[r]
    dims: list[int]  # latent dimension of each row, by decreasing KL
    kl: torch.Tensor  # [R] average KL(q(z_l|x) ‖ p(z_l)) of each row's dimension, nats
    offsets: torch.Tensor  # [S] added to the start's coordinate, from −k to +k
    start: torch.Tensor  # [L] the starting code
    index: int | None  # row of x the start was encoded from (None when z was given)

    def row_labels(self) -> list[str]:
        return [f"z{d}  KL={float(v):.2f}" for d, v in zip(self.dims, self.kl)]

    def plot(self, path, *, image_shape=None, title=None):
        """Save the grid with :func:`ppl_vae.plots.traversal_grid`; returns the Figure."""
        from ppl_vae.plots import traversal_grid

        return traversal_grid(
            self.images,
            image_shape=image_shape,
            path=path,
            row_labels=self.row_labels(),
            col_values=self.offsets,
            title=title,
            xlabel="offset from the start code",
        )


def dimension_kl(model, x, **options) -> torch.Tensor:
    """Average KL(q(z_l|x) ‖ p(z_l)) per latent dimension over ``x``, ``Tensor[L]`` nats.

    ``options`` (``guide=``, ``latent=``, ...) for a Pyro model/guide pair.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((30, 4), 0.5))
    >>> kl = pv.analysis.dimension_kl(model, x)
    >>> kl.shape, bool((kl >= 0).all())
    (torch.Size([2]), True)
    """
    return _posterior_and_kl(model, x, options)[1]


def _posterior_and_kl(model, x, options):
    """Posterior means ``[N, L]`` and the average per-dimension KL ``[L]``."""
    _, p_dim = factorised_prior(model, x, **options)
    with torch.no_grad():
        loc, scale, _ = posterior_normal(model, x, **options)
        kl = torch.distributions.kl_divergence(torch.distributions.Normal(loc, scale), p_dim)
    return loc, kl.mean(0)


def traversal_images(
    model,
    x,
    *,
    z=None,
    index: int | None = None,
    k: float = 3.0,
    steps: int = 7,
    max_rows: int | None = None,
    seed: int | None = None,
    **options,
) -> Traversal:
    """Decode traversals of every latent dimension, rows sorted by KL.

    Parameters
    ----------
    model
        A model with an amortized diagonal Gaussian guide (``encode``), ``decode``
        and a prior that factorises over dimensions.
    x : array ``[N, D]``
        Data for the KL ordering (and the start, unless ``z`` is given).
    z : array ``[L]``, optional
        Start code; default: the posterior mean of ``x[index]``.
    index : int, optional
        Row of ``x`` to start from; default: one drawn with ``seed``.
    k : float, default 3.0
        Columns offset the start's coordinate by values evenly spaced in [−k, k]
        (prior standard deviations for a standard-normal prior).
    steps : int, default 7
        Number of columns; odd values include the start itself (offset 0).
    max_rows : int, optional
        Keep only this many dimensions, those with the largest KL.
    seed : int, optional
        Seeds the choice of ``index``.
    **options
        For a Pyro model/guide pair (no ``encode``/``prior``): ``guide=``, ``latent=``,
        ``observed=``, ``data_plate=``; read from its trace.

    Returns
    -------
    Traversal
        ``images`` ``[R, S, D]`` (decoder means), ``dims``, ``kl``, ``offsets``,
        ``start``, ``index``; ``.plot(path, image_shape=...)`` saves the grid.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((30, 4), 0.5))
    >>> trav = pv.analysis.traversal_images(model, x, steps=3, max_rows=1, seed=0)
    >>> trav.images.shape, len(trav.dims)                # 1 row (the largest KL), 3 columns
    (torch.Size([1, 3, 4]), 1)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = trav.plot(Path(tmp) / "traversal.png", image_shape=(2, 2))
    >>> type(fig).__name__
    'Figure'
    """
    k = _checks.positive_float("k", k)
    steps = _checks.positive_int("steps", steps, minimum=2)
    check = getattr(model, "check_data", None)
    x = check(x)[0] if callable(check) else _checks.data_tensor("x", x)
    means, kl = _posterior_and_kl(model, x, options)  # [N, L], [L]
    latent = kl.shape[0]
    rows = latent if max_rows is None else min(latent, _checks.positive_int("max_rows", max_rows))
    if z is None:
        if index is None:
            with _seed.seeded(seed):
                index = int(torch.randint(x.shape[0], ()))
        index = _checks.positive_int("index", index, minimum=0)
        if index >= x.shape[0]:
            raise ValueError(f"index={index} is out of range: x has {x.shape[0]} rows")
        start = means[index]  # [L]
    else:
        start = torch.as_tensor(z, dtype=torch.float32).reshape(-1)
        if start.shape[0] != latent:
            raise ValueError(
                f"z has {start.shape[0]} coordinates but the model's latent has {latent}: "
                f"pass a code of shape [{latent}]"
            )
        index = None
    order = torch.argsort(kl, descending=True)[:rows]
    offsets = torch.linspace(-k, k, steps, device=start.device, dtype=start.dtype)
    images = torch.stack(
        [infer.traverse(model, start, int(d), start[d] + offsets, data_dim=x.shape[1],
                        **{k: v for k, v in options.items() if k != "guide"})
         for d in order]
    )  # [R, S, D]
    return Traversal(
        images=images,
        dims=[int(d) for d in order],
        kl=kl[order],
        offsets=offsets,
        start=start,
        index=index,
    )

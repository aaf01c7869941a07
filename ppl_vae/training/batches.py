"""Minibatches for :func:`ppl_vae.fit`: the seeded batch order, streamed sources, dynamic binarization.

Epochs are seeded permutations, so resuming needs only the step; a permutation
is drawn once per epoch and moved to the data's device once. A lazily indexed
dataset (``len(x)``, ``x[indices]``) is fetched, checked and moved batch by
batch. With ``binarize="dynamic"`` every batch is a fresh Bernoulli draw of the
grey levels from the run's seeded stream.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np
import torch

from ppl_vae import _checks, _device, _seed


def batch_indices(n: int, batch_size: int, step: int, seed: int, device=None) -> torch.Tensor:
    """Rows of step ``step``: epochs are seeded permutations, so resuming needs only ``step``."""
    if batch_size >= n:
        return epoch_order(n, None, device)
    per_epoch = n // batch_size
    epoch, pos = divmod(step, per_epoch)
    perm = epoch_order(n, seed * 7919 + epoch, device)
    return perm[pos * batch_size : (pos + 1) * batch_size]


@functools.lru_cache(maxsize=2)
def epoch_order(n: int, seed: int | None, device) -> torch.Tensor:
    """One epoch's permutation (``arange`` for ``seed=None``), drawn once per epoch and
    moved to the data's device once (not per step)."""
    perm = torch.arange(n) if seed is None else torch.randperm(n, generator=_seed.generator(seed))
    return perm.to(device) if device is not None else perm


def is_source(x) -> bool:
    """A lazily indexed dataset (``len(x)`` and ``x[indices]``, e.g. ``pv.data.SpriteGrid``).

    Strings, bytes and mappings are not (they are refused as data by the array check).
    """
    return (not torch.is_tensor(x)
            and not isinstance(x, (np.ndarray, list, tuple, str, bytes, bytearray, Mapping))
            and hasattr(x, "__len__") and hasattr(x, "__getitem__"))


def streamed(model, x, y, binarize):
    """Check a streamed source: an amortized guide, rows that pass the model's checks, labels."""
    if not model.streamable:
        raise ValueError(
            f"x={type(x).__name__} is streamed (rendered batch by batch), which needs an "
            "amortized guide: a local guide or a GMM needs all the data up front (pass an array)"
        )
    n = _checks.positive_int("len(x)", len(x), fix="a streamed data set needs at least one row")
    try:
        first = batch(x, torch.arange(min(n, 8)), True, False, model)  # fails early on bad rows
    except (TypeError, IndexError, KeyError) as err:
        raise ValueError(
            f"x={type(x).__name__} cannot be read as rows ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:100] if str(err) else ''}): pass an array [N, D], or "
            "a dataset whose x[indices] (an integer array) returns those rows as an array [B, D]"
        ) from None
    if y is not None:
        y = _device.move(_checks.label_tensor("y", y, n=n, num_classes=model.num_classes),
                         first.device)
    return x, y


def batch(x, idx, source: bool, binarize, model) -> torch.Tensor:
    """The rows ``idx`` of ``x`` as the model's batch (rendered, checked and moved when streamed)."""
    if source:
        rows = torch.as_tensor(np.asarray(x[idx.cpu().numpy()]))
        rows = grey_levels(model, rows, None)[0] if binarize == "dynamic" else \
            model.check_data(rows)[0]
    else:
        rows = x[idx]
    return torch.bernoulli(rows) if binarize == "dynamic" else rows


def grey_levels(model, x, y):
    """Grey levels in [0, 1] for dynamic binarization, on the model's device and dtype."""
    x = _checks.data_tensor("x", x, dim=model.data_dim)
    if x.min() < 0 or x.max() > 1:
        raise ValueError(
            f"binarize='dynamic' needs x in [0, 1] (got values in [{float(x.min()):.3g}, "
            f"{float(x.max()):.3g}]): scale the data to probabilities first"
        )
    _, y = model.check_data(x.round(), y)  # labels checked by the model; x's support is [0, 1]
    return _device.move(x, *_device.of(model)), y


def fingerprint(x, y=None) -> str:
    """A streamed source's identity for resume checks: its class, length, and a digest of
    a few rows spread over it (``x.fingerprint()`` when the source offers one)."""
    from ppl_vae.training import resume

    own = getattr(x, "fingerprint", None)
    if callable(own):
        return f"stream:{own()}"
    n = len(x)
    rows = torch.as_tensor(np.asarray(x[np.unique(np.linspace(0, n - 1, 8).astype(np.int64))]))
    kind = f"{type(x).__module__}.{type(x).__qualname__}"
    return f"stream:{kind}:{n}:{resume.fingerprint(rows, y)}"

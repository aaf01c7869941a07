"""Registry of named parts, so that a spec can compose them by name.

A *part* is a small class of one kind — ``prior``, ``likelihood``, ``decoder``,
``guide``, ``penalty``, ``latent_prior`` (the prior of one latent of a model
graph, given its parents) — or a ``family`` that turns a resolved spec into a model.
Parts declare their spec keys as keyword-only constructor arguments with
defaults; the spec layer reads them from the signature, so adding a key to a
part is a one-line change and an unknown key is reported with the valid ones.

Users add their own parts with the decorator::

    @ppl_vae.register("prior", "laplace")
    class LaplacePrior(ppl_vae.parts.Prior):
        ...
"""

from __future__ import annotations

import inspect

KINDS = ("family", "prior", "likelihood", "decoder", "guide", "penalty", "latent_prior")

_REGISTRY: dict[str, dict[str, type]] = {kind: {} for kind in KINDS}


def register(kind: str, name: str):
    """Class decorator registering ``cls`` as part ``name`` of ``kind``.

    Examples
    --------
    >>> import pyro.distributions as dist
    >>> import torch
    >>> import ppl_vae as pv
    >>> @pv.register("prior", "doc_laplace")
    ... class Laplace(pv.parts.Prior):
    ...     def distribution(self, y=None):
    ...         zero = torch.zeros(self.latent_dim)
    ...         return dist.Laplace(zero, zero + 1.0).to_event(1)
    >>> model = pv.build("vae", data_dim=6, latent_dim=2, prior={"kind": "doc_laplace"},
    ...                  decoder={"hidden": [8]}, guide={"hidden": [8]})
    >>> type(model.prior).__name__, model.spec["prior"]
    ('Laplace', {'kind': 'doc_laplace'})
    >>> _ = pv.registry._REGISTRY["prior"].pop("doc_laplace")  # leave the registry as it was
    """
    if kind not in _REGISTRY:
        raise ValueError(f"kind={kind!r} is not a part kind; valid kinds: {', '.join(KINDS)}")

    def decorator(cls):
        cls.part_name = name
        _REGISTRY[kind][name] = cls
        return cls

    return decorator


def names(kind: str) -> list[str]:
    """Registered names of ``kind``, sorted."""
    return sorted(_REGISTRY[kind])


def get(kind: str, name: str, *, where: str | None = None) -> type:
    """The class registered as ``name`` of ``kind``; ValueError listing valid names."""
    try:
        return _REGISTRY[kind][name]
    except (KeyError, TypeError):
        label = where or f"{kind}.kind"
        raise ValueError(
            f"{label}={name!r} is not a known {kind}; valid: {', '.join(names(kind))}"
        ) from None


def spec_keys(cls) -> dict[str, object]:
    """The spec keys a part accepts: its keyword-only constructor arguments and defaults."""
    params = inspect.signature(cls.__init__).parameters.values()
    return {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }

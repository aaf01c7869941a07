"""``pv.build``: spec (preset name, TOML path or dict) + overrides -> model."""

from __future__ import annotations

import itertools

import torch

from ppl_vae import _checks, _seed, registry
from ppl_vae import spec as spec_mod


def _resolve(spec, overrides: dict):
    raw = spec_mod.merge(spec_mod.load(spec), overrides)
    raw = spec_mod.with_family_defaults(raw)
    family = registry.get("family", raw["family"], where="family")()
    return family, family.resolve(raw)


def _sizes(resolved: dict) -> str:
    keys = [f"{k}={resolved[k]}" for k in ("data_dim", "latent_dim", "num_components",
                                           "num_classes") if k in resolved]
    keys += [f"{t}.hidden={resolved[t]['hidden']}" for t in ("decoder", "guide")
             if isinstance(resolved.get(t), dict) and "hidden" in resolved[t]]
    return ", ".join(keys)


def _skeleton(family, resolved: dict, *, budget: int):
    """The model built on the ``meta`` device (shapes, no memory), checked against ``budget``.

    Returns None when a part cannot be built without real tensors (a user part
    that reads values in its constructor); the real build then goes ahead unchecked.
    """
    try:
        with torch.device("meta"), _seed.seeded(resolved["seed"]):
            model = family.build(resolved)
    except ValueError:
        raise
    except Exception:  # noqa: BLE001 - a part that needs real tensors: nothing to check here
        return None
    tensors = itertools.chain(model.parameters(), model.buffers())
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    _checks.within_budget(
        f"the model's parameters ({_sizes(resolved)})", nbytes, budget,
        "lower those sizes", option=False,
    )
    return model


def skeleton(spec):
    """``(resolved spec, meta-device model or None)`` for ``spec``, allocating nothing.

    Checkpoint loading compares stored tensor shapes with this model before any
    real module is built.
    """
    family, resolved = _resolve(spec, {})
    return resolved, _skeleton(family, resolved, budget=_checks.memory_budget())


def build(spec, **overrides):
    """Build a model from a spec.

    Parameters
    ----------
    spec : str, path or dict
        A preset name (see ``ppl_vae.spec.presets()``), a TOML file, or a dict.
        A dict or file is merged onto the preset of its ``family``.
    **overrides
        Spec keys merged into the spec: ``pv.build("lvm", guide={"kind": "amortized"})``.

    Returns
    -------
    model
        A model with ``model``, ``guide``, ``decode``, ``sample`` and ``spec`` (the
        fully resolved dict; ``build(model.spec)`` rebuilds the same architecture
        with the same initial weights, drawn from the spec's ``seed``).

    Raises
    ------
    ValueError
        For any bad key, kind or value, naming it; also when the parameters would
        exceed the memory budget (``$PPL_VAE_MEMORY_BUDGET``, default half the
        physical memory), which is checked before anything is allocated.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=6, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> model.spec["family"], model.spec["latent_dim"], model.spec["decoder"]["hidden"]
    ('vae', 2, [8])
    >>> model.sample(5).shape                                  # x ~ p(x), 5 draws
    torch.Size([5, 6])
    """
    family, resolved = _resolve(spec, overrides)
    _skeleton(family, resolved, budget=_checks.memory_budget())
    with _seed.seeded(resolved["seed"]):
        return family.build(resolved)

"""``pv.build``: spec (preset name, TOML path or dict) + overrides -> model."""

from __future__ import annotations

from ppl_vae import _seed, registry
from ppl_vae import spec as spec_mod


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
    """
    raw = spec_mod.merge(spec_mod.load(spec), overrides)
    raw = spec_mod.with_family_defaults(raw)
    family = registry.get("family", raw["family"], where="family")()
    resolved = family.resolve(raw)
    with _seed.seeded(resolved["seed"]):
        return family.build(resolved)

"""Specs: load (preset name, TOML path or dict), merge overrides, validate, resolve.

A resolved spec is a plain dict holding every key a model was built with, so
``pv.build(model.spec)`` rebuilds the same architecture and the spec can be
stored in a checkpoint. Tables of parts (``prior``, ``likelihood``, ``decoder``,
``guide``) and the ``penalty`` list are validated against the registered parts;
the ``objective`` table (the loss's weights) by :mod:`ppl_vae.parts.objective`.
"""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ppl_vae import registry

PART_TABLES = ("prior", "likelihood", "decoder", "guide")


def presets() -> list[str]:
    """Names of the presets shipped with the package (``vae``, ``lvm``, ``gmm``, ...).

    Examples
    --------
    >>> from ppl_vae import spec
    >>> "vae" in spec.presets(), "gmm" in spec.presets()
    (True, True)
    """
    files = resources.files("ppl_vae") / "presets"
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def _read_toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"spec file {source} is not valid TOML: {err}") from None


#: Larger spec files are refused unread: a spec is a few hundred bytes of TOML.
MAX_SPEC_BYTES = 1_000_000


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise ValueError(
                f"spec file {str(path)!r} has {size} bytes, more than a spec's limit of "
                f"{MAX_SPEC_BYTES}: pass the TOML spec file, not a data file"
            )
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"spec file {str(path)!r} is not UTF-8 text (byte {err.start}): save it as UTF-8 TOML"
        ) from None
    except OSError as err:
        raise ValueError(
            f"spec file {str(path)!r} cannot be read ({err.strerror or err}): check its permissions"
        ) from None


def plain(value):
    """Numpy scalars and arrays (and 0-d tensors) in a spec as Python numbers and lists, so
    ``hidden=np.array([64, 64])`` means what ``hidden=[64, 64]`` does.

    Examples
    --------
    >>> import numpy as np
    >>> from ppl_vae import spec
    >>> spec.plain({"hidden": np.array([64, 64]), "beta": np.float64(2.0)})
    {'hidden': [64, 64], 'beta': 2.0}
    """
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if torch.is_tensor(value) and value.ndim == 0 and value.device.type != "meta":
        return value.item()
    return value


def load(spec) -> dict:
    """Return the raw spec dict for a preset name, a TOML path or a dict.

    Examples
    --------
    >>> from ppl_vae import spec
    >>> raw = spec.load("vae")
    >>> raw["family"], raw["decoder"]["kind"]
    ('vae', 'mlp')
    >>> spec.load({"family": "vae", "latent_dim": 3})
    {'family': 'vae', 'latent_dim': 3}
    """
    if isinstance(spec, dict):
        return plain(copy.deepcopy(spec))
    if isinstance(spec, (str, Path)):
        text = str(spec)
        if text in presets():
            raw = (resources.files("ppl_vae") / "presets" / f"{text}.toml").read_text()
            return _read_toml(raw, f"preset {text!r}")
        path = Path(text)
        if path.suffix == ".toml" or path.exists():
            if not path.is_file():
                raise ValueError(f"spec={text!r}: no such file; pass a preset name or a TOML path")
            return _read_toml(_read_text(path), str(path))
        raise ValueError(
            f"spec={text!r} is neither a preset nor a TOML file; presets: {', '.join(presets())}"
        )
    raise ValueError(f"spec of type {type(spec).__name__} is invalid: pass a preset name, path or dict")


def needs_binary(spec: dict) -> bool:
    """True when the spec's likelihood needs 0/1 data (its part says ``binary_data``).

    Examples
    --------
    >>> from ppl_vae import spec
    >>> spec.needs_binary(spec.load("vae")), spec.needs_binary(spec.load("lvm"))
    (True, False)
    """
    kind = (spec.get("likelihood") or {}).get("kind")
    if kind is None:
        return False
    try:
        return registry.get("likelihood", kind).binary_data
    except ValueError:  # an unknown kind is reported when the spec is built
        return False


def merge(base: dict, overrides: dict) -> dict:
    """Deep-merge ``overrides`` into ``base``: tables merge key by key, lists are replaced.

    When an override changes a part's ``kind``, the base's keys that the new
    kind does not accept are dropped (they belonged to the old kind); keys the
    user wrote are always kept, so a wrong one is still reported. Likewise
    ``beta`` and the ``[objective]`` weight it aliases are one setting: an
    override of either drops the base's other, so ``beta = 4`` on a preset that
    writes ``objective.kl`` (or the reverse) is not a conflict.

    Examples
    --------
    >>> from ppl_vae import spec
    >>> spec.merge({"decoder": {"kind": "mlp", "hidden": [256]}, "latent_dim": 8},
    ...            {"decoder": {"hidden": [16]}})
    {'decoder': {'kind': 'mlp', 'hidden': [16]}, 'latent_dim': 8}
    """
    out = copy.deepcopy(base)
    overrides = plain(overrides)
    _drop_replaced_alias(out, overrides)
    _drop_replaced_latents(out, overrides)
    return _merge_tables(out, overrides)


def _merge_tables(out: dict, overrides: dict, path: tuple = ()) -> dict:
    for key, value in overrides.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            if key in PART_TABLES and "kind" in value and value["kind"] != old.get("kind"):
                # a graph latent's prior ([latent.NAME] prior) is a latent_prior part
                kind = "latent_prior" if path[:1] == ("latent",) and key == "prior" else key
                try:
                    valid = registry.spec_keys(registry.get(kind, value["kind"]))
                except ValueError:
                    valid = {}
                old = {k: v for k, v in old.items() if k in valid}
            out[key] = _merge_tables(copy.deepcopy(old), value, (*path, key))
        else:
            out[key] = copy.deepcopy(value)
    return out


#: The one-latent form of a spec; a ``[latent.*]`` table (a model graph) replaces it.
ONE_LATENT_KEYS = ("latent_dim", "prior")


def check_latent_forms(table: dict, where: str = "spec") -> None:
    """Refuse a spec (or one layer of overrides) that writes both latent forms.

    Examples
    --------
    >>> from ppl_vae import spec
    >>> spec.check_latent_forms({"latent_dim": 4})          # one form: fine
    >>> spec.check_latent_forms({"latent_dim": 4, "latent": {"z": {"dim": 4}}})
    Traceback (most recent call last):
        ...
    ValueError: spec has both [latent.*] tables (a model graph) and latent_dim ...
    """
    both = [k for k in ONE_LATENT_KEYS if k in table]
    if "latent" in table and both:
        raise ValueError(
            f"{where} has both [latent.*] tables (a model graph) and {' and '.join(both)} (the "
            "one-latent form, which is the graph latent.z): write only one of them"
        )


def _drop_replaced_latents(base: dict, overrides: dict) -> None:
    """A layer that declares ``[latent.*]`` replaces the base's one-latent keys (and the reverse
    is refused: a graph's latents are changed with ``latent={name: {...}}``)."""
    check_latent_forms(base)
    check_latent_forms(overrides, "the overrides")
    if "latent" in overrides:
        for key in ONE_LATENT_KEYS:
            base.pop(key, None)
    elif "latent" in base and any(k in overrides for k in ONE_LATENT_KEYS):
        key = next(k for k in ONE_LATENT_KEYS if k in overrides)
        raise ValueError(
            f"{key} cannot override a spec with [latent.*] tables: set a latent's size or "
            "prior in its own table, e.g. latent={'z1': {'dim': 8}}"
        )


def _drop_replaced_alias(base: dict, overrides: dict) -> None:
    family = overrides.get("family", base.get("family"))
    try:
        term = registry.get("family", family).beta_term
    except (ValueError, AttributeError):
        return
    if term is None:
        return
    objective = base.get("objective")
    if "beta" in overrides and isinstance(objective, dict):
        objective.pop(term, None)
    if term in (overrides.get("objective") or {}):
        base.pop("beta", None)


def with_family_defaults(raw: dict) -> dict:
    """Merge a user spec onto the preset of its family, so omitted tables get defaults.

    Examples
    --------
    >>> from ppl_vae import spec
    >>> full = spec.with_family_defaults({"family": "vae", "latent_dim": 3})
    >>> full["latent_dim"], full["prior"]
    (3, {'kind': 'standard_normal'})
    """
    family = raw.get("family")
    if family is None:
        raise ValueError(
            f"spec has no 'family' key; add family = one of {', '.join(registry.names('family'))}"
        )
    registry.get("family", family, where="family")
    base = load(family) if family in presets() else {}
    return merge(base, raw)


def check_keys(table: dict, valid, where: str) -> None:
    """Raise a ValueError naming the first unknown key of ``table`` and the valid ones.

    Examples
    --------
    >>> from ppl_vae import spec
    >>> spec.check_keys({"hidden": [8]}, ["hidden", "activation"], "decoder")
    >>> spec.check_keys({"hiden": [8]}, ["hidden", "activation"], "decoder")
    Traceback (most recent call last):
        ...
    ValueError: ...hiden...
    """
    for key in table:
        if key not in valid:
            raise ValueError(
                f"unknown key {where}{key!r}; valid keys: {', '.join(sorted(valid))}"
            )


def resolve_part(kind: str, table, *, where: str) -> dict:
    """Validate one part table and fill in its defaults; returns a new dict.

    Examples
    --------
    >>> from ppl_vae import spec
    >>> spec.resolve_part("decoder", {"kind": "mlp", "hidden": [8]}, where="decoder")
    {'kind': 'mlp', 'hidden': [8], 'activation': 'relu'}
    """
    if not isinstance(table, dict):
        raise ValueError(f"[{where}] must be a table with a 'kind' key, got {table!r}")
    cls = registry.get(kind, table.get("kind"), where=f"{where}.kind")
    keys = registry.spec_keys(cls)
    check_keys(table, set(keys) | {"kind"}, f"{where}.")
    resolved = {"kind": table["kind"]}
    for key, default in keys.items():
        value = table.get(key, default)
        resolved[key] = list(value) if isinstance(value, tuple) else value
    return resolved

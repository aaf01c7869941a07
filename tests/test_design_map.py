"""docs/design.md's module map names exactly the modules that exist: none missing, none stale."""

from __future__ import annotations

import re
from pathlib import Path

import ppl_vae

ROOT = Path(ppl_vae.__file__).parent
DESIGN = ROOT.parent / "docs" / "design.md"


def _map_entries() -> dict[str, set[str]]:
    text = DESIGN.read_text()
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    entries = {}
    for line in section.splitlines():
        m = re.match(r"- `ppl_vae/([A-Za-z0-9_]*)/?`: (.*)", line)
        if m:
            entries[m.group(1)] = set(re.findall(r"`([A-Za-z0-9_/]+)`", m.group(2)))
    return entries


def _tree() -> dict[str, set[str]]:
    tree = {"": {p.stem for p in ROOT.glob("*.py")}}
    for d in ROOT.iterdir():
        if d.is_dir() and (d / "__init__.py").exists():
            tree[d.name] = {str(p.relative_to(d).with_suffix("")) for p in d.rglob("*.py")}
    return tree


def test_every_module_in_the_map_exists_and_every_module_is_in_it():
    documented, actual = _map_entries(), _tree()
    assert documented, "docs/design.md has no '## Module map' entries"
    assert set(documented) == set(actual), (set(documented) ^ set(actual))
    for folder, names in actual.items():
        assert documented[folder] == names, (
            f"ppl_vae/{folder}: missing from the map {sorted(names - documented[folder])}, "
            f"not in the tree {sorted(documented[folder] - names)}")

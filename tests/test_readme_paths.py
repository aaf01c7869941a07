"""Every default output path the README states is the one the command really uses."""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path

from ppl_vae import study
from ppl_vae.cli import parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _out_defaults() -> dict[str, str]:
    """``{command: default of --out}`` for every subcommand that has ``--out``."""
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    found = {}
    for name, command in sub.choices.items():
        for action in command._actions:
            if "--out" in action.option_strings:
                found[name] = str(action.default)
    return found


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start: end if end != -1 else None]


def _table_defaults() -> dict[str, str]:
    rows = re.findall(r"^\| `([a-z]+)` \| `([^`]+)` \|", _section("Where outputs go"), re.MULTILINE)
    return dict(rows)


def test_the_outputs_table_states_every_commands_real_default():
    table = _table_defaults()
    assert table, "the README's 'Where outputs go' table was not found"
    assert table == _out_defaults()


def test_every_default_is_under_ppl_vae_out_command():
    for command, default in _out_defaults().items():
        assert default == f"ppl_vae_out/{command}" or default.startswith(f"ppl_vae_out/{command}/")
    assert inspect.signature(study.run).parameters["out"].default == _out_defaults()["study"]


def test_every_ppl_vae_out_path_in_the_readme_is_a_default_or_under_one():
    defaults = set(_out_defaults().values())
    folders = {d for d in defaults if not Path(d).suffix}
    paths = set(re.findall(r"ppl_vae_out/[\w./<>-]*[\w>]", README))
    assert "ppl_vae_out/<command>" in paths  # the rule (checked above), not a path
    for path in paths - {"ppl_vae_out/<command>"}:
        assert path in defaults or any(path.startswith(f + "/") for f in folders), path


def test_study_results_are_never_said_to_go_elsewhere():
    # earlier READMEs said both `out/<study>/` and `results/<study>/`
    stated = re.findall(r"`([\w./<>-]*)<study>/?`", README)
    assert stated and set(stated) <= {"ppl_vae_out/study/", "<out>/"}, stated


def test_every_file_the_readme_links_in_docs_exists():
    links = re.findall(r"\]\((docs/[^)#\s]+)\)", README)
    assert "docs/figures/disentanglement_agreement.png" in links
    root = Path(__file__).resolve().parents[1]
    missing = [link for link in links if not (root / link).is_file()]
    assert not missing, f"README links to missing files: {missing}"

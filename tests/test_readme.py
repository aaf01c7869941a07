"""The README's self-contained Python examples run (with tiny step counts)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _examples():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    # Self-contained blocks load their own data or define a part; others continue them.
    return [b for b in blocks if ("pv.data.load(" in b or "@pv.register" in b)]


@pytest.mark.parametrize("code", _examples(), ids=lambda c: c.strip().splitlines()[0][:40])
def test_readme_example_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = re.sub(r"steps=\d+", "steps=5", code)
    code = re.sub(r"num_samples=\d+", "num_samples=8", code)
    namespace = {}
    exec(compile("import ppl_vae as pv\n" + code, str(README), "exec"), namespace)
    if "laplace" in code:
        from ppl_vae import registry

        registry._REGISTRY["prior"].pop("laplace")


def test_readme_has_examples():
    assert len(_examples()) >= 3

"""The README's self-contained Python examples run (with tiny step counts)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _examples():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    # Self-contained blocks load their own data or define a part; others continue them.
    return [b for b in blocks if ("pv.data.load(" in b or "@pv.register" in b)]


@pytest.mark.parametrize("code", _examples(), ids=lambda c: c.strip().splitlines()[0][:40])
def test_readme_example_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if '"mnist"' in code:
        # download=True from a file:// mirror of the project's shared copy, into tmp_path
        shared = README.parents[1] / "shared" / "data" / "mnist"
        if not (shared / "train-images-idx3-ubyte.gz").is_file():
            pytest.skip(f"real MNIST files not found in {shared}")
        from ppl_vae.data import download, files

        monkeypatch.setenv("PPL_VAE_MNIST_MIRRORS", shared.resolve().as_uri() + "/")
        monkeypatch.setattr(files, "DEFAULT_MNIST_ROOT", tmp_path / "mnist")
        monkeypatch.setattr(download, "DEFAULT_MNIST_ROOT", tmp_path / "mnist")
    code = re.sub(r"steps=\d+", "steps=5", code)
    code = re.sub(r"num_samples=\d+", "num_samples=8", code)
    namespace = {}
    exec(compile("import ppl_vae as pv\n" + code, str(README), "exec"), namespace)  # noqa: S102 - runs the README's own examples
    if "laplace" in code:
        from ppl_vae import registry

        registry._REGISTRY["prior"].pop("laplace")


def test_readme_has_examples():
    assert len(_examples()) >= 3

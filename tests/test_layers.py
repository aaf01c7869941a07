"""Layers: every module imports only from its own layer or below.

Bottom to top (docs/design.md, "Layers"): formulas and plumbing on tensors → data
(a leaf) → parts → models (and training, checkpoints) → infer → metrics → plots →
analysis → study/studies → cli. The package's ``__init__`` and ``__main__`` gather
the public names and are exempt; ``import ppl_vae`` ranks as the highest layer its
``__init__`` imports. Imports are read with ``ast``, function-level imports
included, so a deferred import cannot hide an upward edge; only the body of an
``if __name__ == "__main__":`` block (a script's entry point, the top of the stack)
is skipped.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ppl_vae

ROOT = Path(ppl_vae.__file__).parent

#: Rank of each top-level module or subpackage of ppl_vae; higher = above.
LAYERS = {
    "math": 0, "estimators": 0, "_checks": 0, "_seed": 0, "_runtime": 0, "_device": 0,
    "_version": 0, "registry": 0, "spec": 0,
    "data": 1,
    "parts": 2,
    "models": 3, "checkpoint": 3,
    "infer": 4, "training": 4,  # fit validates with pv.infer's bounds
    "metrics": 5,
    "plots": 6,
    "analysis": 7,
    "study": 8, "studies": 8,
    "cli": 9,
}
EXEMPT = {"ppl_vae", "ppl_vae.__main__"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "ppl_vae" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1])


def _is_main_guard(node) -> bool:
    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If)
        and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
    )


def _walk(tree):
    """``ast.walk`` without the bodies of ``if __name__ == "__main__":`` blocks."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if not _is_main_guard(node):
            todo.extend(ast.iter_child_nodes(node))


def _imports(path: Path, module: str):
    """``(line, imported module)`` for every ppl_vae import in ``path``, nested ones too."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source == "ppl_vae" or node.module is None:  # from ppl_vae import infer
                for alias in node.names:
                    yield node.lineno, f"{source}.{alias.name}"
            else:
                yield node.lineno, source


def _package_rank() -> int:
    """``import ppl_vae`` reaches every layer the package's ``__init__`` imports."""
    init = ROOT / "__init__.py"
    ranks = [_layer(target) for _, target in _imports(init, "ppl_vae")]
    return max(r for r in ranks if r is not None)


def upward_edges() -> list[str]:
    edges = []
    top = _package_rank()
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        if module in EXEMPT:
            continue
        own = _layer(module)
        assert own is not None, f"{module} has no layer: add it to LAYERS in {__file__}"
        for line, target in _imports(path, module):
            if target == "ppl_vae":  # import ppl_vae as pv
                if top > own:
                    edges.append(f"{module}:{line} -> ppl_vae (the package reaches layer {top})")
                continue
            rank = _layer(target)
            if rank is not None and rank > own:
                edges.append(f"{module}:{line} -> {target}")
    return edges


def test_every_module_has_a_layer():
    for path in ROOT.rglob("*.py"):
        module = _module_name(path)
        assert module in EXEMPT or _layer(module) is not None, module


def test_no_upward_imports():
    edges = upward_edges()
    assert not edges, "upward import edges:\n" + "\n".join(edges)


def test_the_walker_sees_nested_relative_and_package_imports(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text(
        "from ppl_vae import _checks, infer\n"
        "def f():\n"
        "    from ppl_vae.plots import traversal_grid\n"
        "    from . import grids\n"
        "if __name__ == '__main__':\n"
        "    from ppl_vae.cli import main\n"
    )
    found = {target for _, target in _imports(source, "ppl_vae.models.probe")}
    assert {"ppl_vae._checks", "ppl_vae.infer", "ppl_vae.plots", "ppl_vae.models.grids"} <= found
    assert "ppl_vae.cli" not in found  # a script's entry point is the top of the stack


MAX_BODY = 100  # lines of a function body, docstring excluded
MAX_FIT = 60


def _body_lengths():
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(
                        getattr(body[0], "value", None), ast.Constant):
                    body = body[1:]
                if body:
                    yield path, node.name, body[-1].end_lineno - body[0].lineno + 1


def test_no_function_body_is_longer_than_100_lines():
    long = [f"{p.relative_to(ROOT.parent)}:{name} ({n} lines)" for p, name, n in _body_lengths()
            if n > MAX_BODY]
    assert not long, "split these functions: " + ", ".join(long)


def test_fit_itself_is_a_thin_function():
    (n,) = [n for p, name, n in _body_lengths() if p.name == "fit.py" and name == "fit"]
    assert n < MAX_FIT, f"pv.fit's body is {n} lines"


MAX_MODULE = 500  # physical lines of a module file, docstrings and comments included


def test_no_module_is_longer_than_500_lines():
    # Every line counts (docstrings too): a module near the limit is split by topic
    # (as study/core.py gave study/_claims.py and study/_inputs.py), not trimmed of prose.
    long = [f"{p.relative_to(ROOT.parent)} ({n} lines)" for p in sorted(ROOT.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_MODULE]
    assert not long, "split these modules: " + ", ".join(long)

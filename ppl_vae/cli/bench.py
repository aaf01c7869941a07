"""``ppl-vae bench`` — run a side-by-side benchmark script from ``benchmarks/``.

Benchmarks compare implementations in one process and print ratios (speed
and memory targets live there, never in timed tests). They ship with the
source checkout (``pip install -e .``), next to the package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path


def benchmark_dir() -> Path:
    import ppl_vae

    return Path(ppl_vae.__file__).resolve().parents[1] / "benchmarks"


def available() -> dict[str, str]:
    """Benchmark name -> first line of its docstring."""
    folder = benchmark_dir()
    out = {}
    for path in sorted(folder.glob("*.py")) if folder.is_dir() else ():
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        name = path.stem.removeprefix("bench_")
        out[name] = doc.strip().splitlines()[0] if doc.strip() else ""
    return out


def register(sub) -> None:
    p = sub.add_parser(
        "bench", help="run a benchmark from benchmarks/ (side-by-side timings and ratios)"
    )
    p.add_argument("name", nargs="?", help="benchmark name; omit to list them")
    p.add_argument("args", nargs="...", help="arguments passed to the benchmark script")
    p.set_defaults(func=run)


def run(args) -> int:
    names = available()
    if not names:
        raise ValueError(
            f"no benchmarks found in {benchmark_dir()}: they ship with the source "
            "checkout; install it with pip install -e ."
        )
    if args.name is None:
        width = max(map(len, names))
        for name, line in names.items():
            print(f"{name:<{width}}  {line}")
        return 0
    if args.name not in names:
        raise ValueError(f"benchmark {args.name!r} is unknown; available: {', '.join(names)}")
    folder = benchmark_dir()
    script = folder / f"bench_{args.name}.py"
    if not script.exists():
        script = folder / f"{args.name}.py"
    return subprocess.call([sys.executable, str(script), *args.args])

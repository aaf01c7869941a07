"""Helpers shared by the subcommands: data, models, option parsing, tables."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import pandas as pd


def load_data(name_or_path: str, **options):
    """``pv.data.load`` with options the caller set (``None`` values dropped)."""
    from ppl_vae import data

    return data.load(name_or_path, **{k: v for k, v in options.items() if v is not None})


def split_note(data, test_fraction=None) -> str | None:
    """A line saying that a data file given by path was split into train and test rows
    by the loader (e.g. 80/20), or None (a named dataset). A ValueError when
    ``--test-fraction`` was given for a file that holds its own ``x_test``."""
    split = data.params.get("split") if isinstance(data.params, dict) else None
    if split == "file" and test_fraction is not None:
        raise ValueError(f"--test-fraction={test_fraction:g} does not apply: "
                         f"{data.params.get('path')} holds its own x_test; drop --test-fraction")
    if not isinstance(split, dict):
        return None
    f = split["test_fraction"]
    return (f"note: {data.params.get('path')} holds no x_test: its rows were split "
            f"{round(100 * (1 - f))}/{round(100 * f)} (--test-fraction {f:g}); "
            f"{len(data.x_train)} train rows are used, {len(data.x_test)} test rows held out")


def load_for(spec: dict, name_or_path: str, **options):
    """The dataset for a model with ``spec``: binarized when its likelihood needs 0/1 data."""
    from ppl_vae.spec import needs_binary

    return load_data(name_or_path, binarize=True if needs_binary(spec) else None, **options)


#: Folders :func:`output_dir` created in this command, deepest first.
CREATED: list[Path] = []


def output_dir(path) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out={str(out)!r} is a file: pass a folder")
    missing = [p for p in (out, *out.parents) if not p.exists()]
    out.mkdir(parents=True, exist_ok=True)
    CREATED.extend(missing)
    return out


def file_path(path) -> Path:
    """``--out`` of a command that writes one file: its folder created (see
    :func:`output_dir`); a ValueError when the path is a folder."""
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"--out={str(out)!r} is a folder: pass a file path, e.g. {out / 'out.png'}")
    output_dir(out.parent)
    return out


def remove_created_if_empty() -> None:
    """Remove the folders :func:`output_dir` created that are still empty: a command
    refused as bad input leaves the disk as it was."""
    for folder in CREATED:
        try:
            folder.rmdir()
        except OSError:  # not empty (something was written) or already gone
            pass
    CREATED.clear()


def image_shape_for(dim: int, given=None):
    """The dataset's image shape, or a square guess from the data dimension."""
    if given:
        return tuple(given)
    side = math.isqrt(dim)
    return (side, side) if side * side == dim else None


def parse_overrides(items) -> dict:
    """``["latent_dim=4", "guide.kind=amortized"]`` -> nested override dict (TOML values)."""
    out: dict = {}
    for item in items or ():
        if "=" not in item:
            raise ValueError(f"--set {item!r} is invalid: use KEY=VALUE, e.g. --set latent_dim=4")
        key, raw = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def parse_classes(text: str | None):
    """``"0-4"`` or ``"0,2,5"`` -> sorted list of ints (None passes through)."""
    if text is None:
        return None
    try:
        if "-" in text and "," not in text:
            lo, hi = (int(t) for t in text.split("-"))
            classes = list(range(lo, hi + 1))
        else:
            classes = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--classes={text!r} is invalid: use a range like 0-4 or a list like 0,2,5") from None
    if not classes:
        raise ValueError(f"--classes={text!r} selects no class: use e.g. 0-4")
    return sorted(set(classes))


def write_json(obj, path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(obj, indent=2, default=str))
    return path


def print_table(frame: pd.DataFrame, *, digits: int = 3) -> None:
    """Print a DataFrame as an aligned plain-text table (a missing value as n/a)."""
    with pd.option_context("display.width", 140, "display.max_columns", 30):
        print(frame.round(digits).to_string(index=False, na_rep="n/a"))


#: Torch threads of every computing command unless ``--threads`` says otherwise. One,
#: because intra-op threads wait for each other whenever another process holds a core:
#: on a busy 2-core machine (load ~7) pv.fit ran 7-25x fewer steps per second with two
#: threads than with one, for the 64-256-8 digits VAE and for the 784-200-200-50 one
#: (benchmarks/bench_threads.py). On an idle machine with many cores, a large model
#: may gain from more: pass --threads N.
DEFAULT_THREADS = 1

#: Commands without ``--threads``: ``bench`` passes its arguments to the benchmark
#: script. (``study``'s flag sets the threads of its own process, where trials run with
#: ``--workers 1``; trials on a process pool or on Ray run one thread each.)
NO_THREADS_OPTION = ("bench",)


def add_threads_option(p, default=DEFAULT_THREADS) -> None:
    p.add_argument(
        "--threads", type=int, default=default,
        help=f"torch threads (default: {default}: on a busy or shared machine more threads "
             "are many times slower; more may help a large model on an idle machine)",
    )


def add_device_option(p) -> None:
    p.add_argument(
        "--device", default=None,
        help="where to compute: auto (CUDA when available), cpu, cuda or cuda:N "
        "(default: cpu, or where a checkpoint's model is loaded)",
    )


def device_of(args):
    """The resolved ``--device`` (a ValueError naming the flag for a bad value), or None."""
    from ppl_vae import _device

    return _device.resolve(getattr(args, "device", None), name="--device")


def apply_threads(args) -> None:
    """Set torch's thread count to ``--threads`` (every command that has the flag; its
    default is :data:`DEFAULT_THREADS`)."""
    import torch

    if getattr(args, "threads", None) is not None:
        if args.threads < 1:
            raise ValueError(f"--threads={args.threads} is invalid: pass an integer >= 1")
        torch.set_num_threads(args.threads)

"""Helpers shared by the subcommands: loading data and models, writing tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def load_data(name_or_path: str, *, binarize: bool | None = None, **options):
    """``pv.data.load`` with CLI-friendly defaults."""
    from ppl_vae import data

    if binarize is not None:
        options["binarize"] = binarize
    return data.load(name_or_path, **options)


def output_dir(path) -> Path:
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def print_table(frame: pd.DataFrame, *, floatfmt: str = "{:.3f}") -> None:
    """Print a DataFrame as an aligned plain-text table."""
    with pd.option_context("display.float_format", floatfmt.format, "display.width", 120):
        print(frame.to_string(index=False))


def add_threads_option(p) -> None:
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")


def apply_threads(args) -> None:
    import torch

    if getattr(args, "threads", None):
        if args.threads < 1:
            raise ValueError(f"--threads={args.threads} is invalid: pass an integer >= 1")
        torch.set_num_threads(args.threads)

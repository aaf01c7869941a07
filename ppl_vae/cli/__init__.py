"""The ``ppl-vae`` command line (also ``python -m ppl_vae``).

Each subcommand lives in its own module of this package with a
``register(subparsers)`` function that adds its parser and sets ``func``.
Bad input (a ValueError) becomes a one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("quickstart", "train", "sample", "evaluate", "resynth", "traverse", "ood", "study", "bench")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ppl-vae",
        description="Latent variable models as probabilistic programs (Pyro).",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"ppl_vae.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"ppl_vae.cli.{name}":
                continue  # subcommand not shipped in this build
            raise
        module.register(sub)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if not getattr(args, "func", None):
        parser().print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotImplementedError) as err:
        print(f"ppl-vae {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ppl-vae {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        from ppl_vae.train import TrainingError

        if isinstance(err, TrainingError):
            print(f"ppl-vae {args.command}: error: {err}", file=sys.stderr)
            return 1
        raise

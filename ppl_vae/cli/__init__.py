"""The ``ppl-vae`` command line (also ``python -m ppl_vae``).

Each subcommand lives in its own module of this package with a
``register(subparsers)`` function that adds its parser and sets ``func``.
Bad input (a ValueError) becomes a one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("quickstart", "train", "sample", "evaluate", "resynth", "traverse", "ood", "study", "bench", "score")


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
    from ppl_vae.cli import _shared

    for name, command in sub.choices.items():
        if name not in _shared.NO_THREADS_OPTION and not any(
                a.dest == "threads" for a in command._actions):
            _shared.add_threads_option(command)
        command.add_argument(
            "--import", dest="imports", action="append", default=[], metavar="MODULE",
            help="import MODULE first, e.g. one that registers parts of your own with "
                 "@pv.register (repeatable)",
        )
    _COMMAND_PARSERS.update(sub.choices)
    return p


_COMMAND_PARSERS: dict = {}  # subcommand -> its parser, for flag_wording


def _import_modules(names) -> None:
    """The modules of ``--import``: an ImportError names the flag and the module."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ValueError(f"--import {name}: {err}; check the module name and that it is "
                             "importable from here (installed, or on PYTHONPATH)") from None


#: Numeric options shared by several subcommands: attribute -> (flag, smallest value).
#: Checked once here, so no subcommand runs with e.g. ``--seed -3``.
_AT_LEAST = {
    "seed": ("--seed", 0), "n": ("--n", 1), "steps": ("--steps", 1),
    "batch_size": ("--batch-size", 1), "threads": ("--threads", 1),
    "max_points": ("--max-points", 1), "chunk_size": ("--chunk-size", 1),
    "num_samples": ("--num-samples", 1), "num_clusters": ("--num-clusters", 1),
    "max_rows": ("--max-rows", 1), "size": ("--size", 1), "latent_dim": ("--latent-dim", 1),
    "seeds": ("--seeds", 1), "workers": ("--workers", 1),
    "kl_warmup": ("--kl-warmup", 0), "eval_every": ("--eval-every", 1),
    "checkpoint_every": ("--checkpoint-every", 1), "num_particles": ("--num-particles", 1),
    "val_iwae": ("--val-iwae", 1), "early_stopping": ("--early-stopping", 1),
    "sync_every": ("--sync-every", 1),
}
#: Positive float options checked the same way (``val_fraction`` 0 means "none").
_POSITIVE = {"lr": "--lr", "k": "--k", "clip_norm": "--clip-norm", "alpha": "--alpha"}


def _check_numbers(args) -> None:
    from ppl_vae import _checks

    for attr, (flag, minimum) in _AT_LEAST.items():
        value = getattr(args, attr, None)
        if value is None or not isinstance(value, int):
            continue
        if attr == "seed":
            _checks.seed(flag, value)
        else:
            _checks.positive_int(flag, value, minimum=minimum)
    for attr, flag in _POSITIVE.items():
        value = getattr(args, attr, None)
        if isinstance(value, float):
            _checks.positive_float(flag, value)
    fraction = getattr(args, "val_fraction", None)
    if isinstance(fraction, float) and fraction != 0:  # 0: no validation data
        _checks.fraction("--val-fraction", fraction)
    if getattr(args, "test_fraction", None) is not None:
        _checks.fraction("--test-fraction", args.test_fraction)


#: What a library message asks for, as the command line gives it.
_LIBRARY_WORDING = {
    "pass x_val=<array [M, D]>": "pass --val-fraction F (validation data held out of the "
                                 "training data)",
}


def flag_wording(text: str, command) -> str:
    """``text`` with the library's argument names (``kl_warmup=``) as the subcommand's flags
    (``--kl-warmup=``), where the subcommand has that flag."""
    import re

    for library, cli in _LIBRARY_WORDING.items():
        text = text.replace(library, cli)
    flags = {a.dest: a.option_strings[-1] for a in getattr(command, "_actions", ())
             if a.option_strings and a.option_strings[-1].startswith("--")}
    text = re.sub(r"(?<![\w.\-\[])([a-z][a-z0-9_]*)=",
                  lambda m: f"{flags[m[1]]}=" if m[1] in flags else m[0], text)
    return re.sub(r"(?<![\w.\-\[])([a-z][a-z0-9]*_[a-z0-9_]+)(?= )",  # e.g. "val_iwae needs"
                  lambda m: flags.get(m[1], m[1]), text)


def _error(args, err) -> int:
    text = " ".join(str(err).split()) or type(err).__name__
    text = flag_wording(text, _COMMAND_PARSERS.get(args.command))
    print(f"ppl-vae {args.command}: error: {text}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if not getattr(args, "func", None):
        parser().print_help()
        return 2
    from ppl_vae.cli import _shared

    _shared.CREATED.clear()
    try:
        _check_numbers(args)
        _import_modules(args.imports)
        _shared.apply_threads(args)
        return int(args.func(args) or 0)
    except (ValueError, NotImplementedError) as err:
        _shared.remove_created_if_empty()
        return _error(args, err)
    except OSError as err:  # permissions, a bad --out, a full disk: name the path, no traceback
        return _error(args, f"{err}; check the path, its permissions and free space")
    except ImportError as err:  # an optional dependency (Ray) that is not installed
        return _error(args, err)
    except MemoryError:
        return _error(args, "out of memory: use a smaller model or fewer datapoints")
    except KeyboardInterrupt:
        print(f"ppl-vae {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        from ppl_vae.training import TrainingError

        if isinstance(err, TrainingError):
            print(f"ppl-vae {args.command}: error: {err}", file=sys.stderr)
            return 1
        raise

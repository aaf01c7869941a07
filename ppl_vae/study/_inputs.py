"""Checks of a study's grid, seeds, placement and output folder (split from
:mod:`ppl_vae.study.core`)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._checks import MAX_SEED, folder_path, memory_budget, one_of, positive_int, within_budget
from . import executors
from .analysis import RESERVED_NAMES
from .store import canonical_config


def _check_grid(argument: str, grid) -> list[dict]:
    if not isinstance(grid, Sequence) or isinstance(grid, str) or len(grid) == 0:
        raise ValueError(f"{argument}={grid!r} is invalid: pass a non-empty list of config dicts")
    seen: dict[str, int] = {}
    for i, config in enumerate(grid):
        if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
            raise ValueError(f"{argument}[{i}]={config!r} is invalid: pass a dict with str keys")
        clash = sorted(set(config) & set(RESERVED_NAMES))
        if clash:
            raise ValueError(
                f"{argument}[{i}] uses reserved key(s) {', '.join(clash)}: rename them "
                "(they are column names of the result tables)"
            )
        try:
            text = canonical_config(_plain(config))
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"{argument}[{i}]={config!r} is not JSON-serialisable ({err}): use plain "
                "str / int / float / bool / list / dict values"
            ) from None
        if text in seen:
            raise ValueError(
                f"{argument}[{i}] repeats {argument}[{seen[text]}] ({text}): "
                "list each configuration once (use seeds for repetitions)"
            )
        seen[text] = i
    return [_plain(config) for config in grid]


def _plain(value):
    """Numpy scalars and arrays in a config as Python numbers and lists (as JSON keeps them)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return value


#: Bookkeeping per trial (job dict, key, record) — what a huge ``seeds`` is checked against.
TRIAL_BYTES = 1024


def _trials_within_budget(what: str, seeds: int, configs: int) -> None:
    within_budget(f"{what}: {seeds * configs} trials", seeds * configs * TRIAL_BYTES,
                  memory_budget(), "pass fewer seeds", option=False)


def _length(seeds) -> int:
    try:
        return len(seeds)
    except OverflowError:  # a range longer than 2**63 - 1
        return 2**63


def _check_seeds(argument: str, seeds, *, configs: int = 1) -> list[int]:
    if isinstance(seeds, np.ndarray):
        seeds = seeds.item() if seeds.ndim == 0 else list(seeds)
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        n = positive_int(argument, seeds, fix="pass a number of seeds >= 1")
        _trials_within_budget(f"{argument}={n}", n, configs)
        return list(range(n))

    ok = isinstance(seeds, Sequence | range) and not isinstance(seeds, str) and _length(seeds) > 0
    if ok:  # the size first: a list as long as a huge count is refused before it is read
        n = _length(seeds)
        _trials_within_budget(f"{argument} (a list of {n} seeds)", n, configs)
        ok = all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and 0 <= s <= MAX_SEED
            for s in seeds
        )
    if not ok or len(set(seeds)) != len(seeds):
        raise ValueError(
            f"{argument}={seeds!r} is invalid: pass a number of seeds >= 1, or a non-empty "
            "list of distinct integers in [0, 2**63)"
        )
    return [int(s) for s in seeds]


def _check_placement(executor, address, device, gpus_per_trial):
    """``(device, gpus_per_trial)`` checked against the executor."""
    one_of("executor", executor, executors.EXECUTORS)
    if address is not None and executor != "ray":
        raise ValueError(
            f"address={address!r} is only used with executor='ray': pass executor='ray' "
            "or drop address"
        )
    device = executors.check_device(device, executor=executor)
    gpus_per_trial = executors.check_gpus_per_trial(gpus_per_trial)
    if gpus_per_trial is not None and (executor != "ray" or device in (None, "cpu")):
        raise ValueError(
            f"gpus_per_trial={gpus_per_trial} is only used by Ray trials on CUDA: pass "
            "executor='ray' with device='cuda' or 'auto', or drop gpus_per_trial"
        )
    return device, gpus_per_trial


def _check_out(out, name: str) -> Path:
    """``out/name``, refused when a file stands where a folder of it must be."""
    return folder_path("out", out, fix="pass a folder for the results",
                       inner=f"{name}/trials") / name

"""``ppl-vae study`` — run (or resume) a study of ``ppl_vae.studies``, locally or on Ray.

    ppl-vae study --list
    ppl-vae study elbo_vs_is --small
    ppl-vae study inference_gaps --paper --executor ray --device cuda
    ppl-vae study gmm_vs_em --seeds 5 --workers 2 --out my_results/
    ppl-vae study disentanglement --executor ray --address HEAD:6379
    ppl-vae study elbo_vs_is --device auto          # CUDA when there is one
    ppl-vae study inference_gaps --executor ray --device cuda --gpus-per-trial 0.5

Results go to ``<out>/<study>/`` (default ``ppl_vae_out/study/<study>/``): ``trials.csv`` (tidy, one row per trial and
metric), ``summary.csv`` (mean, s.e., bootstrap interval per configuration),
``paired.csv`` (each configuration minus the first, on shared seeds),
``failures.csv``, PNG figures, ``report.md``, and ``trials/`` (one JSON record per
finished trial, so an interrupted run resumes where it stopped).
"""

from __future__ import annotations

import os

from ppl_vae.cli import _shared


def register(sub) -> None:
    p = sub.add_parser(
        "study", help="run a statistical study (grid x seeds) locally or on a Ray cluster",
        description="Run or resume a study; finished trials are reused.",
    )
    p.add_argument("name", nargs="?", help="study name (see --list)")
    p.add_argument("--list", action="store_true", help="list the available studies and exit")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local process pool (default) or Ray tasks")
    p.add_argument("--address", default=None,
                   help="Ray cluster address, e.g. HEAD:6379 (default: $RAY_ADDRESS, else a "
                        "local Ray instance listening on 127.0.0.1 only); only with --executor ray")
    p.add_argument("--seeds", type=int, default=None,
                   help="number of seeds 0..N-1 (default: the study's own)")
    p.add_argument("--out", default="ppl_vae_out/study",
                   help="output folder; results go to OUT/NAME/ (default: ppl_vae_out/study)")
    p.add_argument("--small", action="store_true",
                   help="the study's small grid: a quick check (seconds)")
    p.add_argument("--paper", action="store_true",
                   help="the paper's protocol (a GPU or a cluster: see the study's report)")
    p.add_argument("--size", default=None,
                   help="small, default or paper: which grid to run (default: default)")
    p.add_argument("--workers", type=int, default=None,
                   help="parallel trials (default: CPU count, capped by the trials to run)")
    p.add_argument("--device", default=None,
                   help="where trials compute: auto (CUDA when available), cpu, cuda or cuda:N "
                        "(default: the CPU); with --executor ray, Ray assigns the GPUs")
    p.add_argument("--gpus-per-trial", type=float, default=None,
                   help="GPUs a Ray trial on CUDA asks for (default 1; a fraction such as 0.5 "
                        "lets trials share a GPU); only with --executor ray")
    p.add_argument("--retry-failed", action="store_true", help="rerun trials recorded as failed")
    p.add_argument("--retry-claimed", action="store_true",
                   help="take over trials claimed by a run on another host (a shared --out) "
                        "that is known to be dead; without it they are listed and not run")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--set", action="append", metavar="KEY=V1,V2",
                   help="change the grid: every configuration of the chosen size with KEY set "
                        "to each value (TOML values, e.g. --set latent_dim=2,8 or "
                        "--set hidden=[16],[32]); repeat for several keys")
    p.add_argument("--unset", action="append", metavar="KEY",
                   help="drop KEY from every configuration of the chosen size, so the trial "
                        "uses its own default (e.g. --set model=hierarchical --unset "
                        "latent_dim: a model graph declares its latents' dims); repeatable")
    p.set_defaults(func=run)


def parse_grid_sets(items) -> dict:
    """``["latent_dim=2,8", "hidden=[16],[32]"]`` -> ``{"latent_dim": [2, 8], "hidden": [[16],
    [32]]}``: the values of a key are read as one TOML array (text without quotes stays text)."""
    import tomllib

    out = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise ValueError(f"--set {item!r} is invalid: use KEY=V1,V2, e.g. --set latent_dim=2,8")
        try:
            values = tomllib.loads(f"v = [{raw}]")["v"]
        except tomllib.TOMLDecodeError:
            values = [v.strip() for v in raw.split(",")]
        if key in out or len(values) != len({repr(v) for v in values}):
            raise ValueError(f"--set {item!r} repeats a key or a value: give each once")
        out[key] = values
    return out


def with_grid_sets(found, size: str, sets: dict, unset=()):
    """``found`` (a Study) with the grid of ``size`` expanded by ``sets`` and the keys
    ``unset`` dropped from every configuration; the keys must be keys of the study's
    configurations (of any size), and a key is either set or unset."""
    import dataclasses
    import itertools

    unset = list(dict.fromkeys(unset or ()))
    if not sets and not unset:
        return found
    grids = [g for g in (found.grid, found.small_grid, found.paper_grid) if g]
    known = set().union(*(set(c) for g in grids for c in g))
    unknown = sorted((set(sets) | set(unset)) - known)
    if unknown:
        flag = f"--set {unknown[0]}=..." if unknown[0] in sets else f"--unset {unknown[0]}"
        raise ValueError(
            f"{flag} is not a configuration key of study {found.name!r}: "
            f"use one of {', '.join(sorted(known))}"
        )
    both = sorted(set(sets) & set(unset))
    if both:
        raise ValueError(f"--set {both[0]}=... and --unset {both[0]} disagree: pass one of them")
    field = {"default": "grid", "small": "small_grid", "paper": "paper_grid"}[size]
    base = [{k: v for k, v in config.items() if k not in unset}
            for config in found.configs(size)]
    grid = [{**config, **dict(zip(sets, values))}
            for config in base for values in itertools.product(*sets.values())]
    grid = list({repr(sorted(c.items())): c for c in grid}.values())  # drop repeats
    return dataclasses.replace(found, **{field: grid})


def _listing() -> str:
    from ppl_vae.study import available_studies, get_study
    from ppl_vae.study.report import split_docstring

    lines = []
    for name in available_studies():
        question, _ = split_docstring(get_study(name).question)
        first = question.strip().splitlines()[0] if question.strip() else ""
        lines.append(f"{name:<20} {first}")
    return "\n".join(lines)


def run(args) -> int:
    from ppl_vae import study

    if args.list:
        print(_listing())
        return 0
    if not args.name:
        raise ValueError("no study given: pass a NAME (see ppl-vae study --list)")
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds={args.seeds} is invalid: pass a number of seeds >= 1")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers={args.workers} is invalid: pass an integer >= 1")
    if args.address and args.executor != "ray":
        raise ValueError(f"--address={args.address} needs --executor ray")
    chosen = {f"--{name}": name for name in ("small", "paper") if getattr(args, name)}
    if args.size is not None:
        chosen[f"--size {args.size}"] = args.size
    if len(set(chosen.values())) > 1:
        raise ValueError(f"{' and '.join(chosen)} disagree: pass one of --small, --paper, --size")
    size = next(iter(chosen.values()), "default")
    if size not in study.SIZES:
        raise ValueError(f"--size={size} is invalid: pass one of {', '.join(study.SIZES)}")
    if os.path.isfile(args.out):
        raise ValueError(f"--out={args.out!r} is a file: pass a folder")
    if args.executor == "local":  # a Ray cluster's devices are checked against the cluster
        _shared.device_of(args)
    chosen_study = with_grid_sets(study.get_study(args.name), size, parse_grid_sets(args.set),
                                  args.unset)
    df = study.run(
        chosen_study, executor=args.executor, address=args.address, seeds=args.seeds,
        out=args.out, size=size, workers=args.workers, progress=not args.no_progress,
        retry_failed=args.retry_failed, retry_claimed=args.retry_claimed, device=args.device, gpus_per_trial=args.gpus_per_trial,
    )
    out_dir = os.path.join(args.out, chosen_study.name)
    failed = _count_failures(out_dir)
    trials = df[["config_id", "seed"]].drop_duplicates().shape[0] if not df.empty else 0
    left = len(df.attrs.get("claimed_elsewhere", ()))
    claimed = f", {left} claimed by another host's run (see report.md)" if left else ""
    print(f"{args.name}: {trials} trial(s) ok, {failed} failed{claimed}; wrote {out_dir}/report.md")
    return 1 if failed and trials == 0 else 0


def _count_failures(out_dir: str) -> int:
    import pandas as pd

    path = os.path.join(out_dir, "failures.csv")
    try:
        return len(pd.read_csv(path))
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return 0

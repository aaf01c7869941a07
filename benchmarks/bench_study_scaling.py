"""How well does the study runner scale from one to two workers, locally and on Ray?

Eight equal CPU-bound trials (a fixed chain of single-threaded torch matmuls,
about 2–3 s each on an idle core at the defaults) run through
:func:`ppl_vae.study.run`:

- serially in this process (``workers=1``),
- on two local worker processes (``executor="local", workers=2``),
- as Ray tasks on a local two-CPU Ray instance (``executor="ray"``).

"cold" timings include everything a user waits for: starting the fork server or
Ray, importing torch and ppl_vae in the workers, and writing the tables, figure
and report. "warm" repeats the run with the fork server / Ray instance already
used once in this process, which is the steady state of a long study or of
several runs in one script. Ray also gets a "fresh workers" row: an instance
this process started but has not run a task on yet, so each worker still imports
ppl_vae (the first run of a job on a running cluster looks like this). The driver
uses one torch thread too, so the serial baseline does the same single-threaded
work as each worker.

The machine is shared and noisy, so each round (all rows, interleaved) runs in a
fresh process (a cold fork server and a cold Ray each time) and ``--repeats``
rounds are summarised as min / median / max. Speed-ups are per round (serial
wall ÷ run wall), so slow spells hit both sides of a ratio.

Usage::

    python benchmarks/bench_study_scaling.py [--size 384] [--reps 500] [--trials 8] [--repeats 3]
    python benchmarks/bench_study_scaling.py --profile    # where local Ray's fixed time goes
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import ppl_vae.study as ps
from ppl_vae.study.store import TrialStore

SERIAL = "serial, workers=1"


def matmul_trial(config: dict, seed: int) -> dict[str, float]:
    """A fixed amount of matmul work; the checksum keeps it from being optimised away."""
    n = config["size"]
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=g) / math.sqrt(n)
    b = torch.eye(n)
    for _ in range(config["reps"]):
        b = torch.tanh(a @ b)
    return {"checksum": float(b.sum())}


def _timed(study: ps.Study, out: Path, **options) -> dict[str, float]:
    """Wall time of one run, and the mean time of a trial inside it (from the records).

    A mean trial time well above the in-process time of one trial means the
    workers did not get a CPU each (other load on the machine).
    """
    start = time.perf_counter()
    ps.run(study, seeds=study.default_seeds, out=out, progress=False, **options)
    wall = time.perf_counter() - start
    records = TrialStore(out / study.name / "trials").load().values()
    return {"wall": wall, "trial": sum(r["seconds"] for r in records) / len(records)}


def one_round(args) -> dict[str, dict[str, float]]:
    """Every row once, in this (fresh) process."""
    torch.set_num_threads(1)
    study = ps.Study(
        name="bench_scaling",
        question="Wall time of equal CPU-bound trials, serial vs two workers.",
        trial=matmul_trial,
        grid=[{"size": args.size, "reps": args.reps}],
        default_seeds=args.trials,
    )
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows[SERIAL] = _timed(study, root / "serial", workers=1)
        rows["process pool, 2 workers (cold)"] = _timed(study, root / "p1", workers=2)
        rows["process pool, 2 workers (warm)"] = _timed(study, root / "p2", workers=2)
        if not args.no_ray:
            import ray

            rows["ray, 2 CPUs (cold: starts Ray)"] = _timed(
                study, root / "r1", executor="ray", workers=2
            )
            ps.ray_executor.start_local_ray(num_cpus=2)
            try:
                rows["ray, 2 CPUs (warm, fresh workers)"] = _timed(
                    study, root / "r2", executor="ray"
                )
                rows["ray, 2 CPUs (warm)"] = _timed(study, root / "r3", executor="ray")
            finally:
                ray.shutdown()
    return rows


def _tree_cpu_seconds() -> float:
    """CPU seconds used so far by this process and its descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents, cpu = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            parents[int(entry.name)] = int(fields[1])
            cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, todo = {os.getpid()}, [os.getpid()]
    while todo:
        current = todo.pop()
        kids = {pid for pid, parent in parents.items() if parent == current} - tree
        tree |= kids
        todo += list(kids)
    return sum(cpu.get(pid, 0.0) for pid in tree)


def _pid() -> int:
    return os.getpid()


def _import_in_worker() -> float:
    start = time.perf_counter()
    import ppl_vae.study.executors  # noqa: F401 - what a worker's first trial task imports

    return time.perf_counter() - start


def profile_ray() -> None:
    """Where a local Ray run's fixed time goes, step by step (seconds)."""
    import ray

    start = time.perf_counter()
    ps.start_local_ray(num_cpus=2)
    steps = {"ray.init (local, 2 CPUs)": time.perf_counter() - start}
    try:
        noop = ray.remote(num_cpus=1)(_pid)
        start = time.perf_counter()
        ray.get([noop.remote() for _ in range(2)])
        steps["first task on each worker (no imports)"] = time.perf_counter() - start
        imports = ray.remote(num_cpus=1)(_import_in_worker)
        start = time.perf_counter()
        inside = ray.get([imports.remote() for _ in range(2)])
        steps["import ppl_vae in 2 fresh workers (wall)"] = time.perf_counter() - start
        steps["  the same, inside each worker (max)"] = max(inside)
        start = time.perf_counter()
        ray.get([noop.remote() for _ in range(200)])
        steps["one task round trip, warm worker [ms]"] = (time.perf_counter() - start) * 5
        before = _tree_cpu_seconds()
        time.sleep(5)
        steps["CPU s per wall s of an idle instance"] = (_tree_cpu_seconds() - before) / 5
    finally:
        start = time.perf_counter()
        ray.shutdown()
        steps["ray.shutdown"] = time.perf_counter() - start
    for label, seconds in steps.items():
        print(f"{label:<44}{seconds:>9.3f}")


def _stats(values: list[float]) -> str:
    return f"{min(values):6.2f} {statistics.median(values):6.2f} {max(values):6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384, help="matrix side")
    parser.add_argument("--reps", type=int, default=500, help="matmuls per trial")
    parser.add_argument("--trials", type=int, default=8, help="number of equal trials")
    parser.add_argument("--repeats", type=int, default=3, help="rounds, each in a fresh process")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray runs")
    parser.add_argument("--profile", action="store_true",
                        help="only time the steps of a local Ray instance's fixed cost")
    parser.add_argument("--round", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.round:
        print(json.dumps(one_round(args)))
        return
    if args.profile:
        profile_ray()
        return

    torch.set_num_threads(1)
    start = time.perf_counter()
    matmul_trial({"size": args.size, "reps": args.reps}, 0)
    print(f"one trial in process: {time.perf_counter() - start:.2f} s ({args.trials} trials)")
    print("load average before: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    command = [sys.executable, __file__, "--round", "--size", str(args.size),
               "--reps", str(args.reps), "--trials", str(args.trials)]
    command += ["--no-ray"] if args.no_ray else []
    rounds = []
    for i in range(args.repeats):
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        rounds.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"round {i + 1}/{args.repeats}: " + ", ".join(
            f"{label.split(' (')[0].split(',')[0]} {row['wall']:.1f}s"
            for label, row in rounds[-1].items()), flush=True)
    print("load average after:  {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))

    print(f"\n{args.repeats} rounds; min / median / max")
    print(f"{'run':<36}{'wall [s]':>21}{'speed-up vs serial':>22}{'mean trial [s]':>21}"
          f"{'overhead [s]':>21}")
    for label in rounds[0]:
        walls = [r[label]["wall"] for r in rounds]
        ups = [r[SERIAL]["wall"] / r[label]["wall"] for r in rounds]
        trials = [r[label]["trial"] for r in rounds]
        # wall minus the trials' own time spread over the workers: the runner's fixed
        # cost, which stays readable when other load slows the trials themselves
        workers = 1 if label == SERIAL else 2
        extra = [w - args.trials * t / workers for w, t in zip(walls, trials, strict=True)]
        print(f"{label:<36}{_stats(walls):>21}{_stats(ups):>22}{_stats(trials):>21}"
              f"{_stats(extra):>21}")
    if not args.no_ray:
        print("\nRay speed-up / warm pool speed-up (per round):")
        pool = "process pool, 2 workers (warm)"
        for label in [label for label in rounds[0] if label.startswith("ray")]:
            ratios = [r[pool]["wall"] / r[label]["wall"] for r in rounds]
            print(f"  {label:<34}{_stats(ratios)}")


if __name__ == "__main__":
    main()

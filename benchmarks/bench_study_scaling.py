"""How well does the study runner scale from one to two workers?

Eight equal CPU-bound trials (a fixed chain of single-threaded torch matmuls,
about 2–3 s each on an idle core) run through :func:`ppl_vae.study.run`:

- serially in this process (``workers=1``),
- on two local worker processes (``executor="local", workers=2``),
- as Ray tasks on a local two-CPU Ray instance (``executor="ray"``).

"cold" timings include everything a user waits for: starting the fork server or
Ray, importing torch in the workers, and writing the tables, figure and report.
"warm" timings repeat the run with the fork server / Ray instance already up,
which is the steady state of a long study. The driver uses one torch thread too,
so the serial baseline does the same single-threaded work as each worker.

Usage::

    python benchmarks/bench_study_scaling.py [--size 384] [--reps 500] [--trials 8]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import torch

import ppl_vae.study as ps
from ppl_vae.study.store import TrialStore


def matmul_trial(config: dict, seed: int) -> dict[str, float]:
    """A fixed amount of matmul work; the checksum keeps it from being optimised away."""
    n = config["size"]
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=g) / math.sqrt(n)
    b = torch.eye(n)
    for _ in range(config["reps"]):
        b = torch.tanh(a @ b)
    return {"checksum": float(b.sum())}


def _timed(study: ps.Study, out: Path, **options) -> tuple[float, float]:
    """Wall time of one run, and the mean time of a trial inside it (from the records).

    A mean trial time well above the in-process time of one trial means the
    workers did not get a CPU each (other load on the machine).
    """
    start = time.perf_counter()
    ps.run(study, seeds=study.default_seeds, out=out, progress=False, **options)
    wall = time.perf_counter() - start
    records = TrialStore(out / study.name / "trials").load().values()
    return wall, sum(r["seconds"] for r in records) / len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384, help="matrix side")
    parser.add_argument("--reps", type=int, default=500, help="matmuls per trial")
    parser.add_argument("--trials", type=int, default=8, help="number of equal trials")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray runs")
    args = parser.parse_args()
    torch.set_num_threads(1)

    study = ps.Study(
        name="bench_scaling",
        question="Wall time of equal CPU-bound trials, serial vs two workers.",
        trial=matmul_trial,
        grid=[{"size": args.size, "reps": args.reps}],
        default_seeds=args.trials,
    )
    start = time.perf_counter()
    matmul_trial(study.grid[0], 0)
    single = time.perf_counter() - start
    print(f"one trial in process: {single:.2f} s ({args.trials} trials)")
    print("load average before: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        serial = _timed(study, root / "serial", workers=1)
        rows.append(("serial, workers=1", serial))
        rows.append(("process pool, 2 workers (cold)", _timed(study, root / "p1", workers=2)))
        rows.append(("process pool, 2 workers (warm)", _timed(study, root / "p2", workers=2)))
        if not args.no_ray:
            import ray

            rows.append(
                (
                    "ray, 2 CPUs (cold, starts Ray)",
                    _timed(study, root / "r1", executor="ray", workers=2),
                )
            )
            ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
            try:
                rows.append(
                    ("ray, 2 CPUs (warm instance)", _timed(study, root / "r2", executor="ray"))
                )
            finally:
                ray.shutdown()

    print("load average after:  {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    print(f"\n{'run':<34}{'wall [s]':>10}{'speed-up':>10}{'mean trial [s]':>16}")
    for label, (wall, trial_mean) in rows:
        print(f"{label:<34}{wall:>10.2f}{serial[0] / wall:>9.2f}x{trial_mean:>16.2f}")


if __name__ == "__main__":
    main()

"""pv.fit steps per second at 1 and 2 torch threads, on a small and a large model.

Question: which torch thread count should the CLI and the Python API use by default?
The CLI's quickstart sets one thread; the Python API kept torch's default (one per
core). On a shared machine — other processes busy on the cores, the realistic case on
a laptop or a CI runner — intra-op threads wait for each other at every operation.

Models: the 8×8 digits VAE (64-256-8, relu, batch 128, the digits data) and Burda et
al.'s 784-200-200-50 tanh VAE (batch 100, synthetic 0/1 data). For each, 1 and 2
threads run in interleaved blocks (the order alternating) in this one process, each
block ``--steps`` steps of pv.fit timed from its first step to its end (one-off set-up
excluded); the table gives steps/s per repetition, the median, and the ratio
(1 thread / 2 threads) per repetition. The machine's load (``os.getloadavg``) is printed
before and after: the numbers are only meaningful together with it.

Run: ``python benchmarks/bench_threads.py [--reps 3] [--steps 200]``.
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch
from bench_fit_step import SETTINGS, build, data_for, fit_steps


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def measure(cfg, x, reps: int, steps: int, threads=(1, 2)) -> dict:
    """Steps/s per thread count, ``reps`` interleaved blocks, order alternating."""
    cpu = torch.device("cpu")
    model = build(cfg)
    fit_steps(model, x, 20, cfg["batch"], 1e-3, cpu)  # warm-up
    got = {t: [] for t in threads}
    for rep in range(reps):
        for t in threads if rep % 2 == 0 else tuple(reversed(threads)):
            torch.set_num_threads(t)
            got[t].append(1.0 / fit_steps(build(cfg), x, steps, cfg["batch"], 1e-3, cpu))
    return got


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--n", type=int, default=10_000, help="rows of synthetic 784-d data")
    args = p.parse_args(argv)
    print("before:", _load())
    print(f"{'model':<10} {'threads':>7}  steps/s per repetition        median")
    ratios = {}
    for name, cfg in SETTINGS.items():
        got = measure(cfg, data_for(cfg, args.n, torch.device("cpu")), args.reps, args.steps)
        for t, rates in got.items():
            cells = " ".join(f"{r:7.1f}" for r in rates)
            print(f"{name:<10} {t:>7}  {cells:<28} {statistics.median(rates):7.1f}")
        ratios[name] = [a / b for a, b in zip(got[1], got[2])]
    print("after: ", _load())
    for name, r in ratios.items():
        cells = ", ".join(f"{v:.2f}" for v in r)
        print(f"{name}: steps/s at 1 thread / at 2 threads = {cells} (median {statistics.median(r):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

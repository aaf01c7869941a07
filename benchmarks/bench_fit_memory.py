"""Is pv.fit's memory flat over a long run (no growth after warm-up)?

Trains the 784-200-200-50 tanh VAE on synthetic binary data for ``--steps`` steps in
segments of ``--every`` steps, resuming from a checkpoint between segments is *not*
used: one ``pv.fit`` call with a callback that records the resident set size (RSS, from
``/proc/self/statm``) and, on CUDA, ``torch.cuda.memory_allocated``. Reports the
memory after warm-up (the first 10 % of steps) and its growth to the end; the history
itself grows by one row per step (a few hundred bytes), which is the expected slope.

Run: ``python benchmarks/bench_fit_memory.py [--steps 5000] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import os

import torch

import ppl_vae as pv


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class Probe:
    """A pv.fit callback sampling memory every ``every`` steps."""

    def __init__(self, every: int):
        self.every, self.samples = every, []

    def on_step(self, row):
        if row["step"] % self.every == 0:
            cuda = torch.cuda.memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
            self.samples.append((row["step"], rss_mib(), cuda))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(20_000, 784, generator=g) < 0.15).float()
    model = pv.build("vae", data_dim=784, latent_dim=50,
                     decoder={"hidden": [200, 200], "activation": "tanh"},
                     guide={"hidden": [200, 200], "activation": "tanh"}, seed=0)
    probe = Probe(args.every)
    pv.fit(model, x, steps=args.steps, batch_size=100, seed=0, progress=False,
           device=args.device, callbacks=[probe])
    warm = [s for s in probe.samples if s[0] >= args.steps // 10]
    first, last = warm[0], warm[-1]
    print(f"{args.steps} steps on {args.device}: RSS {first[1]:.1f} MiB at step {first[0]} -> "
          f"{last[1]:.1f} MiB at step {last[0]} (growth {last[1] - first[1]:+.1f} MiB; the "
          f"history's own rows account for ~{(last[0] - first[0]) * 0.0003:.1f} MiB)")
    if torch.cuda.is_available() and args.device != "cpu":
        print(f"CUDA allocated {first[2]:.1f} -> {last[2]:.1f} MiB")
    for step, rss, cuda in probe.samples:
        print(f"  step {step:>6}: RSS {rss:8.1f} MiB" + (f", CUDA {cuda:.1f} MiB" if cuda else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Per-step host cost of pv.fit against a stock ``pyro.infer.SVI.step`` on the same program.

Question: on a model so small that compute is negligible (8-d data, a 2-d latent,
16 hidden units, batch 16, one CPU thread), what does the trainer's own bookkeeping
(batch order, history rows, the non-finite check, callbacks, the progress bar) cost
over Pyro's own SVI loop? On a GPU, where a small step is launch-bound, this host
time is the step. Target (issue "Architecture, round 2"): a pv.fit step within 1.1× of
``SVI.step``.

The stock loop is written as Pyro users write it: ``pyro.module`` registers the
model's networks in the parameter store, ``pyro.optim.Adam`` and ``Trace_ELBO``,
one ``svi.step(x_batch, idx=..., num_data=N)`` per step on a seeded random batch.
pv.fit is timed from its ``on_start`` to its ``on_end`` callback (the loop only, not
the one-off data checks). Both run in this process in interleaved blocks (order
alternating); the ratio of each block is reported (min / median / max).

Run: ``python benchmarks/bench_fit_overhead.py [--blocks 7] [--steps 500]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO

import ppl_vae as pv


def tiny_model():
    return pv.build("vae", data_dim=8, latent_dim=2, likelihood={"kind": "normal", "scale": 1.0},
                    decoder={"hidden": [16]}, guide={"hidden": [16]}, seed=0)


class _Clock:
    def on_start(self, model, history):
        self.start = time.perf_counter()

    def on_end(self, history):
        self.seconds = time.perf_counter() - self.start


def fit_seconds_per_step(model, x, steps: int, batch: int) -> float:
    clock = _Clock()
    pv.fit(model, x, steps=steps, batch_size=batch, seed=0, progress=False, callbacks=[clock])
    return clock.seconds / steps


def svi_seconds_per_step(model, x, steps: int, batch: int) -> float:
    pyro.clear_param_store()

    def program(x, idx=None, num_data=None):
        pyro.module("vae", model)
        return model.model(x, idx=idx, num_data=num_data)

    def guide(x, idx=None, num_data=None):
        pyro.module("vae", model)
        return model.guide(x, idx=idx, num_data=num_data)

    svi = SVI(program, guide, pyro.optim.Adam({"lr": 1e-3}), Trace_ELBO())
    n = x.shape[0]
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, n, (batch,), generator=g)
        svi.step(x[idx], idx=idx, num_data=n)
    return (time.perf_counter() - start) / steps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=7)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    x = torch.randn(1024, 8, generator=torch.Generator().manual_seed(0))
    model = tiny_model()
    fit_seconds_per_step(model, x, 50, args.batch)  # warm-up
    svi_seconds_per_step(model, x, 50, args.batch)
    got = {"fit": [], "svi": []}
    for block in range(args.blocks):
        for which in list(got)[:: 1 if block % 2 == 0 else -1]:
            run = fit_seconds_per_step if which == "fit" else svi_seconds_per_step
            got[which].append(run(model, x, args.steps, args.batch))
    ms = {k: 1e3 * statistics.median(v) for k, v in got.items()}
    ratios = [a / b for a, b in zip(got["fit"], got["svi"])]
    print(f"tiny VAE (8-d, batch {args.batch}, {args.threads} thread(s)): pv.fit "
          f"{ms['fit']:.3f} ms/step, stock SVI.step {ms['svi']:.3f} ms/step")
    print(f"  ratio fit / svi min/median/max {min(ratios):.2f} / "
          f"{statistics.median(ratios):.2f} / {max(ratios):.2f}  (target <= 1.1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

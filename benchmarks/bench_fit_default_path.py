"""Is pv.fit with default options as fast as the original one-loop trainer?

``_fit_baseline.py`` is the training loop as it was before objectives, optimisers,
schedules, validation and callbacks were added. Both run in this process on the
same data and model, in interleaved blocks (order alternating), one thread; the
ratio new/old of each block's seconds per step is reported (min, median, max).
Both must produce the same losses, which is checked too.

Usage: python benchmarks/bench_fit_default_path.py [--blocks 10] [--steps 300]
"""

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch

import ppl_vae as pv


def _baseline():
    spec = importlib.util.spec_from_file_location("_fit_baseline", Path(__file__).with_name("_fit_baseline.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=10)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--latent-dim", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = pv.data.load("digits", binarize=True)
    fits = {"old": _baseline(), "new": pv.fit}

    def timed(name):
        model = pv.build("vae", latent_dim=args.latent_dim)
        t, c = time.perf_counter(), time.process_time()
        result = fits[name](model, data.x_train, steps=args.steps, seed=0, progress=False)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        return {"wall": wall / args.steps, "cpu": cpu / args.steps}, result.history.loss.tolist()

    timed("old"), timed("new")  # warm-up
    ratios = {"wall": [], "cpu": []}
    per_step = {"old": [], "new": []}
    for block in range(args.blocks):
        order = ("old", "new") if block % 2 == 0 else ("new", "old")
        out = {name: timed(name) for name in order}
        assert out["old"][1] == out["new"][1], "default path changed the numbers"
        for name, (seconds, _) in out.items():
            per_step[name].append(seconds)
        for clock, values in ratios.items():
            values.append(out["new"][0][clock] / out["old"][0][clock])
    for name, values in per_step.items():
        print(f"{name}: median {statistics.median(v['wall'] for v in values) * 1e3:.3f} ms/step wall, "
              f"{statistics.median(v['cpu'] for v in values) * 1e3:.3f} ms/step CPU")
    for clock, r in ratios.items():
        print(f"ratio new/old per block ({clock} time): min {min(r):.3f}  median "
              f"{statistics.median(r):.3f}  max {max(r):.3f}  ({args.blocks} blocks of {args.steps} steps)")


if __name__ == "__main__":
    main()

"""Does training on the IWAE bound give a higher test IWAE bound than training on the ELBO?

Hypothesis (Burda, Grosse & Salakhutdinov, 2016, table 1): at the same number of
optimiser steps, a VAE trained on the IWAE bound of order K has a higher test
log-likelihood bound L_K (and L_5000-style estimates) than one trained on the ELBO.
Binarised digits, latent_dim=8, one hidden layer of 128, batch 128, lr 1e-3.

Usage: python benchmarks/iwae_vs_elbo_digits.py [--steps 3000] [--seeds 0 1 2] [--k 5]
"""

import argparse
import time

import pandas as pd
import torch

import ppl_vae as pv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--eval-k", type=int, nargs="+", default=[5, 500])
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = pv.data.load("digits", binarize=True)
    rows = []
    for seed in args.seeds:
        for objective in ("elbo", {"kind": "iwae", "num_particles": args.k}):
            model = pv.build("vae", latent_dim=8, decoder={"hidden": [128]}, guide={"hidden": [128]})
            t = time.perf_counter()
            pv.fit(model, data.x_train, steps=args.steps, batch_size=128, lr=1e-3, seed=seed,
                   bound=objective, progress=False)
            row = {"seed": seed, "objective": objective if isinstance(objective, str)
                   else f"iwae_k{args.k}", "train_s": round(time.perf_counter() - t, 1)}
            for k in args.eval_k:
                est = pv.infer.log_likelihood(model, data.x_test, num_samples=k, seed=123)
                row[f"test_L{k}"] = float(est.log_px.mean())
            row["test_elbo"] = float(pv.infer.elbo(model, data.x_test, num_particles=10, seed=123).mean())
            rows.append(row)
            print(row, flush=True)
    frame = pd.DataFrame(rows)
    print(frame.to_string(index=False))
    print(frame.drop(columns="seed").groupby("objective").mean().to_string())


if __name__ == "__main__":
    main()

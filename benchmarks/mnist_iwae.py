"""MNIST at paper scale: Burda et al.'s one-stochastic-layer VAE trained by pv.fit, IWAE-5000 test log p(x).

Question: how close does ``pv.fit`` + ``pv.infer.log_likelihood`` come to the published
test log-likelihood of the one-stochastic-layer VAE on binarized MNIST for a given
epoch budget, and how fast is each epoch on this device?

Protocol (Burda, Grosse & Salakhutdinov, 2016, "Importance weighted autoencoders",
§5 and Table 1): 784-200-200-50 with tanh hidden units, Bernoulli pixels, Adam,
batch 100, the learning-rate schedule of their appendix (``lr_schedule="iwae_paper"``
in ``pv.fit``, here over the epochs given), dynamically binarized training data; test
log p(x) by importance sampling with K = 5000 on the test set. Their VAE (k = 1) reaches
−86.76 nats after 3,280 passes; this script trains for ``--epochs`` passes (a budget a
CPU can afford) and prints the figure beside the paper's, with the ELBO, the share of
test points whose k̂ exceeds the sample-size threshold, and the seconds per epoch.

Run: ``python benchmarks/mnist_iwae.py --epochs 5 --device auto --n-test 1000``
(``ppl-vae bench mnist_iwae ...``). The MNIST folder is ``--root``, else
``$PPL_VAE_MNIST``, else ``../shared/data/mnist`` next to the checkout; ``--out``
writes the CSV.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import pandas as pd
import torch

PAPER_VAE_K1 = -86.76  # Burda et al. (2016), Table 1, MNIST, VAE, 1 stochastic layer, k = 1
PAPER_PASSES = 3280


def _root(arg):
    if arg:
        return arg
    if os.environ.get("PPL_VAE_MNIST"):
        return os.environ["PPL_VAE_MNIST"]
    return str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist")


def build():
    import ppl_vae as pv
    from ppl_vae.studies._study_kit import MNIST_VAE  # also the inference_gaps study's model

    return pv.build("vae", data_dim=784, seed=0, **MNIST_VAE)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the training set")
    p.add_argument("--device", default="auto")
    p.add_argument("--root", default=None, help="folder with the four MNIST IDX files")
    p.add_argument("--n-train", type=int, default=None)
    p.add_argument("--n-test", type=int, default=10_000)
    p.add_argument("--k", type=int, default=5000, help="importance samples per test image")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="CSV file for the result row")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import ppl_vae as pv

    data = pv.data.load("mnist", root=_root(args.root), n_train=args.n_train, n_test=args.n_test)
    x_test = torch.as_tensor(data.x_test)
    # a fixed stochastic binarization of the test set (seeded), as the training data are
    # binarized afresh per batch
    x_test = torch.bernoulli(x_test, generator=torch.Generator().manual_seed(123))
    model = build()
    n = len(data.x_train)
    steps = max(1, round(args.epochs * n / args.batch_size))
    t0 = time.perf_counter()
    pv.fit(model, data.x_train, steps=steps, batch_size=args.batch_size, lr=args.lr,
           seed=args.seed, device=args.device, binarize="dynamic", progress=False,
           lr_schedule="iwae_paper")
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    elbo = pv.infer.elbo(model, x_test, num_particles=1, seed=1)
    est = pv.infer.log_likelihood(model, x_test, num_samples=args.k, seed=2)
    eval_s = time.perf_counter() - t0
    s = est.summary()
    device = str(next(model.parameters()).device)
    row = {
        "epochs": args.epochs, "steps": steps, "device": device, "n_train": n,
        "n_test": len(x_test), "k": args.k,
        "elbo": float(elbo.mean()), "log_px": s["log_px"], "log_px_se": s["log_px_se"],
        "share_unreliable": s["share_unreliable"], "khat_threshold": s["khat_threshold"],
        "ess_mean": s["ess_mean"], "seconds_per_epoch": train_s / args.epochs,
        "eval_seconds": eval_s, "paper_log_px": PAPER_VAE_K1, "paper_passes": PAPER_PASSES,
    }
    print(f"MNIST 784-200-200-50 tanh VAE, {args.epochs:g} epoch(s) ({steps} steps, batch "
          f"{args.batch_size}) on {device}: {row['seconds_per_epoch']:.1f} s/epoch")
    print(f"test ELBO {row['elbo']:.2f}; IWAE-{args.k} log p(x) {row['log_px']:.2f} ± "
          f"{row['log_px_se']:.2f} on {len(x_test)} images ({eval_s:.0f} s); k̂ > "
          f"{row['khat_threshold']:.2f} on {100 * row['share_unreliable']:.1f} % of them")
    print(f"paper (Burda et al. 2016, Table 1, VAE k=1, {PAPER_PASSES} passes): "
          f"{PAPER_VAE_K1:.2f}; gap {row['log_px'] - PAPER_VAE_K1:+.2f} nats "
          f"after {args.epochs:g} pass(es)")
    if args.out:
        pd.DataFrame([row]).to_csv(args.out, index=False)
    return 0 if math.isfinite(row["log_px"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""MNIST: the ``hierarchical`` graph preset against the one-layer VAE for the same budget.

Question: declared as a spec, does Burda et al.'s two-stochastic-layer model train as
the paper's does relative to its one-layer VAE — a higher test log p(x) for the same
epochs — and how many latent dimensions stay active in each layer?

Protocol (Burda, Grosse & Salakhutdinov 2016, §5, Table 1), both models: Bernoulli
pixels, tanh MLPs (one layer: 784-200-200-50; two layers: the ``hierarchical`` preset,
784-200-200-100 then 100-100-50), Adam, batch 100, their learning-rate schedule
(``lr_schedule="iwae_paper"``, here over the epochs given), dynamically binarized
training data, objective ELBO (their "VAE" rows); test log p(x) by importance sampling
with ``--k`` samples on ``--n-test`` images (theirs: 5000 on all 10,000), active units
per layer (Var_x E_q[z] > 10⁻², their §5.2). Their VAE rows after 3,280 passes:
−86.76 (one layer), −85.33 (two layers); IWAE k = 50, two layers: −82.90.

Run: ``python benchmarks/mnist_hierarchical.py --epochs 10 --n-test 1000 --k 1000``.
MNIST is read from ``$PPL_VAE_MNIST``, else ``../shared/data/mnist`` next to the checkout.
"""

from __future__ import annotations

import argparse
import time

import torch

PAPER = {"vae": -86.76, "hierarchical": -85.33}  # Burda et al. (2016), Table 1, VAE (k = 1)


def run_one(name, data, x_test, args) -> dict:
    import ppl_vae as pv
    from ppl_vae.studies._study_kit import MNIST_VAE

    model = pv.build("hierarchical", seed=0) if name == "hierarchical" else \
        pv.build("vae", data_dim=784, seed=0, **MNIST_VAE)
    steps = max(1, round(args.epochs * len(data.x_train) / 100))
    t0 = time.perf_counter()
    pv.fit(model, data.x_train, steps=steps, batch_size=100, lr=1e-3, seed=0,
           binarize="dynamic", progress=False, lr_schedule="iwae_paper")
    seconds = time.perf_counter() - t0
    est = pv.infer.log_likelihood(model, x_test, num_samples=args.k, seed=2).summary()
    elbo = float(pv.infer.elbo(model, x_test, num_particles=1, seed=1).mean())
    latents = ("z1", "z2") if name == "hierarchical" else ("z",)
    active = {z: pv.metrics.active_units(model, x_test, latent=z) for z in latents}
    return {"model": name, "epochs": args.epochs, "seconds_per_epoch": seconds / args.epochs,
            "elbo": elbo, "log_px": est["log_px"], "log_px_se": est["log_px_se"],
            "active_units": active, "paper_log_px": PAPER[name]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=float, default=10.0)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import ppl_vae as pv
    from ppl_vae.studies._study_kit import mnist_root

    data = pv.data.load("mnist", root=str(mnist_root()), n_test=args.n_test)
    x_test = torch.bernoulli(torch.as_tensor(data.x_test), generator=torch.Generator().manual_seed(123))
    for name in ("vae", "hierarchical"):
        row = run_one(name, data, x_test, args)
        print(f"{name}: {row['epochs']:g} epochs ({row['seconds_per_epoch']:.1f} s/epoch); test "
              f"ELBO {row['elbo']:.2f}, IWAE-{args.k} log p(x) {row['log_px']:.2f} ± "
              f"{row['log_px_se']:.2f} on {len(x_test)} images; active units "
              f"{row['active_units']}; paper (3,280 passes) {row['paper_log_px']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``ppl-vae quickstart`` — train a VAE on the bundled binarized digits and show it.

Writes, into ``--out``: the trained model, prior samples (decoder means and
noisy draws), reconstructions of test digits, the training curve, a table
of the train/test ELBO next to the importance-sampled log p(x) (K = 1000, with
mean ESS and the share of k̂ > 0.7), and prior vs aggregated-posterior samples.
"""

from __future__ import annotations

import time

import pandas as pd

from ppl_vae.cli import _shared


def register(sub) -> None:
    p = sub.add_parser("quickstart", help="train a VAE on the bundled digits (about a minute)")
    p.add_argument("--out", default="ppl_vae_out/quickstart", help="output folder")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--latent-dim", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    _shared.add_threads_option(p)
    _shared.add_device_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    import ppl_vae as pv
    from ppl_vae import plots

    _shared.apply_threads(args)
    t0 = time.perf_counter()
    out = _shared.output_dir(args.out)
    data = pv.data.load("digits", binarize=True)
    model = pv.build("vae", data_dim=data.data_dim, latent_dim=args.latent_dim, seed=args.seed)
    print(f"training a VAE (latent_dim={args.latent_dim}) on {len(data.x_train)} binarized "
          f"8x8 digits for {args.steps} steps ...")
    result = pv.fit(model, data.x_train, steps=args.steps, batch_size=128, lr=1e-3,
                    seed=args.seed, progress=not args.no_progress, device=_shared.device_of(args))
    model = result.model
    pv.save(model, out / "model.pt")
    result.history.to_csv(out / "history.csv", index=False)

    rows = []
    for split, x in (("train", data.x_train), ("test", data.x_test)):
        e = pv.infer.elbo(model, x, num_particles=10, seed=args.seed)
        est = pv.infer.log_likelihood(model, x, num_samples=1000, seed=args.seed).summary()
        rows.append({"split": split, "n": len(x), "elbo": float(e.mean()),
                     "elbo_se": float(e.std() / len(x) ** 0.5),
                     "log_px_is_k1000": est["log_px"], "ess_mean": est["ess_mean"],
                     "share_unreliable": est["share_unreliable"]})
    table = pd.DataFrame(rows)
    table.to_csv(out / "elbo.csv", index=False)

    shape = data.image_shape
    plots.image_grid(model.sample(64, seed=args.seed), image_shape=shape,
                     path=out / "prior_samples.png", title="prior samples: decoder means")
    plots.image_grid(model.sample(64, noise=True, seed=args.seed), image_shape=shape,
                     path=out / "prior_samples_noisy.png", title="prior samples: with Bernoulli noise")
    plots.sample_comparison(
        {"prior p(z)": model.sample(64, seed=args.seed),
         "aggregated posterior q(z)": pv.infer.sample_aggregate_posterior(
             model, data.x_train, 64, seed=args.seed),
         "data": data.x_test[:64]},
        image_shape=shape, path=out / "prior_vs_aggregate_samples.png",
        title="decoder means from z drawn from the prior vs the aggregated posterior")
    x = torch.as_tensor(data.x_test[:32])
    with torch.no_grad():
        recon = model.decode(model.encode(x).mean).mean
    plots.reconstruction_grid(x, recon, image_shape=shape, path=out / "reconstructions.png")
    plots.training_curve(result.history, path=out / "training_curve.png", title="VAE on digits")

    print()
    _shared.print_table(table)
    print(f"\ndone in {time.perf_counter() - t0:.0f} s; wrote to {out}/:")
    for f in sorted(p.name for p in out.iterdir()):
        print(f"  {f}")
    return 0

"""Training-step time of pv.fit against a hand-written PyTorch VAE step on the same networks.

Question: how much does training through Pyro's ``Trace_ELBO`` (pv.fit: model and
guide traced every step, the checks and bookkeeping of the loop) cost over the same
VAE step written directly in torch: encoder, reparameterised z, decoder, Bernoulli
log-likelihood, the single-sample Monte Carlo KL term log q(z|x) − log p(z) (the
estimator Trace_ELBO uses), Adam with the same settings?

Targets (issue "real scale"): ≤ 1.2× on a 784-d MLP VAE (Burda et al.'s 784-200-200-50
tanh, batch 100), ≤ 1.6× on the 8×8 digits VAE (64-256-8, batch 128).

Both run in this process in interleaved blocks (order alternating), one thread by
default; each block gives seconds per step for each, and the ratio pv.fit / hand is
reported (min, median, max). pv.fit's per-step time is read from its history (the
``time`` column), so one-off set-up (data checks, building the optimiser) is not
counted against it.

Run: ``python benchmarks/bench_fit_step.py [--blocks 7] [--steps 200] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import ppl_vae as pv

SETTINGS = {
    "mnist-784": {"data_dim": 784, "latent_dim": 50, "hidden": [200, 200], "activation": "tanh", "batch": 100},
    "digits-64": {"data_dim": 64, "latent_dim": 8, "hidden": [256], "activation": "relu", "batch": 128},
}


def build(cfg):
    return pv.build(
        "vae", data_dim=cfg["data_dim"], latent_dim=cfg["latent_dim"],
        decoder={"hidden": cfg["hidden"], "activation": cfg["activation"]},
        guide={"hidden": cfg["hidden"], "activation": cfg["activation"]}, seed=0,
    )


def data_for(cfg, n: int, device) -> torch.Tensor:
    if cfg["data_dim"] == 64:
        x = torch.as_tensor(pv.data.load("digits", binarize=True).x_train)
    else:
        g = torch.Generator().manual_seed(0)
        x = (torch.rand(n, cfg["data_dim"], generator=g) < 0.15).float()
    return x.to(device)


def hand_steps(model, x, steps: int, batch: int, lr: float) -> float:
    """Seconds per step of the hand-written loop on the package's own networks."""
    enc, dec, latent = model.q.net, model.decoder, model.latent_dim
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = x.shape[0]
    g = torch.Generator().manual_seed(1)
    perm = torch.randperm(n, generator=g).to(x.device)
    t0 = time.perf_counter()
    for step in range(steps):
        start = (step * batch) % max(1, n - batch)
        xb = x[perm[start : start + batch]]
        out = enc(xb)
        loc, scale = out[:, :latent], F.softplus(out[:, latent:]) + 1e-4
        z = loc + scale * torch.randn_like(loc)
        logits = dec(z)
        log_lik = -F.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(-1)
        log_q = torch.distributions.Normal(loc, scale).log_prob(z).sum(-1)
        log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        loss = -(log_lik + log_p - log_q).sum() * (n / batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def fit_steps(model, x, steps: int, batch: int, lr: float, device) -> float:
    res = pv.fit(model, x, steps=steps, batch_size=batch, lr=lr, seed=0, progress=False,
                 device=device)
    t = res.history["time"].to_numpy()
    return float(t[-1] - t[0]) / (steps - 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=7)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--n", type=int, default=10_000, help="rows of synthetic 784-d data")
    p.add_argument("--only", choices=sorted(SETTINGS), default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    for name, cfg in SETTINGS.items():
        if args.only and name != args.only:
            continue
        x = data_for(cfg, args.n, device)
        model = build(cfg).to(device)
        fit_steps(model, x, 20, cfg["batch"], 1e-3, device)  # warm-up
        hand_steps(model, x, 20, cfg["batch"], 1e-3)
        ratios, fits, hands = [], [], []
        for block in range(args.blocks):
            order = ("fit", "hand") if block % 2 == 0 else ("hand", "fit")
            got = {}
            for which in order:
                if which == "fit":
                    got[which] = fit_steps(model, x, args.steps, cfg["batch"], 1e-3, device)
                else:
                    got[which] = hand_steps(model, x, args.steps, cfg["batch"], 1e-3)
            fits.append(got["fit"])
            hands.append(got["hand"])
            ratios.append(got["fit"] / got["hand"])
        print(f"{name} on {device} ({args.threads} thread(s), batch {cfg['batch']}): pv.fit "
              f"{1e3 * statistics.median(fits):.2f} ms/step, hand-written "
              f"{1e3 * statistics.median(hands):.2f} ms/step; ratio min/median/max "
              f"{min(ratios):.2f} / {statistics.median(ratios):.2f} / {max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Training-step time of pv.fit against a hand-written PyTorch VAE step on the same networks.

Question: how much does training through Pyro's ``Trace_ELBO`` (pv.fit: model and
guide traced every step, the checks and bookkeeping of the loop) cost over the same
VAE step written directly in torch: encoder, reparameterised z, decoder, Bernoulli
log-likelihood, the single-sample Monte Carlo KL term log q(z|x) − log p(z) (the
estimator Trace_ELBO uses), Adam with the same settings?

Targets (issue "real scale"): ≤ 1.2× on a 784-d MLP VAE (Burda et al.'s 784-200-200-50
tanh, batch 100), ≤ 1.6× on the 8×8 digits VAE (64-256-8, batch 128).

Second question: what do deferred host reads (``pv.fit(..., sync_every=50)``, the loss
and gradient norm read back every 50 steps instead of every step) save on the device?
On the CPU a read costs nothing to wait for, so expect a ratio near 1.

All three run in this process in interleaved blocks (order alternating), one thread by
default; each block gives seconds per step for each, and the ratios to hand of pv.fit
reading every step (``sync_every=1``, the CPU default) and of ``sync_every=50`` (the GPU
default), and between the two, are reported (min, median, max). pv.fit's time runs from
its ``on_start`` callback (after the one-off set-up: data checks, building the
optimiser) to its ``on_end`` with the device drained — not from the history's ``time``
column, which on a GPU records when a step was queued.

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


class _Clock:
    """pv.fit callback: wall time from the first step to the end, the device drained."""

    def __init__(self, device):
        self.device = device

    def on_start(self, model, history):
        self.start = time.perf_counter()

    def on_end(self, history):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.start


def fit_steps(model, x, steps: int, batch: int, lr: float, device, sync_every=None) -> float:
    clock = _Clock(device)
    pv.fit(model, x, steps=steps, batch_size=batch, lr=lr, seed=0, progress=False,
           device=device, sync_every=sync_every, callbacks=[clock])
    return clock.seconds / steps


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
        fit_steps(model, x, 20, cfg["batch"], 1e-3, device, 1)  # warm-up
        fit_steps(model, x, 20, cfg["batch"], 1e-3, device, 50)
        hand_steps(model, x, 20, cfg["batch"], 1e-3)
        got = {"fit": [], "fit50": [], "hand": []}
        for block in range(args.blocks):
            for which in list(got)[:: 1 if block % 2 == 0 else -1]:
                if which == "hand":
                    got[which].append(hand_steps(model, x, args.steps, cfg["batch"], 1e-3))
                else:
                    got[which].append(fit_steps(model, x, args.steps, cfg["batch"], 1e-3, device,
                                                50 if which == "fit50" else 1))
        ms = {which: 1e3 * statistics.median(t) for which, t in got.items()}
        print(f"{name} on {device} ({args.threads} thread(s), batch {cfg['batch']}): pv.fit "
              f"reading every step {ms['fit']:.2f} ms/step, with sync_every=50 (the GPU "
              f"default) {ms['fit50']:.2f} ms/step, "
              f"hand-written {ms['hand']:.2f} ms/step")
        for a, b in (("fit", "hand"), ("fit50", "hand"), ("fit", "fit50")):
            ratios = [p / q for p, q in zip(got[a], got[b])]
            print(f"  ratio {a} / {b} min/median/max {min(ratios):.2f} / "
                  f"{statistics.median(ratios):.2f} / {max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``hierarchical`` graph preset against the same two-layer model written in torch.

Question: what does declaring Burda et al.'s two-stochastic-layer model as a spec (a
``GraphModel`` traced by Pyro every step) cost over the same model written by hand, for
a training step (pv.fit with Trace_ELBO against a torch loop on the package's own
networks: q(z1|x), q(z2|z1), p(z1|z2), p(x|z1), single-sample log-density terms, Adam)
and for importance sampling (pv.infer.log_likelihood against a hand-written K-sample
estimate in chunks of the same size)? Target (issue "Model graphs"): ≤ 1.2× for both.

The arms run in this process in interleaved blocks (order alternating), one thread by
default; ratios per block are reported as min / median / max.

Run: ``python benchmarks/bench_graph_step.py [--blocks 5] [--steps 100] [--k 200]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F

import ppl_vae as pv
from ppl_vae.math import softplus_scale


def gaussian_head(out, dim):
    return out[..., :dim], softplus_scale(out[..., dim:])


def log_weights(model, x, k: int) -> torch.Tensor:
    """log p(x, z1, z2) − log q(z1, z2 | x) for k draws per row, ``[k, N]``."""
    n1, n2 = model.latents["z1"]["dim"], model.latents["z2"]["dim"]
    loc1, sc1 = gaussian_head(model.encoders["z1"].net(x), n1)
    z1 = loc1 + sc1 * torch.randn((k, *loc1.shape), device=x.device)
    loc2, sc2 = gaussian_head(model.encoders["z2"].net(z1), n2)
    z2 = loc2 + sc2 * torch.randn_like(loc2)
    ploc, psc = gaussian_head(model.priors["z1"].net(z2), n1)
    logits = model.decoder(z1)
    log_lik = (x * logits - F.softplus(logits)).sum(-1)
    log_q = (torch.distributions.Normal(loc1, sc1).log_prob(z1).sum(-1)
             + torch.distributions.Normal(loc2, sc2).log_prob(z2).sum(-1))
    log_p = (torch.distributions.Normal(0.0, 1.0).log_prob(z2).sum(-1)
             + torch.distributions.Normal(ploc, psc).log_prob(z1).sum(-1))
    return log_lik + log_p - log_q


def hand_steps(model, x, steps: int, batch: int, lr: float) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = x.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    t0 = time.perf_counter()
    for step in range(steps):
        start = (step * batch) % max(1, n - batch)
        loss = -log_weights(model, x[perm[start : start + batch]], 1).sum() * (n / batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / steps


class _Clock:
    def on_start(self, model, history):
        self.start = time.perf_counter()

    def on_end(self, history):
        self.seconds = time.perf_counter() - self.start


def fit_steps(model, x, steps: int, batch: int, lr: float) -> float:
    clock = _Clock()
    pv.fit(model, x, steps=steps, batch_size=batch, lr=lr, seed=0, progress=False,
           callbacks=[clock])
    return clock.seconds / steps


@torch.no_grad()
def hand_is(model, x, k: int, chunk: int) -> float:
    t0 = time.perf_counter()
    parts = [log_weights(model, x, min(chunk, k - s)) for s in range(0, k, chunk)]
    log_w = torch.cat(parts, 0)
    (torch.logsumexp(log_w, 0) - math.log(k)).mean()
    return time.perf_counter() - t0


def pv_is(model, x, k: int, chunk: int) -> float:
    t0 = time.perf_counter()
    pv.infer.log_likelihood(model, x, num_samples=k, chunk_size=chunk, seed=0, diagnostics=False)
    return time.perf_counter() - t0


def blocks(arms: dict, count: int) -> dict:
    got = {name: [] for name in arms}
    for block in range(count):
        for name in list(arms)[:: 1 if block % 2 == 0 else -1]:
            got[name].append(arms[name]())
    return got


def report(title: str, got: dict, unit: float, label: str) -> None:
    med = {name: unit * statistics.median(t) for name, t in got.items()}
    a, b = list(got)
    ratios = [p / q for p, q in zip(got[a], got[b])]
    print(f"{title}: {a} {med[a]:.2f} {label}, {b} {med[b]:.2f} {label}; ratio {a}/{b} "
          f"min/median/max {min(ratios):.2f} / {statistics.median(ratios):.2f} / {max(ratios):.2f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=5)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--k", type=int, default=200, help="importance samples per test row")
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(10_000, 784, generator=g) < 0.15).float()
    model = pv.build("hierarchical")
    fit_steps(model, x, 10, 100, 1e-3)  # warm-up
    hand_steps(model, x, 10, 100, 1e-3)
    got = blocks({"pv.fit": lambda: fit_steps(model, x, args.steps, 100, 1e-3),
                  "hand": lambda: hand_steps(model, x, args.steps, 100, 1e-3)}, args.blocks)
    report(f"hierarchical training step (batch 100, {args.threads} thread(s))", got, 1e3, "ms/step")
    x_test = x[: args.n_test]
    chunk = 20
    got = blocks({"pv.infer.log_likelihood": lambda: pv_is(model, x_test, args.k, chunk),
                  "hand": lambda: hand_is(model, x_test, args.k, chunk)}, args.blocks)
    report(f"hierarchical IS (N={args.n_test}, K={args.k}, chunks of {chunk})", got, 1.0, "s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Throughput and memory of ``pv.infer.log_likelihood`` on an MLP VAE with 784-D binary data.

Question: is the generic, Pyro-traced estimator as fast as a hand-written
vectorised torch estimator on the same networks (target ≥ 0.9×), how much
faster is it than ``pyro.infer.Importance`` (target ≥ 200×), and does
``chunk_size`` keep K = 5000 on 1,000 datapoints under 1.5 GiB peak RSS?

``pyro.infer.Importance`` weighs whole traces (one joint log-weight for all
datapoints), so per-datapoint estimates need one run per datapoint; it is timed
on a few datapoints and extrapolated linearly to the full set (said in the
output). Peak memory is the peak resident set size of a fresh subprocess
(``ru_maxrss``), which counts torch's allocations that tracemalloc cannot see.

Run: ``python benchmarks/bench_log_likelihood.py [--quick] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import math
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

import ppl_vae as pv
from ppl_vae import _seed
from ppl_vae.infer.importance import _default_chunk, chunk_sizes

D, LATENT, HIDDEN = 784, 32, [256]


def make_model_and_data(n: int, seed: int = 0, steps: int = 300):
    """An MLP VAE briefly trained on procedurally generated binary 28×28 images (discs)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    cx, cy = torch.rand(n, 1, 1, generator=g) * 16 + 6, torch.rand(n, 1, 1, generator=g) * 16 + 6
    r = torch.rand(n, 1, 1, generator=g) * 6 + 3
    blobs = ((xx - cx) ** 2 + (yy - cy) ** 2 < r**2).float()  # discs of random size/place
    noise = (torch.rand(n, 28, 28, generator=g) < 0.03).float()
    x = (blobs + noise).clamp(max=1).reshape(n, D)
    model = pv.build("vae", data_dim=D, latent_dim=LATENT, decoder={"hidden": HIDDEN},
                     guide={"hidden": HIDDEN})
    pv.fit(model, x, steps=steps, batch_size=100, lr=2e-3, seed=seed, progress=False)
    return model, x


@torch.no_grad()
def handwritten(model, x, k: int, chunk: int) -> torch.Tensor:
    """log p(x) by IS written directly in torch: encoder once, z [K,N,L], decoder, logsumexp."""
    out = model.q.net(x)  # [N, 2L]
    loc, scale = out[:, :LATENT], F.softplus(out[:, LATENT:]) + 1e-4
    parts = []
    for kc in chunk_sizes(k, chunk, x.shape[0]):
        eps = torch.randn(kc, *loc.shape)
        z = loc + scale * eps  # [Kc, N, L]
        logits = model.decoder(z)  # [Kc, N, D]
        log_px_z = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits),
                                                       reduction="none").sum(-1)
        log_pz = (-0.5 * z * z - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_qz = (-0.5 * eps * eps - scale.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        parts.append(log_px_z + log_pz - log_qz)  # [Kc, N]
    log_w = torch.cat(parts)
    return torch.logsumexp(log_w, 0) - math.log(k)


def pyro_importance(model, x, k: int) -> torch.Tensor:
    """One ``pyro.infer.Importance`` run per datapoint (it weighs whole traces)."""
    from pyro.infer import EmpiricalMarginal, Importance  # noqa: F401 - the API being compared

    out = []
    for i in range(x.shape[0]):
        imp = Importance(model.model, guide=model.guide, num_samples=k)
        with torch.no_grad():
            imp.run(x[i : i + 1])
        out.append(imp.get_log_normalizer())
    return torch.stack(out)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def peak_memory(n: int, k: int, chunk: int, threads: int) -> tuple[float, float]:
    """(seconds, peak RSS in GiB) of log_likelihood(K=k, chunk_size=chunk) in a fresh process."""
    code = f"""
import resource, time, torch
torch.set_num_threads({threads})
import sys; sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r})
from bench_log_likelihood import make_model_and_data
import ppl_vae as pv
model, x = make_model_and_data({n})
t = time.perf_counter()
res = pv.infer.log_likelihood(model, x, num_samples={k}, chunk_size={chunk}, seed=0)
print(time.perf_counter() - t, float(res.log_px.mean()))
"""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kib <= before:
        raise RuntimeError("could not read the child's peak RSS (an earlier child was larger)")
    return float(done.stdout.split()[0]), peak_kib / 2**20


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--importance-points", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--memory-n", type=int, default=1000)
    p.add_argument("--memory-k", type=int, default=5000)
    p.add_argument("--memory-chunk", type=int, default=50)
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.k, args.importance_points, args.repeats = 50, 100, 2, 1
        args.memory_n, args.memory_k = 100, 200
    torch.set_num_threads(args.threads)
    model, x = make_model_and_data(args.n)
    chunk = _default_chunk(args.k, args.n, D)
    print(f"MLP VAE 784-{HIDDEN[0]}-{LATENT}, N={args.n} binary images, K={args.k}, "
          f"{args.threads} threads, chunk={chunk} particles (the default)")

    # warm up, and check the three estimators agree
    # Same seed, same chunks: both draw the same eps, so they must agree to float error.
    ours = pv.infer.log_likelihood(model, x[:20], num_samples=200, chunk_size=chunk, seed=0).log_px
    with _seed.seeded(0):
        hand = handwritten(model, x[:20], 200, chunk)
    imp = pyro_importance(model, x[:2], 200)
    print(f"agreement on 20 points, K=200, same seed: max |ours - hand| = "
          f"{float((ours - hand).abs().max()):.2e} nats; ours vs Importance (own draws) on 2 "
          f"points: {[round(float(v), 2) for v in ours[:2]]} vs {[round(float(v), 2) for v in imp]}")

    # Interleave the candidates and keep each one's best time, so a busy machine
    # slows them alike instead of penalising whichever ran during the busy spell.
    candidates = {
        "ours": lambda: pv.infer.log_likelihood(model, x, num_samples=args.k, seed=0),
        "nodiag": lambda: pv.infer.log_likelihood(model, x, num_samples=args.k, seed=0,
                                                  diagnostics=False),
        "hand": lambda: handwritten(model, x, args.k, chunk),
    }
    best = {name: math.inf for name in candidates}
    for _ in range(args.repeats):
        for name, fn in candidates.items():
            best[name] = min(best[name], best_of(fn, 1))
    t_ours, t_nodiag, t_hand = best["ours"], best["nodiag"], best["hand"]
    m = args.importance_points
    t_imp_sub = best_of(lambda: pyro_importance(model, x[:m], args.k), 1)
    t_imp = t_imp_sub * args.n / m

    rows = [
        ("pv.infer.log_likelihood (with k̂, ESS)", t_ours),
        ("pv.infer.log_likelihood (diagnostics=False)", t_nodiag),
        ("hand-written vectorised torch", t_hand),
        (f"pyro.infer.Importance (extrapolated from {m} points)", t_imp),
    ]
    print(f"\n{'estimator':<55}{'seconds':>10}{'datapoints/s':>14}")
    for name, t in rows:
        print(f"{name:<55}{t:>10.2f}{args.n / t:>14.1f}")
    print(f"\nthroughput ratio ours / hand-written: {t_hand / t_ours:.2f}x with diagnostics, "
          f"{t_hand / t_nodiag:.2f}x without (target >= 0.9x)")
    print(f"throughput ratio ours / pyro.infer.Importance: {t_imp / t_ours:.0f}x "
          f"(target >= 200x; Importance measured on {m} datapoints x K={args.k} = "
          f"{t_imp_sub:.2f} s, extrapolated linearly to {args.n})")

    secs, gib = peak_memory(args.memory_n, args.memory_k, args.memory_chunk, args.threads)
    print(f"\npeak RSS, K={args.memory_k} on {args.memory_n} datapoints, chunk_size="
          f"{args.memory_chunk}: {gib:.2f} GiB in {secs:.1f} s (target < 1.5 GiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

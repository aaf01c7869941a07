"""Wall time of ``pv.infer.ais`` on a 784-200-200-50 VAE against hand-written torch AIS.

Question: does reading the target through Pyro traces (conditioning, trace
weighing, two gradient passes) cost little next to a hand-written vectorised AIS
of the same model (target: ours at most 1.3× the hand-written time on the CPU)?

Both run the same algorithm with the same numbers: the sigmoidal schedule, C
chains per datapoint started at the prior, HMC with ``--leapfrog`` steps and a
per-datapoint step size adapted from past steps, and the counter-based random
numbers of ``ppl_vae.infer.hmc`` for the transitions and the same starting draws
(the prior's, under torch seed 0), so on short runs their estimates agree to float
rounding; over many steps the two computations' rounding (a Bernoulli log-density
written two ways) flips a few accept decisions and those chains part, so the
estimates then agree in distribution (the differences are printed). The hand-written version computes log p(z) and its gradient in closed
form and log p(x | z) with ``binary_cross_entropy_with_logits`` and one autograd pass.

Data: the 8×8 ``digits`` images, upsampled to 28×28 (784 binary pixels); the VAE is
trained for ``--train-steps`` SVI steps (a brief training, not a converged model).

Run: ``python benchmarks/bench_ais.py [--n 100 --chains 16 --steps 1000] [--threads 2]``;
``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F

import ppl_vae as pv
from ppl_vae.infer import hmc
from ppl_vae.infer.ais import temperatures

D, LATENT, HIDDEN = 784, 50, [200, 200]


def make_model_and_data(n: int, train_steps: int, seed: int = 0):
    data = pv.data.load("digits", binarize=True)
    images = torch.as_tensor(data.x_train, dtype=torch.float32).reshape(-1, 1, 8, 8)
    x = (F.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False) > 0.5)
    x = x.float().reshape(-1, D)
    model = pv.build("vae", data_dim=D, latent_dim=LATENT, decoder={"hidden": HIDDEN},
                     guide={"hidden": HIDDEN})
    if train_steps:
        pv.fit(model, x[n:], steps=train_steps, batch_size=100, lr=1e-3, seed=seed, progress=False)
    return model, x[:n]


def handwritten_ais(model, x, *, steps, chains, leapfrog, seed, step_size=0.1, target=0.65):
    """AIS from N(0, I) to p(z | x) for the Bernoulli VAE, written directly in torch."""
    n = x.shape[0]
    betas = temperatures("sigmoid", steps)
    chain_ids = torch.arange(n).reshape(1, n) * chains + torch.arange(chains).reshape(chains, 1)
    coord_ids = chain_ids.unsqueeze(-1) * LATENT + torch.arange(LATENT)

    def evaluate(z):
        with torch.enable_grad():
            z = z.detach().requires_grad_()
            logits = model.decoder(z)
            ll = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits),
                                                     reduction="none").sum(-1)
            (g_ll,) = torch.autograd.grad(ll.sum(), z)
        z = z.detach()
        log_pz = (-0.5 * z * z - 0.5 * math.log(2 * math.pi)).sum(-1)
        return hmc.State(z, log_pz, ll.detach(), -z, g_ll)

    with torch.no_grad():
        state = evaluate(torch.randn(chains, n, LATENT, generator=torch.Generator().manual_seed(seed)))
    eps = torch.full((n,), step_size)
    log_w = torch.zeros(chains, n, dtype=torch.float64)
    for t in range(1, len(betas)):
        log_w += float(betas[t] - betas[t - 1]) * state.incr.double()
        if t == len(betas) - 1:
            break
        momentum = hmc.normal(seed, t, 0, coord_ids, torch.float32)
        log_u = torch.log(hmc.uniform(seed, t, 2, chain_ids, torch.float32))
        state, accepted = hmc.transition(state, evaluate, float(betas[t]), eps, leapfrog,
                                         momentum, log_u)
        eps = hmc.adapt(eps, accepted.float().mean(0), target)
    return torch.logsumexp(log_w, 0) - math.log(chains)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--chains", type=int, default=16)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--leapfrog", type=int, default=5)
    p.add_argument("--train-steps", type=int, default=500)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--bdmc-steps", default="", help="also the BDMC gap at these steps, e.g. 10,100")
    p.add_argument("--bdmc-n", type=int, default=20, help="simulated points for --bdmc-steps")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.steps, args.train_steps = 20, 20, 50
    torch.set_num_threads(args.threads)
    model, x = make_model_and_data(args.n, args.train_steps)
    kw = {"steps": args.steps, "chains": args.chains, "leapfrog": args.leapfrog, "seed": 0}
    print(f"VAE 784-{HIDDEN[0]}-{HIDDEN[1]}-{LATENT} ({args.train_steps} SVI steps), "
          f"N={args.n}, C={args.chains} chains, T={args.steps} steps, L={args.leapfrog} "
          f"leapfrog, {args.threads} threads")

    def ours():
        return pv.infer.ais(model, x, num_steps=args.steps, num_chains=args.chains,
                            num_leapfrog=args.leapfrog, seed=0).log_px

    def hand():
        return handwritten_ais(model, x, **kw)

    best = {"ours": math.inf, "hand": math.inf}
    results = {}
    for _ in range(args.repeats):
        for name, fn in (("ours", ours), ("hand", hand)):
            t = time.perf_counter()
            results[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t)
    iwae = pv.infer.log_likelihood(model, x, num_samples=5000, seed=0).log_px
    elbo = pv.infer.elbo(model, x, num_particles=100, seed=0)
    print(f"\n{'':<34}{'seconds':>10}{'mean log p(x)':>16}")
    print(f"{'pv.infer.ais':<34}{best['ours']:>10.2f}{float(results['ours'].mean()):>16.3f}")
    print(f"{'hand-written torch AIS':<34}{best['hand']:>10.2f}{float(results['hand'].mean()):>16.3f}")
    print(f"{'IWAE K=5000 (log_likelihood)':<34}{'':>10}{float(iwae.mean()):>16.3f}")
    print(f"{'ELBO (100 particles)':<34}{'':>10}{float(elbo.mean()):>16.3f}")
    print(f"\ntime ratio ours / hand-written: {best['ours'] / best['hand']:.2f}x (target <= 1.3x)")
    diff = (results["ours"] - results["hand"]).abs()
    print(f"same starting draws and random numbers: |ours - hand| max {float(diff.max()):.2e}, "
          f"mean {float(diff.mean()):.2e} nats")
    for steps in [int(t) for t in args.bdmc_steps.split(",") if t.strip()]:
        t = time.perf_counter()
        b = pv.infer.bdmc(model, args.bdmc_n, num_steps=steps, num_chains=args.chains,
                          num_leapfrog=args.leapfrog, seed=0).summary()
        print(f"BDMC, {args.bdmc_n} simulated points, T={steps}: lower {b['lower']:.3f}, upper "
              f"{b['upper']:.3f}, mean gap {b['gap']:.3f} nats ({time.perf_counter() - t:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

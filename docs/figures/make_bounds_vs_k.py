"""Draw docs/figures/bounds_vs_k.png: the README's concepts figure.

The quickstart VAE (``ppl-vae quickstart --out OUT``) on its 359 test digits: the ELBO,
and the IWAE bound of order K (the importance-sampled log p(x)) for K = 1 ... 1000, mean
over the points (the differences between K are paired, so a band of the spread between
points would hide them). Run: ``python docs/figures/make_bounds_vs_k.py OUT/model.pt``.
"""

import sys
from pathlib import Path

import pandas as pd

import ppl_vae as pv

model = pv.load(sys.argv[1])
x = pv.data.load("digits", binarize=True).x_test
elbo = float(pv.infer.elbo(model, x, num_particles=100, seed=0).mean())
rows = []
for k in (1, 3, 10, 30, 100, 300, 1000):
    est = pv.infer.log_likelihood(model, x, num_samples=k, seed=0).log_px
    rows.append({"K": k, "mean": float(est.mean()), "label": "IWAE-K (IS log p(x))"})
pv.plots.bound_vs_k(pd.DataFrame(rows), path=Path(__file__).with_name("bounds_vs_k.png"),
                    reference={f"ELBO {elbo:.2f}": elbo},
                    title="VAE on 8x8 digits (test): ELBO <= IWAE-K, rising towards log p(x)")
print(pd.DataFrame(rows).round(3).to_string(index=False), f"\nELBO {elbo:.3f}")

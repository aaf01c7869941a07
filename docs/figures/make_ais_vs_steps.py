"""Draw docs/figures/ais_vs_steps.png: AIS log p̂(x) against annealing steps, with BDMC.

The quickstart VAE (``ppl-vae quickstart --out OUT``) on 60 of its test digits: AIS from
the prior with 8 chains per point for 10 ... 300 steps, beside the ELBO and IWAE-1000 on
the same points; in the second panel, forward and reverse AIS on 30 points simulated from
the model (the BDMC band, which must close as steps grow).
Run: ``python docs/figures/make_ais_vs_steps.py OUT/model.pt``.
"""

import sys
from pathlib import Path

import pandas as pd

import ppl_vae as pv

model = pv.load(sys.argv[1])
x = pv.data.load("digits", binarize=True).x_test[:60]
elbo = float(pv.infer.elbo(model, x, num_particles=100, seed=0).mean())
iwae = float(pv.infer.log_likelihood(model, x, num_samples=1000, seed=0).log_px.mean())
rows = []
for steps in (10, 30, 100, 300):
    ais = pv.infer.ais(model, x, num_steps=steps, num_chains=8, seed=0)
    bdmc = pv.infer.bdmc(model, 30, num_steps=steps, num_chains=8, seed=0).summary()
    rows.append({"steps": steps, "ais": ais.summary()["log_px"],
                 "bdmc_lower": bdmc["lower"], "bdmc_upper": bdmc["upper"]})
frame = pd.DataFrame(rows)
pv.plots.ais_vs_steps(frame, path=Path(__file__).with_name("ais_vs_steps.png"),
                      reference={f"IWAE K=1000 {iwae:.2f}": iwae, f"ELBO {elbo:.2f}": elbo},
                      title="VAE on 8x8 digits: AIS rises to IWAE-1000; the BDMC band closes")
print(frame.round(3).to_string(index=False), f"\nELBO {elbo:.3f}  IWAE-1000 {iwae:.3f}")

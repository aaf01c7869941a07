"""How much of log p(x) − ELBO is the approximation gap, and how much the amortization gap?

Cremer, Li & Duvenaud (2018, "Inference Suboptimality in Variational
Autoencoders", Section 3) split the gap of a trained VAE's amortized ELBO into

    log p(x) − ELBO[q_φ]  =  (log p(x) − ELBO[q*])  +  (ELBO[q*] − ELBO[q_φ])
                              approximation gap        amortization gap

where q_φ(z|x) is the encoder and q* the best member of the same variational
family (diagonal Gaussians) for each datapoint separately. Here q* is found by
:func:`ppl_vae.infer.fit_local_guide`: per-datapoint Adam on (μᵢ, σᵢ) with the
decoder held fixed, started from the encoder's output; log p(x) is the
importance-sampled bound with K = 5000 (:func:`ppl_vae.infer.log_likelihood`),
taking per datapoint the larger of the estimates from the encoder and from q*
as proposal (both are lower bounds in expectation, so the larger is the
tighter). ELBOs use many particles so their Monte Carlo error is small.

The grid varies the encoder's width (Cremer et al., Section 5.2: a more
expressive encoder shrinks the amortization gap) at a fixed decoder, on the
binarized 8×8 digits (held-out points).

Hypothesis: as Cremer et al. found on MNIST, the amortization gap is the larger
share of the total gap, and it grows when the encoder is made smaller; the
approximation gap, a property of the decoder and the Gaussian family, barely
changes with the encoder.
"""

from __future__ import annotations

import sys

import torch

from ppl_vae.studies import _common
from ppl_vae.study import Study


def trial(config: dict, seed: int) -> dict[str, float]:
    """Amortized ELBO, locally optimised ELBO, IS log p(x), and the two gaps (nats)."""
    import ppl_vae as pv

    device = _common.device()
    data = _common.dataset("digits", binarize=True)
    model = _common.train(
        "vae", data.x_train, seed=seed, steps=config["steps"], latent_dim=config["latent_dim"],
        decoder=_common.mlp(config["decoder_hidden"]), guide=_common.mlp(config["encoder_hidden"]),
        device=device,
    )
    x = _common.subsample(data.x_test, config["n_eval"], seed=seed)
    particles, k = config["elbo_particles"], config["num_samples"]
    local = pv.infer.fit_local_guide(model, x, steps=config["local_steps"], lr=config["local_lr"],
                                     seed=seed, init="encoder", device=device)
    on = {"device": device}
    elbo_amortized = pv.infer.elbo(model, x, num_particles=particles, seed=seed, **on)  # [N]
    elbo_local = pv.infer.elbo(model, x, guide=local, num_particles=particles, seed=seed + 1,
                               **on)
    is_encoder = pv.infer.log_likelihood(model, x, num_samples=k, seed=seed + 2, **on)
    is_local = pv.infer.log_likelihood(model, x, guide=local, num_samples=k, seed=seed + 3, **on)
    log_px = torch.maximum(is_encoder.log_px, is_local.log_px)  # [N]
    # ELBO[q*] ≥ ELBO[q_φ] by construction of q*; keep the better of the two per point
    # so a local optimisation that wandered off cannot report a negative amortization gap.
    elbo_best = torch.maximum(elbo_local, elbo_amortized)
    approximation = (log_px - elbo_best).mean()
    amortization = (elbo_best - elbo_amortized).mean()
    total = approximation + amortization
    return {
        "elbo_amortized": float(elbo_amortized.mean()),
        "elbo_local": float(elbo_best.mean()),
        "log_px": float(log_px.mean()),
        "approximation_gap": float(approximation),
        "amortization_gap": float(amortization),
        "total_gap": float(total),
        "amortization_share": float(amortization / total),
        "local_improved_share": float((elbo_local > elbo_amortized).float().mean()),
        "share_unreliable": float((~is_encoder.reliable).float().mean()),
        "is_local_minus_encoder": float((is_local.log_px - is_encoder.log_px).mean()),
    }


def analyze(df, out_dir) -> None:
    """``gaps.png``: approximation and amortization gap per encoder width, seeds as dots."""
    from ppl_vae import plots

    gaps = df[df["metric"].isin(["approximation_gap", "amortization_gap"])].copy()
    gaps["encoder"] = gaps["encoder_hidden"].map(lambda w: f"encoder {w}")
    plots.metric_bars(gaps, path=out_dir / "gaps.png", x="encoder", hue="metric", panel=None,
                      title="Inference gaps on held-out digits (nats)")


_BASE = {"decoder_hidden": 256, "latent_dim": 8, "steps": 1000, "n_eval": 200,
         "local_steps": 500, "local_lr": 0.05, "elbo_particles": 200, "num_samples": 5000}
_SMALL = {"decoder_hidden": 32, "latent_dim": 2, "steps": 25, "n_eval": 12,
          "local_steps": 20, "local_lr": 0.05, "elbo_particles": 8, "num_samples": 64}

STUDY = Study(
    name="inference_gaps",
    question=__doc__,
    trial=trial,
    grid=[{**_BASE, "encoder_hidden": w} for w in (256, 32)],
    small_grid=[{**_SMALL, "encoder_hidden": w} for w in (32, 8)],
    analyze=analyze,
    default_seeds=3,
)

if __name__ == "__main__":  # the script form of `ppl-vae study <name>`
    from ppl_vae.cli import main

    raise SystemExit(main(["study", STUDY.name, *sys.argv[1:]]))

"""Simulation-based calibration: is a trained amortized guide q(z|x) calibrated?

Talts et al. (2018, "Validating Bayesian Inference Algorithms with
Simulation-Based Calibration", Algorithm 1) on a trained decoder: draw
z̃ ~ p(z), x̃ ~ p(x | z̃) from the trained model, then S draws from the guide
q(z | x̃), and rank each coordinate of z̃ among them. When q(z|x) is the model's
exact posterior the ranks are uniform on {0, …, S}; a guide that is too narrow
gives a ∪-shaped histogram, one that is too wide a ∩, a biased one a slope.
Uniformity is tested per latent coordinate with Pearson's χ² on binned ranks
(:func:`ppl_vae.metrics.rank_uniformity`); the reported ``p_value`` is the
Bonferroni-adjusted smallest p over coordinates (``calibrated`` = p ≥ 0.01).

The model is the lecture notes' linear-Gaussian LVM (the ``lvm`` preset with
``decoder.hidden = []``, σ known) trained on ``linear_gaussian`` data, so the
exact posterior of the trained model is Gaussian and known,
Norm[Σ Wᵀ(x − b)/σ², Σ = (I + WᵀW/σ²)⁻¹]: it is the reference arm (``exact``),
a sanity anchor that must pass. The amortized guide has a linear encoder, which
can represent that posterior exactly (with ``covariance = "full"``). The other
arms perturb or weaken it: its spread around its own mean multiplied by
``spread`` (0.5: overconfident, 2: underconfident), a diagonal covariance
(mean-field), and a guide trained for only a few steps. ``kl_to_exact`` is the
mean KL(q ‖ exact posterior) over the simulations: how wrong each guide is.

Hypothesis: the exact posterior and the well-trained full-covariance guide pass
(p ≥ 0.01), the mis-scaled guides fail with sd_ratio > 1 (×0.5, ∪) and < 1 (×2,
∩). The mean-field guide's marginals are too narrow only in proportion to the
posterior correlations (weak for a random W of few latents), so SBC on marginal
ranks may not detect it at these sizes although its KL is not zero; the
under-trained guide fails.
"""

from __future__ import annotations

import functools
import sys

import numpy as np
import torch

from ppl_vae import _checks, _seed
from ppl_vae.studies import _study_kit
from ppl_vae.study import Study, TrialContext

#: Bins of the rank histograms in the report (also stored as metrics, pooled over latents).
DISPLAY_BINS = 10
_TRAINING = ("data_dim", "latent_dim", "sigma", "n", "steps", "lr", "batch_size", "covariance")


@functools.lru_cache(maxsize=4)
def _trained(seed: int, device, data_dim, latent_dim, sigma, n, steps, lr, batch_size,
             covariance):
    """The trained linear-Gaussian LVM on ``device``; cached, so the arms of one seed share
    it in a worker (a trial on another device trains its own)."""
    data = _study_kit.dataset("linear_gaussian", data_dim=data_dim, latent_dim=latent_dim,
                           sigma=sigma, n=n, seed=0)
    return _study_kit.train(
        "lvm", data.x_train, seed=seed, steps=steps, lr=lr, batch_size=batch_size,
        latent_dim=latent_dim, likelihood={"scale": sigma}, decoder={"hidden": []},
        guide={"kind": "amortized", "hidden": [], "covariance": covariance}, device=device,
    )


def _as_mvn(q) -> torch.distributions.MultivariateNormal:
    """A diagonal Normal or an MVN guide as an MVN ``[N]`` over ``[latent]``."""
    if isinstance(q, torch.distributions.MultivariateNormal):
        return q
    return torch.distributions.MultivariateNormal(q.mean, scale_tril=torch.diag_embed(q.stddev))


def exact_posterior(model, x) -> torch.distributions.MultivariateNormal:
    """p(z | x) of a linear-Gaussian model: x ~ Norm[W z + b, diag σ²], z ~ Norm[0, I].

    Computed on the model's device and in its dtype (``x`` is moved there).
    """
    layer = model.decoder.net[0]
    w, b = layer.weight, layer.bias  # [D, L], [D]
    var = model.likelihood.scale.to(w) ** 2  # [D]
    x = torch.as_tensor(x).to(w)
    precision = torch.eye(w.shape[1], device=w.device, dtype=w.dtype) + w.T @ (w / var[:, None])
    cov = torch.linalg.inv(precision)
    cov = (cov + cov.T) / 2
    mean = ((x - b) / var) @ w @ cov  # [N, L]
    return torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)


def trial(config: dict, context: TrialContext) -> dict[str, float]:
    """SBC of one guide: χ² p-value, rank shape, KL to the exact posterior, rank histogram."""
    import ppl_vae as pv

    seed, device = context.seed, context.device
    config = _study_kit.check_config("sbc", config, {
        "guide": ("exact", "amortized"), "covariance": ("full", "diagonal"),
        "spread": _study_kit.POSITIVE, "n_sims": _study_kit.COUNT, "num_draws": _study_kit.COUNT,
        "steps": _study_kit.COUNT, "n": _study_kit.COUNT, "data_dim": _study_kit.COUNT,
        "latent_dim": _study_kit.COUNT, "sigma": _study_kit.POSITIVE, "bins": 2})
    values = config["n_sims"] * (config["data_dim"] + config["latent_dim"] * (config["num_draws"] + 2))
    _checks.within_budget(  # z, x, the draws [S, N, L] and their comparison with z
        f"sbc config n_sims={config['n_sims']}, num_draws={config['num_draws']}", 16 * values,
        _checks.memory_budget(), "pass fewer simulations or draws", option=False)
    pv.metrics.check_simulations(config["n_sims"], num_draws=config["num_draws"],
                                 bins=config["bins"], name="sbc config n_sims")
    model = _trained(seed, device, *(config[k] for k in _TRAINING))
    n_sims, s = config["n_sims"], config["num_draws"]
    with torch.no_grad(), _seed.seeded(seed + 1):
        z = model.prior.distribution().sample((n_sims,))  # [N, L]
        x = model.decode(z).sample()  # [N, D]
        exact = exact_posterior(model, x)
        q = exact if config["guide"] == "exact" else _as_mvn(model.encode(x))
        spread = config["spread"]
        q = torch.distributions.MultivariateNormal(q.mean, scale_tril=spread * q.scale_tril)
        draws = q.sample((s,))  # [S, N, L]
        kl = torch.distributions.kl_divergence(q, exact).mean()
    ranks = pv.metrics.sbc_ranks(z, draws)
    table = pv.metrics.rank_uniformity(ranks, num_draws=s, bins=config["bins"])
    p = min(1.0, float(table["p_value"].min()) * len(table))  # Bonferroni over latents
    pooled = pv.metrics.rank_counts(ranks, num_draws=s, bins=DISPLAY_BINS)["counts"].sum(1)
    return {
        "p_value": p,
        "calibrated": float(p >= 0.01),
        "chi2": float(table["chi2"].mean()),
        "sd_ratio": float(table["sd_ratio"].mean()),
        "rank_mean": float(table["rank_mean"].mean()),
        "kl_to_exact": float(kl),
        **{f"rank_bin_{b:02d}": float(c) for b, c in enumerate(pooled)},
    }


def label(config) -> str:
    """Short name of an arm, e.g. ``q ×0.5`` or ``q diagonal``."""
    if config["guide"] == "exact":
        return "exact"
    parts = ["q"]
    if config["covariance"] != "full":
        parts.append(config["covariance"])
    if config["spread"] != 1:
        parts.append(f"×{config['spread']:g}")
    if config["steps"] < _BASE["steps"] and config["steps"] < _SMALL["steps"]:
        parts.append(f"{config['steps']} steps")
    return " ".join(parts)


def analyze(df, out_dir) -> None:
    """``ranks.png``: rank histograms (pooled over latents and seeds) per arm, with the band
    uniform ranks fall in; ``p_values.png``: the SBC p-value per arm."""
    from ppl_vae import plots

    df = df.copy()
    configs = df.drop_duplicates("config_id").set_index("config_id")
    df["arm"] = df["config_id"].map({cid: label(row) for cid, row in configs.iterrows()})
    bins = df[df["metric"].str.startswith("rank_bin_")]
    counts = {arm: part.groupby("metric")["value"].sum().sort_index().to_numpy()
              for arm, part in bins.groupby("arm", sort=False)}
    s = int(configs["num_draws"].iloc[0])
    widths = np.bincount(np.arange(s + 1) * DISPLAY_BINS // (s + 1), minlength=DISPLAY_BINS)
    plots.rank_histograms(counts, widths=widths, path=out_dir / "ranks.png",
                          title=f"SBC rank histograms (S = {s} draws, pooled over latents)")
    keep = df[df["metric"].isin(["p_value", "sd_ratio", "kl_to_exact"])]
    plots.metric_bars(keep, path=out_dir / "p_values.png", x="arm", panel="metric",
                      title="Simulation-based calibration of the guide")


# Default: Adam at lr 1e-3 for 5000 steps brings the guide within KL ≈ 0.02 nats of the
# exact posterior; at lr 1e-2 for 2000 steps it stays near 0.3, which 2000 simulations detect.
_BASE = {"data_dim": 16, "latent_dim": 4, "sigma": 1.0, "n": 4000, "steps": 5000, "lr": 1e-3,
         "batch_size": 256, "n_sims": 2000, "num_draws": 99, "bins": 20}
_SMALL = {"data_dim": 8, "latent_dim": 2, "sigma": 0.5, "n": 1000, "steps": 300, "lr": 0.01,
          "batch_size": 128, "n_sims": 400, "num_draws": 19, "bins": 20}
_ARMS = [
    {"guide": "exact", "covariance": "full", "spread": 1.0},
    {"guide": "amortized", "covariance": "full", "spread": 1.0},
    {"guide": "amortized", "covariance": "full", "spread": 0.5},
    {"guide": "amortized", "covariance": "full", "spread": 2.0},
]
_WEAK_ARMS = [  # left out of the small grid
    {"guide": "amortized", "covariance": "diagonal", "spread": 1.0},
    {"guide": "amortized", "covariance": "full", "spread": 1.0, "steps": 30},
]
# Paper: Talts et al.'s scale, as we read their examples: 10,000 simulations, L = 99.
_PAPER = {**_BASE, "n_sims": 10_000}

PROTOCOL = """\
**Small** (`--small`): 8-dim data, 2 latents, σ = 0.5, 300 training steps at lr 10⁻²,
400 simulations, L = 19 guide draws, 20 bins; the four main arms (exact, trained, ×0.5,
×2). Measured: 12 trials (3 seeds) in 17 s on a 2-core CPU.

**Default**: 16-dim data, 4 latents, σ = 1, 4,000 data points, 5,000 steps at lr
10⁻³, 2,000 simulations, L = 99, 20 bins; six arms (adding the mean-field and the
30-step guide). About 1.5 min on one core for 3 seeds (estimated; an earlier run of this
grid took 81 s).

**Paper** (`--paper`): Talts et al. (2018), Algorithm 1, at the scale of their examples
as we read them (our reading, not a protocol the paper fixes): 10,000 simulations per
trial and L = 99 draws (100 possible ranks, 5 per bin of 20). The model, its training
and the arms are the default's, so the two sizes differ only in the test's power.
Estimated ≈ 5 min on one core for 3 seeds (one paper trial measured at 14–20 s, mostly
training); a GPU gains nothing here. How far from the paper: they validate a sampler of
a Bayesian model's posterior and read rank histograms by eye; here the "posterior" is an
amortized guide of a trained linear-Gaussian decoder, its draws are independent (no
thinning), and uniformity is tested by χ² with a Bonferroni correction. Five times the
simulations resolve smaller miscalibrations: in the one paper-size trial we ran (seed 0)
the trained full-covariance guide, 0.02 nats of KL from the exact posterior, failed
(p < 0.01), which the default size passes.
"""

STUDY = Study(
    name="sbc",
    question=__doc__,
    trial=trial,
    takes_context=True,  # trial(config, context)
    grid=[{**_BASE, **arm} for arm in _ARMS + _WEAK_ARMS],
    small_grid=[{**_SMALL, **arm} for arm in _ARMS],
    paper_grid=[{**_PAPER, **arm} for arm in _ARMS + _WEAK_ARMS],
    protocol=PROTOCOL,
    detail_metrics=["rank_bin_"],
    analyze=analyze,
    default_seeds=3,
)

if __name__ == "__main__":  # the script form of `ppl-vae study <name>`
    from ppl_vae.cli import main

    raise SystemExit(main(["study", STUDY.name, *sys.argv[1:]]))

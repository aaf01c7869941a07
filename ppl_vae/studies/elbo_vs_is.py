"""How far is the ELBO from log p(x), and how fast does the IWAE bound close the gap as K grows?

Per model family on the bundled digits: a VAE (Bernoulli likelihood on binarized
digits) and the lecture notes' latent variable model with a *linear* decoder and a
normal likelihood of known σ on the continuous digits, whose marginal
Norm[b, WWᵀ + σ²I] gives the exact log p(x) (:func:`ppl_vae.infer.exact_log_likelihood`).
Both use an amortized diagonal-Gaussian guide. For each trained model the study
measures, on held-out digits, the ELBO (many particles, so its Monte Carlo error is
negligible) and the importance-weighted bound of order K,
log (1/K) Σₖ p(x, zₖ)/q(zₖ|x) with zₖ ~ q(z|x) (Burda et al., 2016, Eq. 8), for
K = 1 … 5000, with the importance-sampling ESS and the PSIS k̂ (Vehtari et al.,
2024) alongside: the bound is only trustworthy where k̂ ≤ 0.7.

Reported gaps use the exact log p(x) where it exists and the largest-K bound
otherwise (then the gap is itself a lower bound on the true gap).

Hypothesis: IWAE_1 equals the ELBO in expectation and IWAE_K increases
monotonically with K (Burda et al., Theorem 1); the gap log p(x) − IWAE_K shrinks
roughly like O(1/K) once K is large (Nowozin, 2018), so most of the ELBO gap is
recovered by K ≈ 100. For the linear-Gaussian model, IWAE_5000 matches the exact
log p(x) to within a few hundredths of a nat and k̂ stays below 0.7, because the
true posterior is Gaussian and the diagonal guide differs from it only by its
missing correlations.
"""

from __future__ import annotations

import sys

import numpy as np

from ppl_vae.studies import _common
from ppl_vae.study import Study, summarize

FULL_KS = [1, 10, 100, 1000, 5000]
SMALL_KS = [1, 10, 100]


def _model_and_data(config: dict, seed: int, device=None):
    """Train the configured family; return (model, held-out x [n_eval, D])."""
    family = config["model"]
    width = _common.mlp(config["hidden"])
    if family == "vae":
        data = _common.dataset("digits", binarize=True)
        model = _common.train(
            "vae", data.x_train, seed=seed, steps=config["steps"], latent_dim=config["latent_dim"],
            decoder=width, guide=width, device=device,
        )
    elif family == "linear_lvm":
        data = _common.dataset("digits")
        model = _common.train(
            "lvm", data.x_train, seed=seed, steps=config["steps"], latent_dim=config["latent_dim"],
            decoder={"hidden": []}, guide={"kind": "amortized", **width}, device=device,
        )
    else:
        raise ValueError(f"model={family!r} is not one of 'vae', 'linear_lvm'")
    return model, _common.subsample(data.x_test, config["n_eval"], seed=seed)


def trial(config: dict, seed: int) -> dict[str, float]:
    """ELBO, IWAE_K (with ESS and k̂) and, where it exists, the exact log p(x)."""
    import ppl_vae as pv

    device = _common.device()
    model, x = _model_and_data(config, seed, device)
    out = {"elbo": float(pv.infer.elbo(model, x, num_particles=config["elbo_particles"],
                                       seed=seed, device=device).mean())}
    for k in config["ks"]:
        est = pv.infer.log_likelihood(model, x, num_samples=k, seed=seed + 7919 * k,
                                      device=device)
        summary = est.summary()
        out[f"iwae_K{k}"] = summary["log_px"]
        out[f"ess_fraction_K{k}"] = summary["ess_mean"] / k
        if k >= 25:  # PSIS fits the largest ~3√K weights; below K ≈ 25 k̂ is undefined (inf)
            out[f"khat_mean_K{k}"] = float(est.khat.mean())
            out[f"share_unreliable_K{k}"] = summary["share_unreliable"]
    try:
        reference = float(pv.infer.exact_log_likelihood(model, x, device=device).mean())
        out["exact_log_px"] = reference
    except NotImplementedError:
        reference = out[f"iwae_K{max(config['ks'])}"]
    out["gap_elbo"] = reference - out["elbo"]
    for k in config["ks"]:
        out[f"gap_K{k}"] = reference - out[f"iwae_K{k}"]
    return out


def analyze(df, out_dir) -> None:
    """``bound_vs_k_<model>.png`` (IWAE_K per family) and ``gap_vs_k.png``, 95 % bootstrap
    intervals of the mean over seeds."""
    from ppl_vae import plots

    summary = summarize(df)
    bounds = summary[summary["metric"].str.match(r"^iwae_K\d+$")].copy()
    bounds["K"] = bounds["metric"].str.slice(len("iwae_K")).astype(int)
    for model, part in bounds.groupby("model", sort=False):
        frame = part.rename(columns={"ci_low": "lo", "ci_high": "hi"})
        frame = frame.assign(lo=frame["lo"].fillna(frame["mean"]),
                             hi=frame["hi"].fillna(frame["mean"]))
        reference = {}
        rows = summary[summary["model"] == model].set_index("metric")["mean"]
        reference["ELBO"] = float(rows["elbo"])
        if "exact_log_px" in rows and np.isfinite(rows["exact_log_px"]):
            reference["exact log p(x)"] = float(rows["exact_log_px"])
        plots.bound_vs_k(
            frame[["K", "mean", "lo", "hi"]], path=out_dir / f"bound_vs_k_{model}.png",
            reference=reference, title=f"{model}: IWAE bound vs K (held-out digits)",
        )
    # The gap is paired within a seed (same model, same points), so its interval is
    # much tighter than that of the bound, which also carries model-to-model spread.
    gaps = summary[summary["metric"].str.match(r"^gap_K\d+$")].copy()
    gaps["K"] = gaps["metric"].str.slice(len("gap_K")).astype(int)
    gaps = gaps.rename(columns={"ci_low": "lo", "ci_high": "hi", "model": "label"})
    plots.bound_vs_k(
        gaps[["K", "mean", "lo", "hi", "label"]].fillna({"lo": 0.0, "hi": 0.0}),
        path=out_dir / "gap_vs_k.png", reference={"0": 0.0},
        ylabel="log p(x) − IWAE_K (nats; exact or K = max)",
        title="Gap to log p(x) vs K (held-out digits)",
    )


_BASE = {"hidden": 256, "latent_dim": 8, "steps": 1000, "n_eval": 200, "elbo_particles": 200,
         "ks": FULL_KS}
_SMALL = {"hidden": 32, "latent_dim": 2, "steps": 25, "n_eval": 16, "elbo_particles": 8,
          "ks": SMALL_KS}

STUDY = Study(
    name="elbo_vs_is",
    question=__doc__,
    trial=trial,
    grid=[{"model": "vae", **_BASE}, {"model": "linear_lvm", **_BASE}],
    small_grid=[{"model": "vae", **_SMALL}, {"model": "linear_lvm", **_SMALL}],
    analyze=analyze,
    default_seeds=3,
)

if __name__ == "__main__":  # the script form of `ppl-vae study <name>`
    from ppl_vae.cli import main

    raise SystemExit(main(["study", STUDY.name, *sys.argv[1:]]))

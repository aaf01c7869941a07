"""How far is the ELBO from log p(x), and how fast does the IWAE bound close the gap as K grows?

Per model family on the bundled digits (MNIST at the paper size): a VAE (Bernoulli
likelihood on binarized digits) and the lecture notes' latent variable model with a
*linear* decoder and a normal likelihood of known σ on the continuous digits, whose marginal
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
import torch

from ppl_vae._checks import one_of
from ppl_vae.studies import _study_kit as _common
from ppl_vae.study import Study, TrialContext, summarize

FULL_KS = [1, 10, 100, 1000, 5000]
SMALL_KS = [1, 10, 100]
#: Keys a configuration may leave out (the default and small grids do), with the values
#: the study used before it had a paper size, so their stored trials keep their keys.
OPTIONAL = {"dataset": "digits", "activation": None, "batch_size": 128, "lr": 3e-3,
            "lr_schedule": None, "binarize": "threshold"}
#: Most held-out points one ELBO pass takes (its [particles, rows, D] tensors stay small).
ELBO_ROWS = 1000
#: Offset of the seed of the held-out binarization (dynamic only), so the Bernoulli draw
#: of the pixels and the ELBO's draws on them come from different streams.
BINARIZE_SEED = 104_729


def _model_and_data(config: dict, seed: int, device=None):
    """Train the configured family; return (model, held-out x [n_eval, D])."""
    family = config["model"]
    binarize = one_of("binarize", config["binarize"], ("threshold", "dynamic"))
    width = _common.mlp(config["hidden"], config["activation"])
    options = {"seed": seed, "steps": config["steps"], "lr": config["lr"],
               "batch_size": config["batch_size"], "lr_schedule": config["lr_schedule"],
               "latent_dim": config["latent_dim"], "device": device}
    if family == "vae":  # binary pixels: thresholded once, or drawn afresh per minibatch
        dynamic = binarize == "dynamic"
        data = _common.dataset(config["dataset"], binarize=not dynamic)
        model = _common.train("vae", data.x_train, decoder=width, guide=width,
                              binarize="dynamic" if dynamic else False, **options)
    elif family == "linear_lvm":  # grey levels, normal likelihood: binarize does not apply
        dynamic = False
        data = _common.dataset(config["dataset"])
        model = _common.train("lvm", data.x_train, decoder={"hidden": []},
                              guide={"kind": "amortized", **width}, **options)
    else:
        raise ValueError(f"model={family!r} is not one of 'vae', 'linear_lvm'")
    x = _common.subsample(data.x_test, config["n_eval"], seed=seed)
    if dynamic:  # one Bernoulli draw of the held-out grey levels, its own random stream
        x = torch.bernoulli(x, generator=torch.Generator().manual_seed(seed + BINARIZE_SEED))
    return model, x


def _mean_elbo(model, x, *, particles: int, seed: int, device) -> float:
    """The ELBO averaged over ``x``, evaluated ``ELBO_ROWS`` points at a time (chunk i
    seeded ``seed + 10**6 * i``: no chunk shares a stream with another trial's seed)."""
    import ppl_vae as pv

    parts = [pv.infer.elbo(model, part, num_particles=particles, seed=seed + 10**6 * i,
                           device=device)
             for i, part in enumerate(x.split(ELBO_ROWS))]
    return float(torch.cat(parts).mean())


def trial(config: dict, context: TrialContext) -> dict[str, float]:
    """ELBO, IWAE_K (with ESS and k̂) and, where it exists, the exact log p(x)."""
    import ppl_vae as pv

    config = _common.check_config("elbo_vs_is", {**OPTIONAL, **config}, {
        "n_eval": _common.COUNT, "elbo_particles": _common.COUNT, "ks": _common.COUNTS,
        "steps": _common.COUNT})
    seed, device = context.seed, context.device
    model, x = _model_and_data(config, seed, device)
    out = {"elbo": _mean_elbo(model, x, particles=config["elbo_particles"], seed=seed,
                              device=device)}
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


#: Columns of a summary table that are not configuration keys.
_SUMMARY_COLUMNS = {"config_id", "metric", "n_seeds", "mean", "sd", "se", "ci_low", "ci_high"}


def config_labels(summary) -> dict:
    """``config_id -> (name, label)``: the model, plus the keys in which configurations of
    the same model differ (a user's grid may hold several per model)."""
    first = summary.drop_duplicates("config_id").set_index("config_id")
    keys = [c for c in first.columns if c not in _SUMMARY_COLUMNS and c != "model"]
    varying = [k for k in keys if first[k].astype(str).nunique() > 1]
    per_model = first["model"].value_counts()
    out = {}
    for config_id, row in first.iterrows():
        alone = per_model[row["model"]] == 1
        extra = ", ".join(f"{k}={row[k]}" for k in varying)
        name = row["model"] if alone else f"{row['model']}_{config_id}"
        out[config_id] = (name, row["model"] if alone or not extra else f"{row['model']} ({extra})")
    return out


def analyze(df, out_dir) -> None:
    """``bound_vs_k_<model>.png`` (IWAE_K per configuration: ``<model>_<config_id>`` where a
    model has several) and ``gap_vs_k.png``, 95 % bootstrap intervals of the mean over seeds."""
    from ppl_vae import plots

    summary = summarize(df)
    datasets = df["dataset"].astype(str).unique() if "dataset" in df else [OPTIONAL["dataset"]]
    where = ", ".join(sorted(datasets))
    labels = config_labels(summary)
    bounds = summary[summary["metric"].str.match(r"^iwae_K\d+$")].copy()
    bounds["K"] = bounds["metric"].str.slice(len("iwae_K")).astype(int)
    for config_id, part in bounds.groupby("config_id", sort=False):
        name, label = labels[config_id]
        frame = part.rename(columns={"ci_low": "lo", "ci_high": "hi"})
        frame = frame.assign(lo=frame["lo"].fillna(frame["mean"]),
                             hi=frame["hi"].fillna(frame["mean"]))
        rows = summary[summary["config_id"] == config_id].set_index("metric")["mean"]
        reference = {"ELBO": float(rows["elbo"])}
        if "exact_log_px" in rows and np.isfinite(rows["exact_log_px"]):
            reference["exact log p(x)"] = float(rows["exact_log_px"])
        plots.bound_vs_k(
            frame[["K", "mean", "lo", "hi"]], path=out_dir / f"bound_vs_k_{name}.png",
            reference=reference, title=f"{label}: IWAE bound vs K (held-out {where})",
        )
    # The gap is paired within a seed (same model, same points), so its interval is
    # much tighter than that of the bound, which also carries model-to-model spread.
    gaps = summary[summary["metric"].str.match(r"^gap_K\d+$")].copy()
    gaps["K"] = gaps["metric"].str.slice(len("gap_K")).astype(int)
    gaps["label"] = gaps["config_id"].map(lambda c: labels[c][1])
    gaps = gaps.rename(columns={"ci_low": "lo", "ci_high": "hi"})
    plots.bound_vs_k(
        gaps[["K", "mean", "lo", "hi", "label"]].fillna({"lo": 0.0, "hi": 0.0}),
        path=out_dir / "gap_vs_k.png", reference={"0": 0.0},
        ylabel="log p(x) − IWAE_K (nats; exact or K = max)",
        title=f"Gap to log p(x) vs K (held-out {where})",
    )


_BASE = {"hidden": 256, "latent_dim": 8, "steps": 1000, "n_eval": 200, "elbo_particles": 200,
         "ks": FULL_KS}
_SMALL = {"hidden": 32, "latent_dim": 2, "steps": 25, "n_eval": 16, "elbo_particles": 8,
          "ks": SMALL_KS}
#: Burda et al. (2016), §5: passes over the data of their schedule, 3^0 + 3^1 + … + 3^7.
PAPER_PASSES = 3280
MNIST_TRAIN = 60_000
# Burda et al.'s one-stochastic-layer VAE: 784-200-200-50 tanh, Adam with batch 100 and
# their learning-rate schedule, dynamically binarized MNIST, IS with K = 5000 on the test set.
_PAPER = {"dataset": "mnist", "hidden": [200, 200], "activation": "tanh", "latent_dim": 50,
          "batch_size": 100, "lr": 1e-3, "lr_schedule": "iwae_paper", "binarize": "dynamic",
          "steps": PAPER_PASSES * MNIST_TRAIN // 100, "n_eval": 10_000, "elbo_particles": 200,
          "ks": FULL_KS}

PROTOCOL = f"""\
**Small** (`--small`): both families on the 8×8 digits, one 32-unit layer, 2 latents,
25 training steps, 16 held-out points, K ≤ 100. Measured: 6 trials (3 seeds) in 12 s on
a 2-core CPU. It exercises the code; its numbers mean nothing.

**Default**: the 8×8 digits (1,438 training images; thresholded at 0.5 for the VAE,
grey levels for the linear-Gaussian LVM), one 256-unit ReLU layer, 8 latents, 1,000
Adam steps (batch 128, lr 3·10⁻³), 200 held-out points, K = 1 … 5000. Estimated from
one measured trial per family (12 s and 6 s on one core): about a minute for 3 seeds.
Far from the paper: another dataset and a far smaller model, so its log p(x) values are
not comparable with published ones; what it measures is the shape of the bound in K.

**Paper** (`--paper`): Burda, Grosse & Salakhutdinov (2016), §5, for their
one-stochastic-layer VAE (k = 1): binarized MNIST, 784-200-200-50 with tanh units,
Adam with batch 100 and their schedule (lr 10⁻³·10^(−i/7) for 3^i passes, i = 0 … 7:
3,280 passes, 1,968,000 steps), IS with K = 5000 on all 10,000 test images (K = 1 … 1000
alongside). Our reading, not stated facts: training images are binarized afresh per
minibatch and the test images by one seeded Bernoulli draw; Adam's ε and the weight
initialisation are torch's defaults, not necessarily the paper's. The linear-Gaussian
arm (grey-level MNIST, σ = 0.2, the same encoder and schedule) is not in the paper: it
is the study's exact anchor. Estimated cost: 19 ms (VAE) and 8 ms (linear) per step
measured on one CPU core give ≈ 10 h and 4 h of training per trial, plus ≈ 10–20 min
of importance sampling, so ≈ 45 core-hours for 3 seeds. On a GPU a step of so small a
network is bound by Python and Pyro overhead (not measured here; at ~4 ms a step,
≈ 2 h a trial): run it with `--executor ray --device cuda` over several GPUs.
{_common.MNIST_NOTE}
"""

STUDY = Study(
    name="elbo_vs_is",
    # the VAE sees thresholded digits, the linear LVM grey levels: not paired data
    pair_within=["model", "dataset", "binarize"],
    question=__doc__,
    trial=trial,
    takes_context=True,  # trial(config, context)
    grid=[{"model": "vae", **_BASE}, {"model": "linear_lvm", **_BASE}],
    small_grid=[{"model": "vae", **_SMALL}, {"model": "linear_lvm", **_SMALL}],
    paper_grid=[{"model": "vae", **_PAPER}, {"model": "linear_lvm", **_PAPER}],
    protocol=PROTOCOL,
    analyze=analyze,
    default_seeds=3,
)

if __name__ == "__main__":  # the script form of `ppl-vae study <name>`
    from ppl_vae.cli import main

    raise SystemExit(main(["study", STUDY.name, *sys.argv[1:]]))

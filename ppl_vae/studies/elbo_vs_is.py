"""How far is the ELBO from log p(x), and how fast does the IWAE bound close the gap as K grows?

Per model family on the bundled digits (MNIST at the paper size): a VAE (Bernoulli
likelihood on binarized digits) and the lecture notes' latent variable model with a
*linear* decoder and a normal likelihood of known σ on the continuous digits, whose marginal
Norm[b, WWᵀ + σ²I] gives the exact log p(x) (:func:`ppl_vae.infer.exact_log_likelihood`).
Both use an amortized diagonal-Gaussian guide; a user's grid may name any other spec as
``model`` (a preset or a TOML file, model graphs included: see :func:`_spec_model`).
For each trained model the study measures, on held-out digits, the ELBO (many
particles, so its Monte Carlo error is negligible) and the importance-weighted bound
of order K, log (1/K) Σₖ p(x, zₖ)/q(zₖ|x) with zₖ ~ q(z|x) (Burda et al., 2016, Eq. 8), for
K = 1 … 5000, with the importance-sampling ESS and the PSIS k̂ (Vehtari et al.,
2024) alongside: the bound is only trustworthy where k̂ ≤ 0.7. On the same points,
annealed importance sampling (:func:`ppl_vae.infer.ais`, Neal 2001; ``ais_steps``
HMC steps on a sigmoid schedule, ``ais_chains`` chains per point, started at the
guide q(z|x)) gives a third stochastic lower bound, ``ais_log_px``; the paired
differences ``iwae_minus_elbo`` (IWAE at the largest K − ELBO) and
``ais_minus_iwae`` (AIS − that IWAE) come with their s.e. over the points. And on
``bdmc_points`` points simulated from the trained model, bidirectional Monte Carlo
(:func:`ppl_vae.infer.bdmc`, Grosse et al., 2015; the same steps, chains and start)
sandwiches log p(x) between ``bdmc_lower`` (forward AIS) and ``bdmc_upper`` (reverse
AIS): ``bdmc_gap`` (mean over the points; ``bdmc_gap_max`` the largest) bounds how
far AIS with these settings is from log p(x), on data from the model itself
(``bdmc_exact``: the exact value on those points, linear LVM only).

Reported gaps use the exact log p(x) where it exists and the largest-K bound
otherwise (then the gap is itself a lower bound on the true gap); ``gap_ais`` is the
same reference minus AIS (negative for the VAE where AIS beats the largest K).

Hypothesis: IWAE_1 equals the ELBO in expectation and IWAE_K increases
monotonically with K (Burda et al., Theorem 1); the gap log p(x) − IWAE_K shrinks
roughly like O(1/K) once K is large (Nowozin, 2018), so most of the ELBO gap is
recovered by K ≈ 100. For the linear-Gaussian model, IWAE_5000 matches the exact
log p(x) to within a few hundredths of a nat and k̂ stays below 0.7, because the
true posterior is Gaussian and the diagonal guide differs from it only by its
missing correlations. Checked claim (``claims.csv``, :func:`check_claims`): on
average over seeds and points, ELBO ≤ IWAE_K ≤ AIS (K the largest), each paired
difference above −2 s.e.; and the BDMC gap of AIS with these settings is a
fraction of a nat at the default size.
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
#: the study used before it had a paper size (and before AIS: ``ais_steps`` 0 is off),
#: so their stored trials keep their keys.
OPTIONAL = {"dataset": "digits", "activation": None, "batch_size": 128, "lr": 3e-3,
            "lr_schedule": None, "binarize": "threshold", "ais_steps": 0, "ais_chains": 16,
            "bdmc_points": 0}
#: Most held-out points one ELBO pass takes (its [particles, rows, D] tensors stay small).
ELBO_ROWS = 1000
#: Offset of the seed of the held-out binarization (dynamic only), so the Bernoulli draw
#: of the pixels and the ELBO's draws on them come from different streams.
BINARIZE_SEED = 104_729


#: The two families the study was written for; any other ``model`` is a spec.
FAMILIES = ("vae", "linear_lvm")


def _model_and_data(config: dict, seed: int, device=None):
    """Train the configured model; return (model, held-out x [n_eval, D])."""
    family = config["model"]
    binarize = one_of("binarize", config["binarize"], ("threshold", "dynamic"))
    width = (_common.mlp(config["hidden"], config["activation"]) if "hidden" in config
             else {})  # a spec's own networks
    options = {"seed": seed, "steps": config["steps"], "lr": config["lr"],
               "batch_size": config["batch_size"], "lr_schedule": config["lr_schedule"],
               "device": device}
    if family == "linear_lvm":  # grey levels, normal likelihood: binarize does not apply
        spec, binary, nets = "lvm", False, {"decoder": {"hidden": []},
                                            "guide": {"kind": "amortized", **width}}
    elif family == "vae":
        spec, binary, nets = "vae", True, {"decoder": width, "guide": width}
    else:
        spec, binary, nets = _spec_model(config, width)
    if "latent_dim" in config:
        nets["latent_dim"] = config["latent_dim"]
    # binary pixels (the likelihood's support): thresholded once, or drawn afresh per minibatch
    dynamic = binary and binarize == "dynamic"
    data = _common.dataset(config["dataset"], binarize=binary and not dynamic)
    model = _common.train(spec, data.x_train, binarize="dynamic" if dynamic else False,
                          **nets, **options)
    x = _common.subsample(data.x_test, config["n_eval"], seed=seed)
    if dynamic:  # one Bernoulli draw of the held-out grey levels, its own random stream
        x = torch.bernoulli(x, generator=torch.Generator().manual_seed(seed + BINARIZE_SEED))
    return model, x


def _spec_model(config: dict, width: dict):
    """``(spec, binary data?, overrides)`` for ``model`` a preset name or a TOML spec with
    an amortized guide: its decoder's and guide's hidden layers set from
    ``hidden``/``activation`` as for the VAE (without ``hidden`` in the configuration:
    the spec's own networks; on a graph only the decoder and the guide's default
    encoder change, per-latent ``[guide.<name>]`` tables and prior networks keep
    theirs), ``latent_dim`` only for a one-latent spec (a graph declares each
    latent's dim)."""
    from ppl_vae import spec as spec_mod

    name = config["model"]
    refused = (f"elbo_vs_is config model={name!r} is not one of {', '.join(FAMILIES)}, a "
               "preset or a TOML spec file")
    if not isinstance(name, str):
        raise ValueError(f"{refused}: pass one of those")
    try:
        raw = spec_mod.load(name)
    except ValueError as err:
        raise ValueError(f"{refused} ({err}): pass one of those") from None
    if "latent" in raw and "latent_dim" in config:
        raise ValueError(
            f"elbo_vs_is config latent_dim={config['latent_dim']!r} cannot apply to "
            f"model={name!r}, a model graph whose [latent.*] tables declare each latent's "
            "dim: leave latent_dim out of its configurations (CLI: --unset latent_dim)")
    full = spec_mod.with_family_defaults(raw)
    kind = (full.get("guide") or {}).get("kind")
    if kind != "amortized":
        raise ValueError(
            f"elbo_vs_is config model={name!r} has guide.kind={kind!r}: the study scores "
            "held-out digits, which needs an amortized q(z|x); use a spec with "
            "guide.kind = 'amortized' (the linear LVM is model='linear_lvm')")
    binary = spec_mod.needs_binary(full)
    if config["binarize"] == "dynamic" and not binary:
        raise ValueError(
            f"elbo_vs_is config binarize='dynamic' does not apply to model={name!r}, whose "
            f"likelihood {full['likelihood'].get('kind')!r} takes grey levels: use "
            "binarize='threshold' (the default) or a Bernoulli spec")
    if "hidden" not in config and config.get("activation") is not None:
        raise ValueError(
            f"elbo_vs_is config activation={config['activation']!r} needs hidden: the "
            f"spec {name!r} keeps its own networks without it (--unset activation too)")
    nets = {"decoder": width, "guide": width} if width else {}
    return name, binary, nets


def _elbo_points(model, x, *, particles: int, seed: int, device) -> torch.Tensor:
    """The ELBO of every point of ``x`` ``[N]``, evaluated ``ELBO_ROWS`` points at a time
    (chunk i seeded ``seed + 10**6 * i``: no chunk shares a stream with another trial's seed)."""
    import ppl_vae as pv

    parts = [pv.infer.elbo(model, part, num_particles=particles, seed=seed + 10**6 * i,
                           device=device)
             for i, part in enumerate(x.split(ELBO_ROWS))]
    return torch.cat(parts)


def _paired(name: str, upper: torch.Tensor, lower: torch.Tensor) -> dict[str, float]:
    """``name``: the mean of ``upper − lower`` over the same points, ``name_se`` its s.e."""
    d = upper.double().cpu() - lower.double().cpu()
    se = float(d.std() / np.sqrt(len(d))) if len(d) > 1 else 0.0
    return {name: float(d.mean()), f"{name}_se": se}


def _ais_columns(model, x, iwae, config: dict, seed: int, device) -> dict[str, float]:
    """AIS on the IWAE points (``iwae``: the largest-K estimate), and BDMC on
    ``bdmc_points`` points simulated from the model. Both start at the guide q(z|x)
    (``init="guide"``): with one step AIS is IS with ``ais_chains`` draws from q, and
    every further step only tightens it. Seeds: AIS ``seed + 31``, BDMC ``seed + 37``."""
    import ppl_vae as pv

    out = {}
    options = {"num_steps": config["ais_steps"], "num_chains": config["ais_chains"],
               "init": "guide", "device": device}
    ais = pv.infer.ais(model, x, seed=seed + 31, **options)
    out["ais_log_px"] = float(ais.log_px.mean())
    out.update(_paired("ais_minus_iwae", ais.log_px, iwae.log_px))  # the same points
    out["ais_acceptance"] = float(ais.acceptance.mean())
    if config["bdmc_points"]:
        bounds = pv.infer.bdmc(model, config["bdmc_points"], seed=seed + 37, **options)
        out.update({f"bdmc_{k}": v for k, v in bounds.summary().items()
                    if k in ("lower", "upper", "gap", "gap_max")})
        try:  # the linear LVM: the exact value the two bounds sandwich
            exact = pv.infer.exact_log_likelihood(model, bounds.x, device=device)
            out["bdmc_exact"] = float(exact.mean())
        except NotImplementedError:
            pass
    return out


def trial(config: dict, context: TrialContext) -> dict[str, float]:
    """ELBO, IWAE_K (with ESS and k̂), AIS and BDMC (where ``ais_steps`` > 0) and, where
    it exists, the exact log p(x)."""
    import ppl_vae as pv

    config = _common.check_config("elbo_vs_is", {**OPTIONAL, **config}, {
        "n_eval": _common.COUNT, "elbo_particles": _common.COUNT, "ks": _common.COUNTS,
        "steps": _common.COUNT, "ais_steps": 0, "ais_chains": _common.COUNT,
        "bdmc_points": 0})
    if config["bdmc_points"] and not config["ais_steps"]:
        raise ValueError(f"elbo_vs_is config bdmc_points={config['bdmc_points']} needs "
                         "ais_steps >= 1 (the annealing steps of both directions): set "
                         "ais_steps, or bdmc_points=0")
    seed, device = context.seed, context.device
    model, x = _model_and_data(config, seed, device)
    elbo = _elbo_points(model, x, particles=config["elbo_particles"], seed=seed, device=device)
    out = {"elbo": float(elbo.mean())}
    for k in sorted(config["ks"]):  # the largest K last: ``est`` is then its estimate
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
    out.update(_paired("iwae_minus_elbo", est.log_px, elbo))  # K = max(ks)
    out["gap_elbo"] = reference - out["elbo"]
    for k in config["ks"]:
        out[f"gap_K{k}"] = reference - out[f"iwae_K{k}"]
    if config["ais_steps"]:
        out.update(_ais_columns(model, x, est, config, seed, device))
        out["gap_ais"] = reference - out["ais_log_px"]
    return out


#: Columns of a summary table that are not configuration keys.
_SUMMARY_COLUMNS = {"config_id", "metric", "n_seeds", "mean", "sd", "se", "ci_low", "ci_high"}


def config_labels(summary) -> dict:
    """``config_id -> (name, label)``: the model, plus the keys in which configurations of
    the same model differ (a user's grid may hold several per model)."""
    first = summary.drop_duplicates("config_id").set_index("config_id")
    keys = [c for c in first.columns if c not in _SUMMARY_COLUMNS and c != "model"]
    varying = [k for k in keys if first[k].astype(str).nunique(dropna=False) > 1]
    per_model = first["model"].value_counts()
    out = {}
    for config_id, row in first.iterrows():
        alone = per_model[row["model"]] == 1
        extra = ", ".join(f"{k}={row[k]}" for k in varying)
        name = row["model"] if alone else f"{row['model']}_{config_id}"
        out[config_id] = (name, row["model"] if alone or not extra else f"{row['model']} ({extra})")
    return out


#: The ordering claims: (name, the paired difference that must not be negative).
CLAIMS = (("elbo_le_iwae", "iwae_minus_elbo"), ("iwae_le_ais", "ais_minus_iwae"))


def check_claims(df):
    """The ordering ELBO ≤ IWAE_K ≤ AIS (K = the largest), checked per configuration.

    One row per configuration: each paired difference (IWAE_K − ELBO, AIS − IWAE_K on the
    same points) averaged over seeds with its standard error — the larger of the spread
    over seeds and the points' s.e. combined over seeds, √(Σ se²)/n — and whether it
    holds, i.e. the mean is above −2 s.e. (the difference is Monte Carlo noise, not a
    reversal). ``holds`` is both together; the BDMC gap (mean over seeds) beside them.
    A configuration run without AIS (``ais_steps`` 0) checks only the first.
    """
    import pandas as pd

    wide = df.pivot_table(index=["config_id", "seed"], columns="metric", values="value")
    rows = []
    for config_id, part in wide.groupby(level="config_id"):
        n = len(part)
        row = {"config_id": config_id, "model": df.loc[df["config_id"] == config_id,
                                                       "model"].iloc[0], "n_seeds": n}
        for metric in ("elbo", f"iwae_K{_largest_k(part)}", "ais_log_px", "bdmc_gap",
                       "bdmc_gap_max"):
            if metric in part:
                row[metric] = float(part[metric].mean())
        checks = []
        for claim, diff in CLAIMS:
            if diff not in part or part[diff].isna().all():
                continue
            values, ses = part[diff].to_numpy(), part[f"{diff}_se"].to_numpy()
            spread = values.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0
            se = max(spread, float(np.sqrt(np.sum(ses**2))) / n)
            row.update({diff: float(values.mean()), f"{diff}_se": se,
                        claim: bool(values.mean() >= -2 * se)})
            checks.append(row[claim])
        row["holds"] = bool(checks) and all(checks)
        rows.append(row)
    return pd.DataFrame(rows)


def _largest_k(wide) -> int:
    return max(int(c[len("iwae_K"):]) for c in wide.columns if str(c).startswith("iwae_K"))


def analyze(df, out_dir) -> None:
    """``bound_vs_k_<model>.png`` (IWAE_K per configuration: ``<model>_<config_id>`` where a
    model has several, AIS as a line where it ran) and ``gap_vs_k.png``, 95 % bootstrap
    intervals of the mean over seeds; ``claims.csv``, the ordering ELBO ≤ IWAE_K ≤ AIS
    checked per configuration (:func:`check_claims`)."""
    from ppl_vae import plots

    if "iwae_minus_elbo" in set(df["metric"]):
        check_claims(df).to_csv(out_dir / "claims.csv", index=False)
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
        if "ais_log_px" in rows and np.isfinite(rows["ais_log_px"]):
            reference["AIS"] = float(rows["ais_log_px"])
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
         "ks": FULL_KS, "ais_steps": 500, "ais_chains": 16, "bdmc_points": 10}
_SMALL = {"hidden": 32, "latent_dim": 2, "steps": 25, "n_eval": 16, "elbo_particles": 8,
          "ks": SMALL_KS, "ais_steps": 100, "ais_chains": 8, "bdmc_points": 4}
#: Burda et al. (2016), §5: passes over the data of their schedule, 3^0 + 3^1 + … + 3^7.
PAPER_PASSES = 3280
MNIST_TRAIN = 60_000
# Burda et al.'s one-stochastic-layer VAE: 784-200-200-50 tanh, Adam with batch 100 and
# their learning-rate schedule, dynamically binarized MNIST, IS with K = 5000 on the test set.
_PAPER = {"dataset": "mnist", "hidden": [200, 200], "activation": "tanh", "latent_dim": 50,
          "batch_size": 100, "lr": 1e-3, "lr_schedule": "iwae_paper", "binarize": "dynamic",
          "steps": PAPER_PASSES * MNIST_TRAIN // 100, "n_eval": 10_000, "elbo_particles": 200,
          "ks": FULL_KS, "ais_steps": 1000, "ais_chains": 16, "bdmc_points": 100}

PROTOCOL = f"""\
**Small** (`--small`): both families on the 8×8 digits, one 32-unit layer, 2 latents,
25 training steps, 16 held-out points, K ≤ 100; AIS with 100 steps and 8 chains,
BDMC on 4 simulated points. Measured: 4–10 s a trial on one loaded CPU core. It
exercises the code; its numbers mean nothing (in 2 latents IWAE_100 is already
close to log p(x), so AIS ties it within noise).

**Default**: the 8×8 digits (1,438 training images; thresholded at 0.5 for the VAE,
grey levels for the linear-Gaussian LVM), one 256-unit ReLU layer, 8 latents, 1,000
Adam steps (batch 128, lr 3·10⁻³), 200 held-out points, K = 1 … 5000; AIS with 500
steps and 16 chains from q(z|x) (measured alone: 55 s for the VAE, 37 s for the
linear LVM on one core), BDMC with the same settings on 10 simulated points (≈ 25 s).
About 1.5–2 min a trial, 6 trials (3 seeds) in ≈ 10 min on one core.
Far from the paper: another dataset and a far smaller model, so its log p(x) values are
not comparable with published ones; what it measures is the shape of the bound in K.

**Paper** (`--paper`): Burda, Grosse & Salakhutdinov (2016), §5, for their
one-stochastic-layer VAE (k = 1): binarized MNIST, 784-200-200-50 with tanh units,
Adam with batch 100 and their schedule (lr 10⁻³·10^(−i/7) for 3^i passes, i = 0 … 7:
3,280 passes, 1,968,000 steps), IS with K = 5000 on all 10,000 test images (K = 1 … 1000
alongside). AIS (1,000 steps, 16 chains from q(z|x)) and BDMC (100 simulated
images) are our addition, not in the paper; the numbers of steps and chains are our
choice. Our reading, not stated facts: training images are binarized afresh per
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

"""The disentanglement study's analysis: metric agreement, figures and computed claims.

Not a study (the leading underscore hides it from :func:`ppl_vae.study.available_studies`);
:mod:`ppl_vae.studies.disentanglement` calls :func:`analyze` from its hook. Every claim
is computed from the trials, so the report says what this run shows, not what the
papers found.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from ppl_vae.study.report import markdown_table

#: The six scores Locatello et al. (2019) compare (their Figure "rank correlation of
#: the metrics"), in their order.
AGREEMENT_METRICS = ("betavae_score", "factorvae_score", "mig", "dci_disentanglement",
                     "modularity", "sap")
#: Labels of the families in figures and claims.
LABELS = {"vae": "VAE", "beta_vae": "β-VAE", "tcvae": "β-TCVAE", "dip_vae_i": "DIP-VAE-I",
          "dip_vae_ii": "DIP-VAE-II", "annealed_vae": "AnnealedVAE", "factor_vae": "FactorVAE"}
#: Published MIG ordering of the families' best results on dSprites (Lin et al. 2020,
#: InfoGAN-CR, Table 1): β-TCVAE 0.45, β-VAE 0.21, FactorVAE 0.15,
#: VAE 0.10.
PUBLISHED_MIG_ORDER = ("tcvae", "beta_vae", "factor_vae", "vae")
LOCATELLO = "Locatello et al. (2019)"
#: Published settings and figures on disentanglement_lib, printed beside the agreement table.
PUBLISHED = (
    "disentanglement_lib (Locatello et al. 2019): MIG on 10,000 training points with 20 "
    "bins; 10 latents, batch 64, 300,000 steps, Adam lr 1e-4, Bernoulli loss; β-VAE β ∈ "
    "{1, 2, 4, 6, 8, 16}, β-TCVAE β ∈ {1, 2, 4, 6, 8, 10}.",
    "dSprites MIG, best reported result per baseline (Lin et al. 2020, InfoGAN-CR, "
    "Table 1): VAE 0.10, β-VAE 0.21, β-TCVAE 0.45, FactorVAE 0.15 (rows in 'Beside the "
    "published figures').",
    "Users of public β-TCVAE code report MIG of 1e-3 to 1e-2 where papers report O(0.1) "
    "(YannDubs/disentangling-vae issue 52): the discretisation and the budget matter.",
)


def per_trial(df: pd.DataFrame, families: dict) -> pd.DataFrame:
    """One row per trial: ``config_id, seed, family, setting`` (the family's swept
    hyper-parameter, NaN for the VAE), ``model`` (a label) and one column per metric."""
    df = df.copy()
    df.attrs = {}  # the runner's attrs hold frames, which pandas cannot compare on reshapes
    wide = df.pivot_table(index=["config_id", "seed"], columns="metric", values="value")
    configs = df.drop_duplicates("config_id").set_index("config_id")
    wide = wide.reset_index()
    wide["family"] = wide["config_id"].map(configs["family"])

    def setting(row):
        key = families[row["family"]].key if row["family"] in families else None
        return float(configs.at[row["config_id"], key]) if key in configs else np.nan

    wide["setting"] = wide.apply(setting, axis=1)
    wide["model"] = [
        LABELS.get(f, f) + ("" if np.isnan(v) else f" {families[f].key}={v:g}")
        for f, v in zip(wide["family"], wide["setting"])
    ]
    return wide


def _spearman(a: pd.Series, b: pd.Series) -> tuple[float, float, int]:
    keep = np.isfinite(a.to_numpy(float)) & np.isfinite(b.to_numpy(float))
    n = int(keep.sum())
    if n < 3 or np.ptp(a[keep]) == 0 or np.ptp(b[keep]) == 0:
        return np.nan, np.nan, n
    rho, p = stats.spearmanr(a[keep], b[keep])
    return float(rho), float(p), n


def metric_agreement(wide: pd.DataFrame, metrics=AGREEMENT_METRICS) -> pd.DataFrame:
    """Spearman rank correlations between metrics across all trials, tidy: ``metric_a,
    metric_b, rho, p_value, n_trials`` for every ordered pair (ρ = 1 on the diagonal by
    definition; NaN where fewer than three trials or a constant metric leave it undefined)."""
    missing = [m for m in metrics if m not in wide.columns]
    if missing:
        raise ValueError(f"metrics={list(metrics)!r} names {missing}, not columns of the "
                         f"trial table: pass metrics among {sorted(wide.columns)}")
    rows = []
    for a, b in itertools.product(metrics, metrics):
        rho, p, n = (1.0, 0.0, int(np.isfinite(wide[a]).sum())) if a == b else \
            _spearman(wide[a], wide[b])
        rows.append({"metric_a": a, "metric_b": b, "rho": rho, "p_value": p, "n_trials": n})
    return pd.DataFrame(rows)


def agreement_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """The tidy agreement table as a square matrix of ρ (rows ``metric_a``)."""
    order = list(pd.unique(table["metric_a"]))
    matrix = table.pivot(index="metric_a", columns="metric_b", values="rho")
    return matrix.reindex(index=order, columns=order).rename_axis(index=None, columns=None)


def _verdict(ok) -> str:
    return "untestable" if ok is None else ("yes" if ok else "no")


def _rho_claim(table, a, b, claim, source) -> dict:
    row = table[(table["metric_a"] == a) & (table["metric_b"] == b)].iloc[0]
    ok = None if np.isnan(row["rho"]) else bool(row["rho"] > 0 and row["p_value"] < 0.05)
    return {"claim": claim, "source": source, "statistic": f"ρ({a}, {b}), p",
            "ours": f"{row['rho']:.2f}, p = {row['p_value']:.2g} (n = {row['n_trials']})",
            "reproduced": _verdict(ok)}


def _modularity_claim(table) -> dict:
    off = table[table["metric_a"] != table["metric_b"]]
    with_mod = off[off["metric_a"] == "modularity"]["rho"]
    others = off[(off["metric_a"] != "modularity") & (off["metric_b"] != "modularity")]["rho"]
    a, b = with_mod.mean(), others.mean()
    ok = None if np.isnan(a) or np.isnan(b) else bool(a < b)
    return {"claim": "modularity agrees least with the other metrics",
            "source": f"{LOCATELLO}, 'How much do existing disentanglement metrics agree?'",
            "statistic": "mean ρ with modularity vs among the others",
            "ours": f"{a:.2f} vs {b:.2f}", "reproduced": _verdict(ok)}


def _tc_claim(wide, families) -> dict:
    parts, rhos = [], []
    for name, part in wide.groupby("family"):
        if part["setting"].nunique() < 2:
            continue
        rho, _, _ = _spearman(families[name].stronger * part["setting"],
                              part["total_correlation"])
        rhos.append(rho)
        parts.append(f"{LABELS.get(name, name)} {rho:.2f}")
    ok = None if not rhos or np.isnan(rhos).all() else bool(np.nanmax(rhos) < 0)
    return {"claim": "stronger regularisation lowers the total correlation of q(z)",
            "source": f"{LOCATELLO}, 'Can current methods enforce an uncorrelated "
                      "aggregated posterior?' (the sampled representation)",
            "statistic": "ρ(regularisation strength, TC) per family",
            "ours": "; ".join(parts) or "no family at two values", "reproduced": _verdict(ok)}


def _family_share(wide, metrics) -> dict:
    shares = []
    for metric in metrics:
        values = wide[["family", metric]].dropna()
        total = ((values[metric] - values[metric].mean()) ** 2).sum()
        means = values.groupby("family")[metric].transform("mean")
        if total > 0 and values.groupby("family").size().max() > 1:
            shares.append(float(((means - values[metric].mean()) ** 2).sum() / total))
    median = float(np.median(shares)) if shares else np.nan
    ok = None if not shares or wide["family"].nunique() < 2 else bool(median < 0.5)
    return {"claim": "the model family explains less of a score's variance than the "
                     "hyper-parameters and seeds",
            "source": f"{LOCATELLO}, 'How important are different models and "
                      "hyperparameters for disentanglement?'",
            "statistic": "median over the metrics of η² (family)",
            "ours": f"{median:.2f}", "reproduced": _verdict(ok)}


def _chen_claim(wide) -> dict:
    mig = wide.groupby(["family", "setting"])["mig"].mean()
    shared = sorted(set(mig.get("tcvae", pd.Series(dtype=float)).index)
                    & set(mig.get("beta_vae", pd.Series(dtype=float)).index))
    gaps = [mig["tcvae"][b] - mig["beta_vae"][b] for b in shared]
    ok = None if not gaps else bool(min(gaps) > 0)
    return {"claim": "β-TCVAE > β-VAE in MIG at the same β",
            "source": "Chen et al. (2018), dSprites",
            "statistic": "mean MIG difference per β",
            "ours": "; ".join(f"β={b:g}: {g:+.3f}" for b, g in zip(shared, gaps)) or "no shared β",
            "reproduced": _verdict(ok)}


def _ordering_claim(wide) -> dict:
    best = wide.groupby(["family", "setting"], dropna=False)["mig"].mean().groupby("family").max()
    present = [f for f in PUBLISHED_MIG_ORDER if f in best.index]
    ours = sorted(present, key=lambda f: -best[f])
    ok = None if len(present) < 2 else ours == present
    return {"claim": "MIG of the best configurations: " + " > ".join(
                LABELS[f] for f in PUBLISHED_MIG_ORDER),
            "source": "Lin et al. (2020), InfoGAN-CR, Table 1 (best reported per baseline)",
            "statistic": "our order of the best configuration's mean MIG",
            "ours": " > ".join(f"{LABELS[f]} {best[f]:.3f}" for f in ours),
            "reproduced": _verdict(ok)}


def claims(wide: pd.DataFrame, table: pd.DataFrame, families: dict) -> pd.DataFrame:
    """Locatello et al.'s findings and the published orderings, each computed here:
    ``claim, source, statistic, ours, reproduced`` (``yes``, ``no``, or ``untestable`` where
    this run cannot test it, e.g. one value per family)."""
    loc = f"{LOCATELLO}, 'How much do existing disentanglement metrics agree?'"
    rows = [
        _rho_claim(table, "mig", "dci_disentanglement", "MIG and DCI disentanglement agree",
                   loc),
        _rho_claim(table, "betavae_score", "factorvae_score",
                   "the BetaVAE and FactorVAE scores agree", loc),
        _modularity_claim(table),
        _tc_claim(wide, families),
        _family_share(wide, [m for m in AGREEMENT_METRICS if m in wide.columns]),
        _chen_claim(wide),
        _ordering_claim(wide),
    ]
    return pd.DataFrame(rows, columns=["claim", "source", "statistic", "ours", "reproduced"])


def analyze(df: pd.DataFrame, out_dir, families: dict) -> str:
    """Write ``scores.png``, ``metric_vs_elbo.png``, ``metric_vs_tc.png``,
    ``agreement.png``, ``agreement.csv`` and ``claims.csv``; return the markdown of the
    report's Analysis section."""
    from ppl_vae import plots

    wide = per_trial(df, families)
    metrics = [m for m in AGREEMENT_METRICS if m in wide.columns]
    long = wide.melt(id_vars=["model"], value_vars=metrics, var_name="metric")
    plots.metric_bars(long, path=out_dir / "scores.png", x="model", panel="metric",
                      title="disentanglement_lib's scores on sprites")
    for x, name, what in (("elbo", "metric_vs_elbo.png", "ELBO"),
                          ("total_correlation", "metric_vs_tc.png", "total correlation of q(z)")):
        plots.metric_scatter(wide, path=out_dir / name, x=x, metrics=metrics, hue="family",
                             title=f"Scores against the {what}, one dot a trial")
    table = metric_agreement(wide, metrics)
    table.to_csv(out_dir / "agreement.csv", index=False)
    matrix = agreement_matrix(table)
    plots.correlation_heatmap(matrix, path=out_dir / "agreement.png",
                              title=f"Metric agreement over {len(wide)} trials")
    found = claims(wide, table, families)
    found.to_csv(out_dir / "claims.csv", index=False)
    held = found[found["reproduced"] == "yes"]["claim"].tolist()
    testable = int((found["reproduced"] != "untestable").sum())
    return "\n".join([
        "### Metric agreement", "",
        f"Spearman rank correlation of each pair of scores across all {len(wide)} trials "
        "(every configuration and seed); `agreement.csv` holds it tidy (`metric_a, "
        "metric_b, rho, p_value, n_trials`), `agreement.png` draws it.", "",
        markdown_table(matrix.reset_index(names="metric"), floatfmt=".2f"), "",
        "Published, beside it:", "",
        *[f"- {line}" for line in PUBLISHED], "",
        "### Which published findings reproduce", "",
        f"Computed from this run's trials (`claims.csv`): {len(held)} of {testable} "
        "testable claims reproduce" + (f" — {'; '.join(held)}." if held else "."), "",
        markdown_table(found),
    ])

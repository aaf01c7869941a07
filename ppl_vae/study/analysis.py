"""Per-configuration summaries across seeds, and paired comparisons between configurations.

Both functions take the tidy trial table that :func:`ppl_vae.study.run` returns
(columns ``config_id, <config keys...>, seed, metric, value``) and return labelled
DataFrames; the arithmetic lives in the private ``_summary_row`` and ``_paired_row``.

Interval choice: a **percentile bootstrap confidence interval of the mean**
(:func:`scipy.stats.bootstrap`) rather than ArviZ's ``az.hdi`` of the per-seed
values. The figures and tables compare configuration *means*, so the interval
should describe uncertainty about the mean; an HDI of three to five per-seed
values describes the spread of single seeds (with so few points it is close to
their range) and would not shrink as seeds are added. The percentile method is
used instead of BCa because BCa is unstable or undefined for the tiny and often
tied samples a seed sweep produces. Caveat: with fewer than about ten seeds the
bootstrap interval is too narrow (it undercovers); read it together with ``n``
and the standard error. Only finite values enter; NaN results are dropped.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .store import RESERVED_COLUMNS

_NEEDED = ("config_id", "seed", "metric", "value")
SUMMARY_STATS = ("n_seeds", "mean", "sd", "se", "ci_low", "ci_high")
PAIRED_STATS = ("reference_id", "n_pairs", "mean_diff", "se_diff", "t_stat", "p_value")
#: Names a configuration key may not take: they are columns of the result tables.
RESERVED_NAMES = (*RESERVED_COLUMNS, *SUMMARY_STATS, *PAIRED_STATS)


def _check_table(df) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(
            f"df={type(df).__name__} is invalid: pass the tidy DataFrame returned by "
            "ppl_vae.study.run"
        )
    missing = [c for c in _NEEDED if c not in df.columns]
    if missing:
        raise ValueError(
            f"df lacks column(s) {', '.join(missing)}: pass the tidy table with columns "
            f"{', '.join(_NEEDED)} (one row per trial and metric)"
        )


def config_columns(df: pd.DataFrame) -> list[str]:
    """Names of the configuration-key columns of a result table (everything not reserved)."""
    return [c for c in df.columns if c not in RESERVED_NAMES]


def _references(labels: pd.DataFrame, reference: int, pair_within: Sequence[str]) -> dict:
    """``config_id -> its reference``: ``reference``, or within groups of equal
    ``pair_within`` keys, the group's own (see :func:`paired_comparison`)."""
    missing = [k for k in pair_within if k not in labels.columns]
    if missing:
        raise ValueError(
            f"pair_within={list(pair_within)!r} names {', '.join(map(repr, missing))}, not a "
            f"configuration key of this table ({', '.join(map(str, labels.columns))})"
        )
    if not pair_within:
        return dict.fromkeys(labels.index, reference)
    keys = labels[list(pair_within)].astype(str).apply(tuple, axis=1)
    out = {}
    for _, group in keys.groupby(keys, sort=False):
        ids = list(group.index)
        own = reference if reference in ids else min(ids)
        out.update(dict.fromkeys(ids, own))
    return out


def _config_labels(df: pd.DataFrame) -> pd.DataFrame:
    """One row per config_id with the study name and configuration columns."""
    keep = [c for c in ("study", "config_id", *config_columns(df)) if c in df.columns]
    return df[keep].drop_duplicates("config_id").set_index("config_id")


def _summary_row(values: np.ndarray, *, prob: float, n_resamples: int, seed: int) -> dict:
    values = values[np.isfinite(values)]
    n = len(values)
    row = {
        "n_seeds": n,
        "mean": np.nan,
        "sd": np.nan,
        "se": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
    }
    if n == 0:
        return row
    row["mean"] = float(values.mean())
    if n < 2:
        return row
    row["sd"] = float(values.std(ddof=1))
    row["se"] = row["sd"] / np.sqrt(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate (all-equal) samples are fine here
        ci = stats.bootstrap(
            (values,),
            np.mean,
            confidence_level=prob,
            n_resamples=n_resamples,
            method="percentile",
            rng=np.random.default_rng(seed),
        ).confidence_interval
    row["ci_low"], row["ci_high"] = float(ci.low), float(ci.high)
    return row


def summarize(
    df: pd.DataFrame, *, prob: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Summarise each metric of each configuration across seeds.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy trial table (``config_id, <config keys...>, seed, metric, value``).
    prob : float, default 0.95
        Confidence level of the bootstrap interval.
    n_resamples : int, default 2000
        Bootstrap resamples per (configuration, metric).
    seed : int, default 0
        Seed of the bootstrap resampling, so summaries are reproducible.

    Returns
    -------
    pandas.DataFrame
        One row per (configuration, metric): the configuration columns, ``metric``,
        ``n_seeds`` (finite per-seed values), ``mean``, ``sd`` (ddof=1), ``se`` = sd/sqrt(n),
        and the percentile bootstrap interval of the mean ``ci_low``, ``ci_high``
        (NaN when n_seeds < 2).

    Examples
    --------
    >>> import pandas as pd
    >>> import ppl_vae as pv
    >>> df = pd.DataFrame({"config_id": [0, 0, 0, 1, 1, 1], "lr": [0.1] * 3 + [0.01] * 3,
    ...                    "seed": [0, 1, 2] * 2, "metric": "loss",
    ...                    "value": [1.0, 1.2, 1.1, 0.8, 1.1, 0.9]})
    >>> summary = pv.study.summarize(df, n_resamples=200)
    >>> summary[["config_id", "lr", "n_seeds"]].values.tolist()
    [[0.0, 0.1, 3.0], [1.0, 0.01, 3.0]]
    >>> summary["mean"].round(4).tolist(), summary["sd"].round(4).tolist()
    ([1.1, 0.9333], [0.1, 0.1528])
    >>> bool((summary["ci_low"] <= summary["mean"]).all() and
    ...      (summary["mean"] <= summary["ci_high"]).all())
    True
    """
    _check_table(df)
    if not 0 < prob < 1:
        raise ValueError(f"prob={prob!r} is invalid: pass a confidence level in (0, 1), e.g. 0.95")
    labels = _config_labels(df)
    rows = []
    for (config_id, metric), group in df.groupby(["config_id", "metric"], sort=False):
        row = {"config_id": config_id, **labels.loc[config_id].to_dict(), "metric": metric}
        values = group["value"].to_numpy(dtype=float)
        row.update(_summary_row(values, prob=prob, n_resamples=n_resamples, seed=seed))
        rows.append(row)
    columns = ["config_id", *labels.columns, "metric", *SUMMARY_STATS]
    out = pd.DataFrame(rows, columns=columns)
    out = out.sort_values(["metric", "config_id"], kind="stable").reset_index(drop=True)
    return out.astype({"n_seeds": "int64"})


def _paired_row(x: np.ndarray, ref: np.ndarray) -> dict:
    diff = x - ref
    n = len(diff)
    row = {"n_pairs": n, "mean_diff": np.nan, "se_diff": np.nan, "t_stat": np.nan}
    row["p_value"] = np.nan
    if n == 0:
        return row
    row["mean_diff"] = float(diff.mean())
    if n < 2:
        return row
    row["se_diff"] = float(diff.std(ddof=1) / np.sqrt(n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # identical differences give t = ±inf or NaN
        test = stats.ttest_rel(x, ref)
    row["t_stat"], row["p_value"] = float(test.statistic), float(test.pvalue)
    return row


def paired_comparison(df: pd.DataFrame, *, reference: int | None = None,
                      pair_within: Sequence[str] = ()) -> pd.DataFrame:
    """Compare every configuration with a reference one on the seeds they share.

    Seeds make trials paired: the same seed gives the same data split,
    initialisation and Monte Carlo draws to every configuration, so
    configuration-minus-reference differences per seed cancel much of the
    seed-to-seed noise.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy trial table (``config_id, <config keys...>, seed, metric, value``).
    reference : int, optional
        ``config_id`` of the reference configuration; default the smallest
        ``config_id`` (the first configuration of the study's grid).
    pair_within : sequence of str, optional
        Configuration keys that decide the data a trial sees (e.g. the model where
        each model gets its own preprocessing): only configurations equal in these
        keys share data and seeds, so each such group is compared with its own
        reference (``reference`` where it is in the group, else the group's smallest
        ``config_id``); a group of one configuration gives no row.

    Returns
    -------
    pandas.DataFrame
        One row per (metric, configuration other than the reference): the
        configuration columns, ``reference_id``, ``n_pairs`` (shared seeds with
        finite values in both), ``mean_diff`` (configuration − reference),
        ``se_diff`` = sd(diff)/sqrt(n_pairs), and the paired t-test
        (:func:`scipy.stats.ttest_rel`) statistic ``t_stat`` and two-sided ``p_value``
        (NaN when n_pairs < 2).

    Examples
    --------
    Configuration 1 is lower than configuration 0 by 0.1 to 0.2 on every seed:

    >>> import pandas as pd
    >>> import ppl_vae as pv
    >>> df = pd.DataFrame({"config_id": [0, 0, 0, 1, 1, 1], "lr": [0.1] * 3 + [0.01] * 3,
    ...                    "seed": [0, 1, 2] * 2, "metric": "loss",
    ...                    "value": [1.0, 1.2, 1.1, 0.8, 1.1, 0.9]})
    >>> row = pv.study.paired_comparison(df).iloc[0]
    >>> int(row["config_id"]), int(row["reference_id"]), int(row["n_pairs"])
    (1, 0, 3)
    >>> [round(float(row[c]), 4) for c in ("mean_diff", "t_stat", "p_value")]
    [-0.1667, -5.0, 0.0377]
    """
    _check_table(df)
    labels = _config_labels(df)
    ids = list(labels.index)
    if reference is None:
        reference = min(ids) if ids else 0
    elif reference not in ids:
        raise ValueError(
            f"reference={reference!r} is not a config_id of this table; "
            f"valid ids: {', '.join(map(str, ids))}"
        )
    references = _references(labels, reference, pair_within)
    wide = df.pivot_table(index=["metric", "seed"], columns="config_id", values="value")
    rows = []
    for metric in pd.unique(df["metric"]):
        table = wide.loc[metric] if metric in wide.index.get_level_values(0) else None
        for config_id in ids:
            reference = references[config_id]
            if config_id == reference:
                continue
            row = {"metric": metric, "config_id": config_id, **labels.loc[config_id].to_dict()}
            row["reference_id"] = reference
            x = ref = np.array([])
            if table is not None and {config_id, reference} <= set(table.columns):
                pair = table[[config_id, reference]].dropna()
                x, ref = pair[config_id].to_numpy(float), pair[reference].to_numpy(float)
            row.update(_paired_row(x, ref))
            rows.append(row)
    columns = ["metric", "config_id", *labels.columns, *PAIRED_STATS]
    out = pd.DataFrame(rows, columns=columns)
    return out.astype({"n_pairs": "int64", "reference_id": "int64"})

"""Summaries, paired comparisons and report rendering against hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ppl_vae.study import paired_comparison, summarize
from ppl_vae.study.report import markdown_table, split_docstring


def _table(values: dict[int, dict[int, float]], metric="loss", k=None) -> pd.DataFrame:
    """Tidy table from {config_id: {seed: value}}; config key ``k`` = 10 * config_id."""
    rows = [
        {
            "study": "s",
            "config_id": c,
            "k": 10 * c if k is None else k,
            "seed": s,
            "metric": metric,
            "value": v,
        }
        for c, by_seed in values.items()
        for s, v in by_seed.items()
    ]
    return pd.DataFrame(rows)


# Reference per-seed values; expected numbers below are computed by hand.
REF = {0: 1.0, 1: 2.0, 2: 4.0, 3: 5.0}  # mean 3, sd sqrt(10/3)
OTHER = {0: 2.0, 1: 2.5, 2: 5.5, 3: 7.0}  # differences 1, 0.5, 1.5, 2 -> mean 1.25


def test_summary_mean_se_and_interval_by_hand():
    s = summarize(_table({0: REF, 1: OTHER}))
    assert list(s.columns) == [
        "config_id",
        "study",
        "k",
        "metric",
        "n_seeds",
        "mean",
        "sd",
        "se",
        "ci_low",
        "ci_high",
    ]
    ref = s[s.config_id == 0].iloc[0]
    assert ref["n_seeds"] == 4 and ref["k"] == 0
    assert ref["mean"] == pytest.approx(3.0)
    assert ref["sd"] == pytest.approx(math.sqrt(10 / 3))  # squares 4+1+1+4 over n-1=3
    assert ref["se"] == pytest.approx(math.sqrt(10 / 3) / 2)
    # a bootstrap interval of the mean lies inside the data range and contains the mean
    assert 1.0 <= ref["ci_low"] < 3.0 < ref["ci_high"] <= 5.0
    again = summarize(_table({0: REF, 1: OTHER}))
    pd.testing.assert_frame_equal(s, again)  # seeded resampling: reproducible


def test_summary_single_seed_and_nan_values():
    s = summarize(_table({0: {0: 2.0}, 1: {0: 1.0, 1: float("nan"), 2: 3.0}}))
    single, with_nan = s.iloc[0], s.iloc[1]
    assert single["n_seeds"] == 1 and single["mean"] == 2.0
    assert np.isnan(single["se"]) and np.isnan(single["ci_low"])
    assert with_nan["n_seeds"] == 2 and with_nan["mean"] == 2.0  # NaN seed dropped
    assert with_nan["se"] == pytest.approx(1.0)  # sd sqrt(2) / sqrt(2)


def test_paired_comparison_equals_scipy_ttest_rel():
    p = paired_comparison(_table({0: REF, 1: OTHER}))
    assert len(p) == 1
    row = p.iloc[0]
    expected = stats.ttest_rel(list(OTHER.values()), list(REF.values()))
    assert row["config_id"] == 1 and row["reference_id"] == 0 and row["n_pairs"] == 4
    assert row["mean_diff"] == pytest.approx(1.25)
    diffs = np.array([1.0, 0.5, 1.5, 2.0])
    assert row["se_diff"] == pytest.approx(diffs.std(ddof=1) / 2)
    assert row["t_stat"] == pytest.approx(expected.statistic)
    assert row["p_value"] == pytest.approx(expected.pvalue)
    assert row["t_stat"] == pytest.approx(1.25 / row["se_diff"])


def test_paired_comparison_uses_only_shared_seeds_and_any_reference():
    partial = {1: 2.5, 3: 7.0, 9: 100.0}  # seed 9 has no partner in REF
    p = paired_comparison(_table({0: REF, 1: partial}))
    assert p.iloc[0]["n_pairs"] == 2
    assert p.iloc[0]["mean_diff"] == pytest.approx((0.5 + 2.0) / 2)
    expected = stats.ttest_rel([2.5, 7.0], [2.0, 5.0])
    assert p.iloc[0]["p_value"] == pytest.approx(expected.pvalue)

    reversed_ = paired_comparison(_table({0: REF, 1: OTHER}), reference=1)
    assert reversed_.iloc[0]["config_id"] == 0
    assert reversed_.iloc[0]["mean_diff"] == pytest.approx(-1.25)
    with pytest.raises(ValueError, match="reference=7 is not a config_id"):
        paired_comparison(_table({0: REF, 1: OTHER}), reference=7)


def test_analysis_validates_its_input():
    with pytest.raises(ValueError, match="lacks column"):
        summarize(pd.DataFrame({"config_id": [0], "value": [1.0]}))
    with pytest.raises(ValueError, match="prob=1.5"):
        summarize(_table({0: REF}), prob=1.5)


def test_markdown_table_rendering():
    df = pd.DataFrame({"name": ["a|b", "c"], "x": [1.23456, float("nan")], "n": [3, 4]})
    assert markdown_table(df, floatfmt=".3g") == (
        "| name | x | n |\n|:---|---:|---:|\n| a\\|b | 1.23 | 3 |\n| c |  | 4 |"
    )


def test_docstring_split_into_question_and_hypothesis():
    question, hypothesis = split_docstring(
        "Is IWAE tighter than the ELBO?\n\nMore context.\n\nHypothesis: yes, by O(1/K).\n"
    )
    assert question == "Is IWAE tighter than the ELBO?\n\nMore context."
    assert hypothesis == "yes, by O(1/K)."
    assert split_docstring("Only a question.") == ("Only a question.", "")


def test_pair_within_compares_only_configurations_that_share_data():
    # configs 0, 1 are model "a" (same data), 2, 3 model "b": pairs 1 vs 0 and 3 vs 2 only
    table = _table({0: REF, 1: OTHER, 2: REF, 3: OTHER})
    table["model"] = table["config_id"].map({0: "a", 1: "a", 2: "b", 3: "b"})
    p = paired_comparison(table, pair_within=["model"])
    assert list(zip(p["config_id"], p["reference_id"])) == [(1, 0), (3, 2)]
    assert p["mean_diff"].tolist() == pytest.approx([1.25, 1.25])
    alone = table[table["config_id"] != 3]
    assert list(paired_comparison(alone, pair_within=["model"])["config_id"]) == [1]
    with pytest.raises(ValueError, match="pair_within=\\['data'\\] names 'data', not a "
                                         "configuration key"):
        paired_comparison(table, pair_within=["data"])


def test_report_says_which_pairs_are_tested(tmp_path):
    from ppl_vae.study.report import _paired_section

    table = _table({0: REF, 1: OTHER, 2: REF, 3: OTHER})
    table["model"] = table["config_id"].map({0: "a", 1: "a", 2: "b", 3: "b"})
    text = "\n".join(_paired_section(paired_comparison(table, pair_within=["model"]), ["model"]))
    assert "Pairs tested: 1 vs 0, 3 vs 2." in text and "share `model`" in text
    assert "reference_id" in text  # two references: the column is shown
    none = "\n".join(_paired_section(paired_comparison(table[table["config_id"] % 2 == 0],
                                                       pair_within=["model"]), ["model"]))
    assert "None tested: no two configurations share `model`" in none


def test_config_labels_name_left_out_keys_and_integral_floats():
    import pandas as pd

    from ppl_vae.study import report

    summary = pd.DataFrame({"config_id": [0, 1], "prior": [float("nan"), "vamp"],
                            "components": [float("nan"), 10.0], "hidden": [32, 32]})
    assert report._varying_keys(summary) == ["prior", "components"]  # NaN vs a value varies
    labels = [report.config_label(row, ["prior", "components"]) for _, row in summary.iterrows()]
    assert labels == ["prior=–, components=–", "prior=vamp, components=10"]

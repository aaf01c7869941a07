"""sbc, small grid: the exact posterior and the trained guide pass; mis-scaled guides fail."""

import numpy as np

STUDY_NAME = "sbc"


def _by_arm(df, wide):
    arms = df.drop_duplicates("config_id").set_index("config_id")
    key = {cid: (row["guide"], row["spread"]) for cid, row in arms.iterrows()}
    return {key[cid]: row for (cid, _seed), row in wide.iterrows()}


def test_calibrated_guides_pass_and_mis_scaled_ones_fail(small_run):
    df, wide, out = small_run
    arm = _by_arm(df, wide)
    exact, trained = arm[("exact", 1.0)], arm[("amortized", 1.0)]
    narrow, wide_q = arm[("amortized", 0.5)], arm[("amortized", 2.0)]
    assert exact["calibrated"] == 1 and exact["p_value"] >= 0.01
    assert exact["kl_to_exact"] == 0
    assert trained["calibrated"] == 1 and trained["p_value"] >= 0.01
    assert 0 < trained["kl_to_exact"] < 0.2  # trained close to the exact posterior
    assert narrow["calibrated"] == 0 and narrow["p_value"] < 1e-6 and narrow["sd_ratio"] > 1.15
    assert wide_q["calibrated"] == 0 and wide_q["p_value"] < 1e-6 and wide_q["sd_ratio"] < 0.85
    for row in arm.values():  # the pooled histogram counts every rank once
        bins = [row[f"rank_bin_{b:02d}"] for b in range(10)]
        assert np.isclose(sum(bins), 400 * 2)
    assert (out / "ranks.png").stat().st_size > 0 and (out / "p_values.png").stat().st_size > 0

"""elbo_vs_is, small grid: bounds ordered as theory says, exact value on the linear LVM."""

import numpy as np

STUDY_NAME = "elbo_vs_is"


def test_bounds_and_outputs(small_run):
    df, wide, out = small_run
    assert set(df["model"]) == {"vae", "linear_lvm"}
    assert np.isfinite(df["value"]).all()
    for _, row in wide.iterrows():
        # IWAE_K is increasing in K in expectation (Burda et al., Thm 1): allow MC noise
        assert row["iwae_K1"] <= row["iwae_K10"] + 0.3 <= row["iwae_K100"] + 0.6
        assert row["elbo"] <= row["iwae_K100"] + 0.2
        assert 0 < row["ess_fraction_K100"] <= 1 and row["ess_fraction_K1"] == 1
    linear = wide.loc[1].iloc[0]
    # the exact log p(x) bounds everything from above (up to IS noise)
    assert linear["exact_log_px"] >= linear["iwae_K100"] - 0.05
    assert linear["gap_elbo"] > 0 and np.isclose(
        linear["gap_elbo"], linear["exact_log_px"] - linear["elbo"])
    assert np.isnan(wide.loc[0].iloc[0].get("exact_log_px", np.nan))
    for name in ("bound_vs_k_vae.png", "bound_vs_k_linear_lvm.png", "report.md", "summary.csv"):
        assert (out / name).stat().st_size > 0
    assert "Hypothesis" in (out / "report.md").read_text()

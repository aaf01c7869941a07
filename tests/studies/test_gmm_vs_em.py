"""gmm_vs_em, small grid: SVI reaches EM's per-point log-likelihood."""

import numpy as np

STUDY_NAME = "gmm_vs_em"


def test_svi_matches_em(small_run):
    df, wide, out = small_run
    assert sorted(set(df["num_components"])) == [2, 4]
    for _, row in wide.iterrows():
        assert abs(row["svi_minus_em_test"]) < 0.2
        assert abs(row["svi_minus_em_train"]) < 0.2
        assert np.isclose(row["svi_minus_em_test"], row["svi_test"] - row["em_test"])
        assert row["em_converged"] == 1.0
    at_truth = wide.loc[0].iloc[0]  # C = true number of components
    assert abs(at_truth["svi_regret_test"]) < 0.3  # near the true parameters' log-lik
    assert (out / "svi_minus_em.png").stat().st_size > 0

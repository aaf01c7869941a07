"""gmm_vs_em, small grid: SVI reaches EM's per-point log-likelihood."""

import numpy as np

import ppl_vae as pv

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


def test_paper_grid_is_larger_and_brackets_the_true_number_of_components():
    study = pv.study.get_study(STUDY_NAME)
    default = study.grid[0]
    for config in study.paper_grid:
        for key in ("n", "true_components", "data_dim", "em_inits", "steps", "batch_size"):
            assert config[key] > default[key], key
    truth = study.paper_grid[0]["true_components"]
    assert [c["num_components"] for c in study.paper_grid] == [truth, truth // 2, 2 * truth]
    assert max(c["num_components"] for c in study.paper_grid) > max(
        c["num_components"] for c in study.grid)

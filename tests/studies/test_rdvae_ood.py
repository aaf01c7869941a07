"""rdvae_ood, small grid: accuracies and AUROCs in range for the VAE baseline and an RD-VAE."""

import ppl_vae as pv

STUDY_NAME = "rdvae_ood"


def test_accuracy_and_auroc(small_run):
    df, wide, out = small_run
    assert list(dict.fromkeys(df["model"])) == ["vae", "rdvae"]
    vae, rd = wide.loc[0].iloc[0], wide.loc[1].iloc[0]
    for row in (vae, rd):
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["auroc_log_px"] <= 1
    assert {"auroc_latent_density", "auroc_latent_distance"} <= set(rd.dropna().index)
    assert rd["min_sq_distance_class_means"] > 0
    assert vae["accuracy"] > 0.3  # a linear probe beats chance (0.2) even after brief training
    paired = (out / "paired.csv").read_text()
    assert "accuracy" in paired
    assert (out / "accuracy_auroc.png").stat().st_size > 0


def test_paper_grid_is_mnist_with_the_default_arms():
    study = pv.study.get_study(STUDY_NAME)
    default = study.grid[0]
    assert "dataset" not in default  # the default keeps its stored trials' keys: digits

    def arms(grid):
        return [(c["model"], c["weight"], c["rho"]) for c in grid]

    assert arms(study.paper_grid) == arms(study.grid)
    for config in study.paper_grid:
        assert config["dataset"] == "mnist"
        assert config["steps"] > default["steps"] and config["hidden"] > default["hidden"]
        assert config["num_samples"] > default["num_samples"]


def test_paper_configs_run_when_shrunk(shrunk_paper_run):
    df, wide = shrunk_paper_run(hidden=32, steps=20, num_samples=8)
    assert set(df["dataset"]) == {"mnist"} and len(wide) == 6
    for _, row in wide.iterrows():
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["auroc_log_px"] <= 1

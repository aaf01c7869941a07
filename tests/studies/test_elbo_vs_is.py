"""elbo_vs_is, small grid: bounds ordered as theory says, exact value on the linear LVM."""

import numpy as np

import ppl_vae as pv
from ppl_vae.studies import elbo_vs_is

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
    report = (out / "report.md").read_text()
    assert "Hypothesis" in report
    # the VAE and the linear LVM see different data (thresholded / grey levels): no t-test
    assert "None tested: no two configurations share `model`" in report
    assert (out / "paired.csv").read_text().count("\n") == 1  # the header only


def test_paper_grid_is_burda_et_al_at_full_scale():
    study = pv.study.get_study(STUDY_NAME)
    default, paper = study.grid[0], study.paper_grid
    assert [c["model"] for c in paper] == [c["model"] for c in study.grid]
    for config in paper:
        assert config["dataset"] == "mnist" and config["n_eval"] == 10_000 > default["n_eval"]
        assert max(config["ks"]) == 5000 >= max(default["ks"])
        assert config["hidden"] == [200, 200] and config["activation"] == "tanh"
        assert config["latent_dim"] == 50 > default["latent_dim"]
        # 3^0 + ... + 3^7 = 3280 passes over 60,000 images in batches of 100
        assert config["batch_size"] == 100 and config["steps"] == 3280 * 600 > default["steps"]
        assert config["lr_schedule"] == "iwae_paper" and config["binarize"] == "dynamic"


def test_paper_configs_run_when_shrunk(shrunk_paper_run, monkeypatch):
    monkeypatch.setattr(elbo_vs_is, "ELBO_ROWS", 5)  # the ELBO of 16 points in 4 passes
    df, wide = shrunk_paper_run(steps=20, n_eval=16, elbo_particles=4, ks=[1, 10, 100])
    assert set(df["dataset"]) == {"mnist"} and np.isfinite(df["value"]).all()
    vae, linear = wide.loc[0].iloc[0], wide.loc[1].iloc[0]
    assert vae["iwae_K1"] <= vae["iwae_K100"] + 1.0 and 0 < vae["ess_fraction_K100"] <= 1
    assert linear["exact_log_px"] >= linear["iwae_K100"] - 0.5
    assert vae["elbo"] <= vae["iwae_K100"] + 1.0


def test_analysis_on_a_users_grid_with_two_configs_of_one_model(tmp_path):
    # Two VAEs that differ only in width: the hook used to index its summary by model
    # alone and crashed (float() of a Series), leaving the figures out.
    small = dict(elbo_vs_is.STUDY.small_grid[0])
    grid = [{**small, "hidden": 16}, {**small, "hidden": 24}]
    study = pv.study.Study(name="elbo_vs_is_user", question="Q", trial=elbo_vs_is.trial,
                           grid=grid, analyze=elbo_vs_is.analyze, takes_context=True)
    df = pv.study.run(study, seeds=1, workers=1, out=tmp_path, progress=False)
    out = tmp_path / "elbo_vs_is_user"
    for name in ("bound_vs_k_vae_0.png", "bound_vs_k_vae_1.png", "gap_vs_k.png"):
        assert (out / name).stat().st_size > 0, name
    labels = elbo_vs_is.config_labels(pv.study.summarize(df))
    assert {label for _, label in labels.values()} == {"vae (hidden=16)", "vae (hidden=24)"}

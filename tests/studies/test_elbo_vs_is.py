"""elbo_vs_is, small grid: bounds ordered as theory says, exact value on the linear LVM."""

import numpy as np
import pandas as pd
import pytest

import ppl_vae as pv
from ppl_vae.studies import elbo_vs_is
from ppl_vae.study import TrialContext

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


AIS_COLUMNS = ("ais_log_px", "ais_minus_iwae", "ais_minus_iwae_se", "ais_acceptance",
               "gap_ais", "iwae_minus_elbo", "iwae_minus_elbo_se", "bdmc_lower", "bdmc_upper",
               "bdmc_gap", "bdmc_gap_max")


def test_ais_and_bdmc_columns_and_the_ordering_claim(small_run):
    df, wide, out = small_run
    for _, row in wide.iterrows():
        for name in AIS_COLUMNS:
            assert np.isfinite(row[name]), name
        assert np.isclose(row["ais_minus_iwae"], row["ais_log_px"] - row["iwae_K100"], atol=1e-3)
        assert np.isclose(row["bdmc_gap"], row["bdmc_upper"] - row["bdmc_lower"], atol=1e-4)
        assert 0 < row["ais_acceptance"] <= 1
        # ELBO <= IWAE_100 <= AIS up to 2 s.e. of the paired differences (same points)
        assert row["iwae_minus_elbo"] >= -2 * row["iwae_minus_elbo_se"]
        assert row["ais_minus_iwae"] >= -2 * row["ais_minus_iwae_se"]
        assert abs(row["bdmc_gap"]) < 2.0  # 100 steps in 2 latents: AIS close to log p(x)
    linear = wide.loc[1].iloc[0]
    assert linear["ais_log_px"] <= linear["exact_log_px"] + 0.1  # a lower bound, up to noise
    # the simulated points' exact log p(x) lies between the BDMC bounds, up to noise
    assert linear["bdmc_lower"] - 0.5 <= linear["bdmc_exact"] <= linear["bdmc_upper"] + 0.5
    claims = pd.read_csv(out / "claims.csv")
    assert list(claims["model"]) == ["vae", "linear_lvm"]
    assert claims["holds"].all() and claims["elbo_le_iwae"].all() and claims["iwae_le_ais"].all()
    assert np.isfinite(claims["bdmc_gap"]).all()
    assert "AIS" in (out / "report.md").read_text()  # the docstring's columns and claim


def test_claims_flag_a_reversal():
    rows = [{"config_id": 0, "model": "vae", "seed": s, "metric": m, "value": v}
            for s in (0, 1) for m, v in (("elbo", -10.0), ("iwae_K10", -9.0),
                                         ("iwae_minus_elbo", 1.0), ("iwae_minus_elbo_se", 0.1),
                                         ("ais_log_px", -9.5), ("ais_minus_iwae", -0.5),
                                         ("ais_minus_iwae_se", 0.1))]
    claims = elbo_vs_is.check_claims(pd.DataFrame(rows)).iloc[0]
    assert claims["elbo_le_iwae"] and not claims["iwae_le_ais"] and not claims["holds"]
    assert np.isclose(claims["ais_minus_iwae_se"], np.sqrt(2 * 0.1**2) / 2)


def test_bdmc_without_ais_steps_is_refused():
    config = {**elbo_vs_is.STUDY.small_grid[0], "ais_steps": 0}
    with pytest.raises(ValueError, match=r"bdmc_points=4 needs ais_steps >= 1.*bdmc_points=0"):
        elbo_vs_is.trial(config, TrialContext(seed=0))


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
    df, wide = shrunk_paper_run(steps=20, n_eval=16, elbo_particles=4, ks=[1, 10, 100],
                                ais_steps=5, ais_chains=2, bdmc_points=2)
    assert set(df["dataset"]) == {"mnist"} and np.isfinite(df["value"]).all()
    vae, linear = wide.loc[0].iloc[0], wide.loc[1].iloc[0]
    assert vae["iwae_K1"] <= vae["iwae_K100"] + 1.0 and 0 < vae["ess_fraction_K100"] <= 1
    assert linear["exact_log_px"] >= linear["iwae_K100"] - 0.5
    assert vae["elbo"] <= vae["iwae_K100"] + 1.0
    assert np.isfinite(vae["ais_log_px"]) and np.isfinite(linear["bdmc_gap"])


def test_analysis_on_a_users_grid_with_two_configs_of_one_model(tmp_path):
    # Two VAEs that differ only in width: the hook used to index its summary by model
    # alone and crashed (float() of a Series), leaving the figures out.
    small = {**elbo_vs_is.STUDY.small_grid[0], "ais_steps": 0, "bdmc_points": 0}  # AIS off
    grid = [{**small, "hidden": 16}, {**small, "hidden": 24}]
    study = pv.study.Study(name="elbo_vs_is_user", question="Q", trial=elbo_vs_is.trial,
                           grid=grid, analyze=elbo_vs_is.analyze, takes_context=True)
    df = pv.study.run(study, seeds=1, workers=1, out=tmp_path, progress=False)
    out = tmp_path / "elbo_vs_is_user"
    for name in ("bound_vs_k_vae_0.png", "bound_vs_k_vae_1.png", "gap_vs_k.png"):
        assert (out / name).stat().st_size > 0, name
    labels = elbo_vs_is.config_labels(pv.study.summarize(df))
    assert {label for _, label in labels.values()} == {"vae (hidden=16)", "vae (hidden=24)"}


#: A two-layer linear-Gaussian model graph (z2 -> z1 -> x, Normal pixels): its marginal is
#: Gaussian, so the study's reference is the exact log p(x), not the largest-K bound.
LINEAR_GRAPH = """
family = "vae"
data_dim = 64
[latent.z2]
dim = 2
[latent.z1]
dim = 3
parents = ["z2"]
prior = { kind = "normal", hidden = [], scale = "learned" }
[decoder]
parents = ["z1"]
hidden = []
[likelihood]
kind = "normal"
scale = 0.3
[guide]
kind = "amortized"
"""


def _graph_config(path, **changes):
    config = {**elbo_vs_is.STUDY.small_grid[0], "model": str(path), "ais_steps": 20,
              "ais_chains": 4, "bdmc_points": 0, "steps": 40, **changes}
    config.pop("latent_dim")
    return config


def test_a_model_graph_spec_runs_in_the_grid_against_its_exact_log_px(tmp_path):
    path = tmp_path / "linear_graph.toml"
    path.write_text(LINEAR_GRAPH)
    config = _graph_config(path)
    config.pop("hidden")  # the spec's own (linear) networks, not the grid's hidden layer
    out = elbo_vs_is.trial(config, TrialContext(seed=0))
    exact = out["exact_log_px"]  # the graph's Gaussian marginal: the reference
    assert out["gap_elbo"] == pytest.approx(exact - out["elbo"])
    # ELBO <= log p(x); the IWAE bounds and AIS approach it (Monte Carlo slack of 16 points)
    assert out["elbo"] <= exact + 0.05
    assert out["iwae_K100"] <= exact + 0.05 and out["ais_log_px"] <= exact + 0.05
    assert out["elbo"] < out["iwae_K100"] + 0.05


def test_a_graph_spec_with_latent_dim_is_refused_naming_the_fix(tmp_path):
    config = {**_graph_config("hierarchical"), "latent_dim": 2}
    with pytest.raises(ValueError, match=r"latent_dim=2 cannot apply to model='hierarchical'"
                                         r".*--unset latent_dim"):
        elbo_vs_is.trial(config, TrialContext(seed=0))
    with pytest.raises(ValueError, match=r"model='nope' is not one of vae, linear_lvm, a preset"):
        elbo_vs_is.trial({**config, "model": "nope"}, TrialContext(seed=0))


def test_a_one_latent_preset_takes_the_grid_networks():
    config = {**elbo_vs_is.OPTIONAL, **elbo_vs_is.STUDY.small_grid[0], "model": "beta_vae",
              "ais_steps": 0, "bdmc_points": 0, "steps": 5, "ks": [1, 10]}
    model, x = elbo_vs_is._model_and_data(config, seed=0)
    assert model.spec["latent_dim"] == config["latent_dim"]
    assert model.spec["decoder"]["hidden"] == [config["hidden"]]
    assert set(x.unique().tolist()) <= {0.0, 1.0}  # Bernoulli pixels: binarized digits


@pytest.mark.parametrize("changes, words", [
    ({"model": "lvm"}, r"guide.kind='local'.*needs an amortized q\(z\|x\)"),
    ({"model": "mog_prior", "binarize": "dynamic", "likelihood_grey": True}, None),
    ({"model": "beta_vae", "activation": "tanh", "drop_hidden": True},
     r"activation='tanh' needs hidden"),
])
def test_spec_models_the_study_cannot_score_as_configured_are_refused(changes, words, tmp_path):
    changes = dict(changes)
    config = {**elbo_vs_is.OPTIONAL, **elbo_vs_is.STUDY.small_grid[0], "steps": 1}
    if changes.pop("drop_hidden", False):
        config.pop("hidden")
    if changes.pop("likelihood_grey", False):  # a Normal-likelihood spec file
        path = tmp_path / "grey.toml"
        path.write_text('family = "vae"\nlatent_dim = 2\n[likelihood]\nkind = "normal"\n')
        changes["model"] = str(path)
        words = r"binarize='dynamic' does not apply.*'normal' takes grey levels"
    with pytest.raises(ValueError, match=words):
        elbo_vs_is._model_and_data({**config, **changes}, seed=0)

"""prior_vs_aggregate, small grid: C2ST accuracies in range, train-vs-test near chance."""

import numpy as np
import torch

import ppl_vae as pv

STUDY_NAME = "prior_vs_aggregate"


def test_c2st(small_run):
    _df, wide, out = small_run
    row = wide.iloc[0]
    for name in ("c2st_prior", "c2st_aggregate", "c2st_train_images"):
        assert 0 <= row[name] <= 1
    # the calibration row: real training images vs held-out images is close to chance
    assert abs(row["c2st_train_images"] - 0.5) < 0.1
    # a briefly trained VAE's samples are easy to spot: well above the calibration row
    assert row["c2st_prior"] > row["c2st_train_images"] + 0.1
    assert np.isclose(row["c2st_prior_minus_aggregate"], row["c2st_prior"] - row["c2st_aggregate"])
    assert (out / "c2st.png").stat().st_size > 0


def test_a_learned_prior_runs_beside_the_standard_normal(small_run):
    df, wide, _out = small_run
    assert set(df["prior"].fillna("standard_normal")) == {"standard_normal", "vamp"}
    for _, row in wide.iterrows():
        assert 0 <= row["c2st_prior"] <= 1 and np.isfinite(row["log_q_prior_draws_minus_own"])


def test_prior_draws_come_from_the_models_prior():
    from ppl_vae.studies import prior_vs_aggregate as study

    torch.manual_seed(0)
    standard = pv.build("vae", data_dim=6, latent_dim=2, decoder={"hidden": [4]},
                        guide={"hidden": [4]})
    z = study._prior_draws(standard, 4000, seed=0)
    assert z.shape == (4000, 2)  # Norm[0, I]: mean 0 and variance 1 within 4 s.e.
    assert z.mean(0).abs().max() < 4 / 4000**0.5 and (z.var(0) - 1).abs().max() < 0.09
    config = {"prior": "mixture", "components": 3, "latent_dim": 2}
    mixture = pv.build("vae", data_dim=6, decoder={"hidden": [4]}, guide={"hidden": [4]},
                       **study._latent(config))
    z = study._prior_draws(mixture, 4000, seed=0)
    assert torch.equal(z, study._prior_draws(mixture, 4000, seed=0))  # seeded
    # the draws' mean is the mixture prior's own mean (within 4 s.e. of 4000 draws)
    from pyro import poutine

    fn = poutine.trace(mixture.model).get_trace(torch.zeros(1, 6)).nodes["z"]["fn"]
    se = (fn.variance[0] / 4000) ** 0.5
    assert ((z.mean(0) - fn.mean[0]).abs() < 4 * se).all()


def test_paper_grid_is_mnist_at_full_size():
    study = pv.study.get_study(STUDY_NAME)
    default = study.grid[0]
    assert "dataset" not in default  # the default keeps its stored trials' keys: digits
    assert [c["latent_dim"] for c in study.paper_grid] == [c["latent_dim"] for c in study.grid]
    assert [c.get("prior") for c in study.paper_grid] == [c.get("prior") for c in study.grid]
    for config in study.paper_grid:
        assert config["dataset"] == "mnist"
        assert config["steps"] > default["steps"] and config["hidden"] > default["hidden"]
        assert config["trees"] >= default["trees"] and config["folds"] >= default["folds"]


def test_paper_configs_run_when_shrunk(tmp_path, shrunk_paper_run):
    df, wide = shrunk_paper_run(hidden=32, steps=20, trees=10, folds=3)
    assert set(df["dataset"]) == {"mnist"} and sorted(set(df["latent_dim"])) == [2, 16]
    for _, row in wide.iterrows():
        assert 0 <= row["c2st_prior"] <= 1 and 0 <= row["c2st_aggregate"] <= 1
        assert np.isfinite(row["log_q_prior_draws_minus_own"])
    assert (tmp_path / STUDY_NAME / "c2st.png").stat().st_size > 0

"""disentanglement, small grid: scores in range, the ELBO decomposition adds up."""

import numpy as np

from ppl_vae.study import TrialContext

STUDY_NAME = "disentanglement"


def test_scores_and_decomposition(small_run):
    df, wide, out = small_run
    assert set(zip(df["family"], df["beta"])) == {("vae", 1.0), ("vae", 4.0), ("tcvae", 4.0)}
    for _, row in wide.iterrows():
        for name in ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness"):
            assert 0 <= row[name] <= 1, name
        assert np.isclose(row["elbo"], row["reconstruction"] - row["kl"], atol=1e-3)
        parts = row["mutual_information"] + row["total_correlation"] + row["dimwise_kl"]
        assert abs(parts - row["kl"]) < 0.5 + 0.2 * row["kl"]  # Chen et al. Eq. 2, MC error
    assert (out / "scores.png").stat().st_size > 0


def test_streamed_grid_trial_with_chen_networks():
    """The default/paper path: the 64×64 grid streamed, Chen et al.'s MLP, both MIGs."""
    import ppl_vae.studies.disentanglement as study

    config = {**study.STUDY.grid[0], "steps": 2, "batch_size": 16, "n_eval": 300,
              "family": "tcvae", "beta": 4.0}
    assert config["data"] == "sprite_grid" and config["arch"] == "dsprites_mlp"
    result = study.trial(config, TrialContext(seed=0))
    from ppl_vae.data.sprites import FACTOR_NAMES

    # Chen et al.'s code scores every factor but the discrete shape
    assert tuple(FACTOR_NAMES[study.CHEN_FACTORS]) == ("scale", "orientation", "pos_x", "pos_y")
    for name in ("mig", "mig_no_shape", "dci_disentanglement"):
        assert 0 <= result[name] <= 1, name
    assert np.isclose(result["elbo"], result["reconstruction"] - result["kl"], atol=1e-2)
    assert result["reconstruction"] < 0 and result["kl"] >= 0


def test_sizes_grow_toward_the_paper():
    import ppl_vae.studies.disentanglement as study

    small, default, paper = (study.STUDY.configs(s) for s in ("small", "default", "paper"))
    assert {c["size"] for c in default} == {c["size"] for c in paper} == {64}
    assert all(c["data"] == "sprite_grid" for c in default + paper)
    assert min(c["steps"] * c["batch_size"] for c in paper) == 50 * 737_280 // 2048 * 2048
    assert max(c["steps"] for c in small) < min(c["steps"] for c in default)
    assert {c["arch"] for c in paper} == {"dsprites_mlp", "dsprites_conv"}
    betas = {(c["family"], c["beta"]) for c in paper}
    assert {("vae", 1.0), ("tcvae", 2.0), ("tcvae", 10.0), ("vae", 10.0)} <= betas

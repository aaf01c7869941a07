"""disentanglement, small grid: every family runs, every score is there and finite, the
ELBO decomposition adds up, the metrics' agreement table is a correlation matrix."""

import numpy as np
import pandas as pd
import pytest

import ppl_vae as pv
from ppl_vae.study import TrialContext

STUDY_NAME = "disentanglement"

#: disentanglement_lib's scores as the trial reports them (pv.metrics.score's names).
SCORES = ("mig", "mig_no_shape", "dci_disentanglement", "dci_completeness",
          "dci_informativeness", "sap", "modularity", "explicitness", "betavae_score",
          "factorvae_score")
FACTORS = ("shape", "scale", "orientation", "pos_x", "pos_y")


def test_every_family_runs_with_every_score(small_run):
    import ppl_vae.studies.disentanglement as study

    df, wide, out = small_run
    assert set(df["family"]) == set(study.FAMILIES) >= {
        "vae", "beta_vae", "tcvae", "dip_vae_i", "dip_vae_ii", "annealed_vae"}
    columns = [*SCORES, *(f"{m}[{f}]" for m in ("mig", "sap") for f in FACTORS)]
    assert set(columns) <= set(wide.columns), sorted(set(columns) - set(wide.columns))
    assert np.isfinite(wide[columns].to_numpy()).all()
    for name in SCORES:
        assert ((wide[name] >= 0) & (wide[name] <= 1)).all(), name
    assert np.allclose(wide["elbo"], wide["reconstruction"] - wide["kl"], atol=1e-3)
    parts = wide["mutual_information"] + wide["total_correlation"] + wide["dimwise_kl"]
    assert ((parts - wide["kl"]).abs() < 0.5 + 0.2 * wide["kl"]).all()  # Chen et al. Eq. 2


def test_agreement_table_figures_and_report(small_run):
    df, wide, out = small_run
    table = pd.read_csv(out / "agreement.csv")
    matrix = table.pivot(index="metric_a", columns="metric_b", values="rho")
    assert matrix.shape == (6, 6) and set(matrix.index) == set(matrix.columns)
    assert np.allclose(np.diag(matrix.loc[matrix.columns]), 1.0)
    off = matrix.to_numpy()[~np.eye(6, dtype=bool)]
    assert np.allclose(matrix, matrix.T, equal_nan=True) and (np.abs(off[~np.isnan(off)]) <= 1).all()
    for png in ("scores.png", "metric_vs_elbo.png", "metric_vs_tc.png", "agreement.png"):
        assert (out / png).stat().st_size > 0, png
    claims = pd.read_csv(out / "claims.csv")
    assert set(claims["reproduced"]) <= {"yes", "no", "untestable"} and len(claims) >= 5
    report = (out / "report.md").read_text()
    analysis = report.split("## Analysis")[1].split("## Failures")[0]
    assert "| metric | betavae_score |" in analysis and "Lin et al. 2020" in analysis
    assert "testable claims reproduce" in analysis
    assert "Beside the published figures" in report  # the MIG references of the families


def test_agreement_is_spearman_across_trials():
    from ppl_vae.studies import _disentanglement_analysis as analysis

    wide = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 1.0, 4.0, 3.0],
                         "c": [5.0, 5.0, 5.0, 5.0]})
    table = analysis.metric_agreement(wide, ["a", "b", "c"])
    matrix = analysis.agreement_matrix(table)
    assert matrix.loc["a", "b"] == pytest.approx(0.6)  # 1 - 6 * 4 / (4 * 15)
    assert np.isnan(matrix.loc["a", "c"]) and matrix.loc["c", "c"] == 1.0
    with pytest.raises(ValueError, match="names \\['d'\\], not columns"):
        analysis.metric_agreement(wide, ["a", "d"])


def test_streamed_grid_trial_with_chen_networks():
    """The default path: the 64×64 grid streamed, Chen et al.'s MLP, the scores on it."""
    import ppl_vae.studies.disentanglement as study

    config = {**study.STUDY.grid[0], "steps": 2, "batch_size": 16, "n_eval": 300,
              "score_train": 4, "score_batch": 4, "family": "tcvae", "beta": 4.0}
    assert config["data"] == "sprite_grid" and config["arch"] == "dsprites_mlp"
    result = study.trial(config, TrialContext(seed=0))
    from ppl_vae.data.sprites import FACTOR_NAMES

    # Chen et al.'s code scores every factor but the discrete shape
    assert tuple(FACTOR_NAMES[study.CHEN_FACTORS]) == ("scale", "orientation", "pos_x", "pos_y")
    for name in SCORES:
        assert 0 <= result[name] <= 1, name
    assert np.isclose(result["elbo"], result["reconstruction"] - result["kl"], atol=1e-2)
    assert result["reconstruction"] < 0 and result["kl"] >= 0


def test_hyper_parameters_reach_the_spec():
    import ppl_vae.studies.disentanglement as study

    base = {**study.STUDY.configs("small")[0], "steps": 30}
    dip = study.model_overrides({**base, "family": "dip_vae_i", "lambda_od": 5.0})
    assert dip["penalty"][0] | {"lambda_od": 5.0, "lambda_d": 50.0} == dip["penalty"][0]
    annealed = study.model_overrides({**base, "family": "annealed_vae", "c_max": 50.0})
    assert annealed["penalty"][0]["c_max"] == 50.0 and annealed["penalty"][0]["iterations"] == 10
    assert study.model_overrides({**base, "family": "tcvae", "beta": 6.0})["beta"] == 6.0
    conv = study.model_overrides({**base, "arch": "locatello_conv", "family": "vae"})
    assert conv["guide"]["kind"] == "conv" and conv["decoder"]["hidden"] == [256]


def test_a_family_whose_preset_lacks_the_field_is_refused(monkeypatch):
    import ppl_vae.studies.disentanglement as study

    wrong = study.Family("dip_vae_i", "gamma", (1.0,), (1.0,), 1.0, penalty={"gamma": 1.0})
    monkeypatch.setitem(study.FAMILIES, "factor_vae", wrong)
    config = {**study.STUDY.configs("small")[0], "family": "factor_vae", "gamma": 10.0}
    with pytest.raises(ValueError, match=r"without one \[\[penalty\]\] table holding \['gamma'\]"
                                         r".*update FAMILIES\['factor_vae'\]"):
        study.model_overrides(config)


def test_factor_vae_gamma_is_the_penalty_weight():
    import ppl_vae.studies.disentanglement as study

    assert "factor_vae" in {c["family"] for c in study.STUDY.configs("paper")}
    config = {**study.STUDY.configs("small")[0], "family": "factor_vae", "gamma": 30.0}
    overrides = study.model_overrides(config)
    (penalty,) = overrides["penalty"]
    assert penalty["kind"] == "factor_tc" and penalty["weight"] == 30.0
    model = pv.build("factor_vae", **{**overrides, "data_dim": 169})
    (part,) = model.auxiliary_parts
    assert part.weight == 30.0


def test_sizes_grow_toward_the_paper():
    import ppl_vae.studies.disentanglement as study

    small, default, paper = (study.STUDY.configs(s) for s in ("small", "default", "paper"))
    assert {c["size"] for c in default} == {c["size"] for c in paper} == {64}
    assert all(c["data"] == "sprite_grid" for c in default + paper)
    # disentanglement_lib: 300,000 steps of 64 at lr 1e-4, conv nets, 50 seeds
    assert {(c["steps"], c["batch_size"], c["lr"], c["arch"]) for c in paper} == {
        (300_000, 64, 1e-4, "locatello_conv")}
    assert study.STUDY.seeds("paper") == 50 and study.STUDY.seeds("default") == 3
    assert max(c["steps"] for c in small) < min(c["steps"] for c in default)
    for name, fam in study.FAMILIES.items():
        counts = [sum(c["family"] == name for c in grid) for grid in (small, default, paper)]
        assert counts == ([1, 1, 1] if fam.key is None else [1, len(fam.default), 6]), name
    values = {(c["family"], c.get("beta")) for c in paper}
    assert {("beta_vae", 16.0), ("tcvae", 10.0), ("vae", None)} <= values
    assert {c["lambda_od"] for c in paper if c["family"] == "dip_vae_ii"} == {
        1.0, 2.0, 5.0, 10.0, 20.0, 50.0}
    assert {c["c_max"] for c in paper if c["family"] == "annealed_vae"} == {
        5.0, 10.0, 25.0, 50.0, 75.0, 100.0}

"""``ppl-vae study``: the listing, a small run, and one-line errors for bad input."""

import subprocess
import sys

import pandas as pd
import pytest

from ppl_vae.cli import main
from ppl_vae.study import available_studies

SHIPPED = {"elbo_vs_is", "gmm_vs_em", "inference_gaps", "disentanglement", "rdvae_ood",
           "prior_vs_aggregate", "sbc"}


def test_list_names_every_study_with_its_question(capsys):
    assert main(["study", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert {line.split()[0] for line in lines} == SHIPPED == set(available_studies())
    assert all(line.rstrip().endswith("?") for line in lines)  # the question, first line


def test_small_run_writes_the_study_folder(tmp_path, capsys):
    code = main(["study", "prior_vs_aggregate", "--small", "--seeds", "1", "--workers", "1",
                 "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    out = tmp_path / "prior_vs_aggregate"
    configs = len(__import__("ppl_vae").study.get_study("prior_vs_aggregate").small_grid)
    assert f"{configs} trial(s) ok, 0 failed" in capsys.readouterr().out
    for name in ("trials.csv", "summary.csv", "paired.csv", "failures.csv", "report.md",
                 "c2st.png"):
        assert (out / name).exists(), name
    table = pd.read_csv(out / "trials.csv")
    assert {"c2st_prior", "c2st_aggregate"} <= set(table["metric"])
    assert len(list((out / "trials").glob("*.json"))) == configs
    # a second run resumes: nothing left to run, same table (flags that agree are fine)
    assert main(["study", "prior_vs_aggregate", "--small", "--size", "small", "--seeds", "1",
                 "--out", str(tmp_path), "--no-progress"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "trials.csv"), table)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["study", "no_such_study"], "not a known study"),
        (["study"], "no study given"),
        (["study", "gmm_vs_em", "--seeds", "0"], "--seeds=0"),
        (["study", "gmm_vs_em", "--workers", "0"], "--workers=0"),
        (["study", "gmm_vs_em", "--address", "h:6379"], "needs --executor ray"),
        (["study", "gmm_vs_em", "--size", "huge"], "--size=huge is invalid: pass one of small, default, paper"),
        (["study", "gmm_vs_em", "--small", "--paper"], "--small and --paper disagree"),
        (["study", "gmm_vs_em", "--paper", "--size", "small"], "--paper and --size small"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_module_runs_as_a_script():
    done = subprocess.run(
        [sys.executable, "-m", "ppl_vae.studies.gmm_vs_em", "--bogus"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 2 and "unrecognized arguments: --bogus" in done.stderr


def test_set_changes_the_grid(tmp_path, capsys):
    code = main(["study", "sbc", "--small", "--seeds", "1", "--workers", "1", "--no-progress",
                 "--out", str(tmp_path), "--set", "spread=0.5,2.0"])
    assert code == 0
    trials = pd.read_csv(tmp_path / "sbc" / "trials.csv")
    small = len(__import__("ppl_vae").study.get_study("sbc").small_grid)
    assert sorted(trials["spread"].unique()) == [0.5, 2.0]
    assert trials["config_id"].nunique() <= 2 * small  # repeats (exact arms) merged


@pytest.mark.parametrize("item, words", [
    ("bogus=1", "--set bogus=... is not a configuration key of study 'sbc'"),
    ("spread", "--set 'spread' is invalid: use KEY=V1,V2"),
    ("spread=1,1", "repeats a key or a value"),
])
def test_bad_set_is_one_line(tmp_path, capsys, item, words):
    assert main(["study", "sbc", "--small", "--out", str(tmp_path), "--set", item]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.iterdir())


def test_set_values_are_toml():
    from ppl_vae.cli.study import parse_grid_sets

    assert parse_grid_sets(["latent_dim=2,8", "hidden=[16],[32, 32]", "guide=exact,amortized"]) \
        == {"latent_dim": [2, 8], "hidden": [[16], [32, 32]], "guide": ["exact", "amortized"]}


def test_unset_drops_a_key_so_a_model_graph_runs(tmp_path, capsys):
    code = main(["study", "elbo_vs_is", "--small", "--seeds", "1", "--workers", "1",
                 "--no-progress", "--out", str(tmp_path), "--set", "model=hierarchical",
                 "--set", "ais_steps=0", "--set", "bdmc_points=0", "--unset", "latent_dim"])
    assert code == 0, capsys.readouterr().err
    trials = pd.read_csv(tmp_path / "elbo_vs_is" / "trials.csv")
    assert set(trials["model"]) == {"hierarchical"} and "latent_dim" not in trials
    assert trials["config_id"].nunique() == 1  # the vae and linear_lvm rows became one


@pytest.mark.parametrize("argv, words", [
    (["--unset", "bogus"], "--unset bogus is not a configuration key of study 'sbc'"),
    (["--set", "spread=1", "--unset", "spread"], "--set spread=... and --unset spread disagree"),
])
def test_bad_unset_is_one_line(tmp_path, capsys, argv, words):
    assert main(["study", "sbc", "--small", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.iterdir())

"""The study runner: tidy tables, executors, resume, failures, registry, outputs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import ppl_vae.study as ps
from ppl_vae.study.store import trial_key

CALLS_ENV = "PPL_VAE_TEST_STUDY_CALLS"


def normal_mean_trial(config, seed):
    """Sample mean of 50 draws from N(loc, 1): reference values are recomputed in tests."""
    x = np.random.default_rng(seed).normal(config["loc"], 1.0, size=50)
    # also draws from torch's *global* generator, which the runner seeds with `seed`
    return {"mean": float(x.mean()), "torch_draw": float(torch.randn(()))}


def recording_trial(config, seed):
    """Writes one file per call; raises KeyboardInterrupt (a crash) on the 4th call."""
    calls = Path(os.environ[CALLS_ENV])
    calls.mkdir(exist_ok=True)
    n_before = len(list(calls.iterdir()))
    (calls / f"{config['loc']}_{seed}_{n_before}").touch()
    if n_before == 3 and os.environ.get("PPL_VAE_TEST_INTERRUPT") == "1":
        raise KeyboardInterrupt
    return {"mean": float(config["loc"] + seed)}


def flaky_trial(config, seed):
    if config["loc"] == 1.0 and seed == 1:
        raise RuntimeError("diverged at step 7")
    return {"mean": float(config["loc"] * 10 + seed), "half": float(seed) / 2}


def bad_return_trial(config, seed):
    return [1.0, 2.0]


def _study(trial=normal_mean_trial, name="toy", **kwargs):
    kwargs.setdefault("grid", [{"loc": 0.0}, {"loc": 1.0}])
    doc = "Does the sample mean track loc?\n\nHypothesis: yes, within 1/sqrt(50)."
    return ps.Study(name=name, question=doc, trial=trial, **kwargs)


def _calls(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


def test_tidy_table_matches_hand_computed_values(tmp_path):
    df = ps.run(_study(), seeds=3, out=tmp_path, workers=1, progress=False)
    assert list(df.columns) == ["study", "config_id", "loc", "seed", "metric", "value"]
    assert len(df) == 2 * 3 * 2  # configs × seeds × metrics
    means = df[df.metric == "mean"]
    for row in means.itertuples():
        expected = np.random.default_rng(row.seed).normal(row.loc, 1.0, size=50).mean()
        assert row.value == pytest.approx(expected, abs=1e-12)
    draws = df[df.metric == "torch_draw"].set_index(["config_id", "seed"])["value"]
    for seed in range(3):
        torch.manual_seed(seed)
        assert draws[(0, seed)] == pytest.approx(float(torch.randn(())))
        assert draws[(1, seed)] == draws[(0, seed)]  # same seed, same draw: paired trials
    assert (df.study == "toy").all()
    saved = pd.read_csv(tmp_path / "toy" / "trials.csv")
    pd.testing.assert_frame_equal(saved, df, check_dtype=False)


def test_seed_lists_and_study_default_seeds(tmp_path):
    df = ps.run(_study(), seeds=[4, 9], out=tmp_path, workers=1, progress=False)
    assert sorted(df.seed.unique()) == [4, 9]
    df = ps.run(_study(default_seeds=2), out=tmp_path / "d", workers=1, progress=False)
    assert sorted(df.seed.unique()) == [0, 1]
    per_size = _study(default_seeds={"small": 1, "paper": 5}, paper_grid=[{"loc": 3.0}])
    assert (per_size.seeds("small"), per_size.seeds("default"), per_size.seeds("paper")) == (1, 3, 5)
    df = ps.run(per_size, size="small", out=tmp_path / "e", workers=1, progress=False)
    assert sorted(df.seed.unique()) == [0]
    with pytest.raises(ValueError, match="default_seeds key='huge' is not recognised"):
        _study(default_seeds={"huge": 2})
    with pytest.raises(ValueError, match=r"default_seeds\['paper'\]=0"):
        _study(default_seeds={"paper": 0})


def test_process_pool_gives_the_same_table_as_in_process(tmp_path):
    serial = ps.run(_study(), seeds=3, out=tmp_path / "a", workers=1, progress=False)
    pooled = ps.run(_study(), seeds=3, out=tmp_path / "b", workers=2, progress=False)
    pd.testing.assert_frame_equal(serial, pooled)
    # the runner must not leave the caller's global generator re-seeded
    torch.manual_seed(123)
    expected = torch.rand(())
    torch.manual_seed(123)
    ps.run(_study(), seeds=2, out=tmp_path / "c", workers=1, progress=False)
    assert torch.rand(()) == expected


def test_interrupted_study_resumes_with_only_missing_trials(tmp_path, monkeypatch):
    calls = tmp_path / "calls"
    monkeypatch.setenv(CALLS_ENV, str(calls))
    monkeypatch.setenv("PPL_VAE_TEST_INTERRUPT", "1")
    study = _study(recording_trial)
    with pytest.raises(KeyboardInterrupt):
        ps.run(study, seeds=3, out=tmp_path, workers=1, progress=False)
    assert len(_calls(calls)) == 4  # three finished, the fourth crashed mid-trial
    stored = list((tmp_path / "toy" / "trials").glob("*.json"))
    assert len(stored) == 3
    assert not list((tmp_path / "toy" / "trials").glob(".*tmp"))  # no half-written files

    monkeypatch.setenv("PPL_VAE_TEST_INTERRUPT", "0")
    df = ps.run(study, seeds=3, out=tmp_path, workers=1, progress=False)
    # 4 calls before + the 3 trials never stored (the crashed one included)
    assert len(_calls(calls)) == 7
    assert len(df) == 6
    assert df.set_index(["loc", "seed"])["value"].to_dict() == {
        (loc, s): loc + s for loc in (0.0, 1.0) for s in range(3)
    }
    ps.run(study, seeds=3, out=tmp_path, workers=1, progress=False)
    assert len(_calls(calls)) == 7  # everything stored: nothing runs again
    ps.run(study, seeds=4, out=tmp_path, workers=1, progress=False)
    assert len(_calls(calls)) == 9  # one more seed: only its two trials run


def test_failing_trial_is_recorded_and_others_complete(tmp_path, monkeypatch):
    df = ps.run(_study(flaky_trial), seeds=3, out=tmp_path, workers=2, progress=False)
    assert len(df) == (2 * 3 - 1) * 2
    assert not ((df["loc"] == 1.0) & (df.seed == 1)).any()
    key = trial_key("toy", {"loc": 1.0}, 1)
    record = json.loads((tmp_path / "toy" / "trials" / f"{key}.json").read_text())
    assert record["status"] == "error"
    assert record["error"] == "RuntimeError: diverged at step 7"
    assert "flaky_trial" in record["traceback"]
    failures = pd.read_csv(tmp_path / "toy" / "failures.csv")
    assert failures[["config_id", "seed", "error"]].values.tolist() == [
        [1, 1, "RuntimeError: diverged at step 7"]
    ]
    report = (tmp_path / "toy" / "report.md").read_text()
    assert "diverged at step 7" in report

    # not retried on resume, unless asked
    def must_not_run(config, seed):
        raise AssertionError("resumed run re-ran a stored trial")

    again = ps.run(_study(must_not_run), seeds=3, out=tmp_path, workers=1, progress=False)
    pd.testing.assert_frame_equal(again, df)
    fixed = ps.run(
        _study(normal_mean_trial),
        seeds=3,
        out=tmp_path,
        workers=1,
        progress=False,
        retry_failed=True,
    )
    assert ((fixed["loc"] == 1.0) & (fixed.seed == 1)).any()
    assert pd.read_csv(tmp_path / "toy" / "failures.csv").empty


def test_trial_with_wrong_return_type_is_a_failure(tmp_path):
    df = ps.run(_study(bad_return_trial), seeds=1, out=tmp_path, workers=1, progress=False)
    assert df.empty and list(df.columns)[-2:] == ["metric", "value"]
    failures = pd.read_csv(tmp_path / "toy" / "failures.csv")
    assert len(failures) == 2
    assert failures.error.str.contains("dict of metric name -> float").all()
    assert "No successful trials" in (tmp_path / "toy" / "report.md").read_text()


def test_report_summary_and_figures(tmp_path):
    def analyze(df, out_dir):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure()
        FigureCanvasAgg(fig)
        fig.subplots().hist(df.value)
        fig.savefig(out_dir / "extra_hist.png")
        return "The hook's own **finding**."

    study = _study(flaky_trial, name="report_toy", analyze=analyze)
    ps.run(study, seeds=3, out=tmp_path, workers=1, progress=False)
    out = tmp_path / "report_toy"
    for name in ("trials.csv", "summary.csv", "paired.csv", "failures.csv", "report.md"):
        assert (out / name).is_file(), name
    for png in ("summary.png", "extra_hist.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "# Study `report_toy`" in report
    assert "Does the sample mean track loc?" in report
    assert "yes, within 1/sqrt(50)." in report.split("## Hypothesis")[1]
    assert "## Analysis\n\nThe hook's own **finding**." in report
    for text in ("| mean |", "| half |", "![summary](summary.png)", "(extra_hist.png)"):
        assert text in report, text
    summary = pd.read_csv(out / "summary.csv")
    row = summary[(summary.metric == "mean") & (summary.config_id == 0)].iloc[0]
    assert row["mean"] == pytest.approx(1.0) and row["n_seeds"] == 3  # seeds 0, 1, 2
    assert row["se"] == pytest.approx(1.0 / np.sqrt(3))  # sd of (0, 1, 2) is 1


def test_small_grid(tmp_path):
    study = _study(grid=[{"loc": 0.0}, {"loc": 1.0}, {"loc": 2.0}], small_grid=[{"loc": 2.0}])
    df = ps.run(study, seeds=1, out=tmp_path, small=True, workers=1, progress=False)
    assert df["loc"].unique().tolist() == [2.0]
    df = ps.run(_study(), seeds=1, out=tmp_path / "b", small=True, workers=1, progress=False)
    assert df["loc"].unique().tolist() == [0.0]


def test_registry_finds_study_modules(tmp_path, monkeypatch):
    import ppl_vae.studies

    (tmp_path / "toy_registered.py").write_text(
        "from ppl_vae.study import Study\n"
        "def trial(config, seed):\n    return {'twice': 2.0 * config['a'] + seed}\n"
        "STUDY = Study(name='toy_registered', trial=trial, grid=[{'a': 1}, {'a': 2}])\n"
    )
    (tmp_path / "no_study.py").write_text("X = 1\n")
    monkeypatch.setattr(ppl_vae.studies, "__path__", [*ppl_vae.studies.__path__, str(tmp_path)])
    for name in ("toy_registered", "no_study"):
        monkeypatch.delitem(sys.modules, f"ppl_vae.studies.{name}", raising=False)
    assert {"toy_registered", "no_study"} <= set(ps.available_studies())
    df = ps.run("toy_registered", seeds=2, out=tmp_path / "out", workers=1, progress=False)
    assert df.value.tolist() == [2.0, 3.0, 4.0, 5.0]
    with pytest.raises(ValueError, match="available studies: .*toy_registered"):
        ps.run("elbo_vs_nothing", out=tmp_path)
    with pytest.raises(ValueError, match="defines no STUDY"):
        ps.get_study("no_study")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"executor": "dask"}, "executor='dask' is not recognised; valid values: local, ray"),
        ({"seeds": 0}, "seeds=0 is invalid"),
        ({"seeds": [1, 1]}, "distinct"),
        ({"workers": 0}, "workers=0 is invalid"),
        ({"address": "ray://h:10001"}, "only used with executor='ray'"),
    ],
)
def test_run_rejects_bad_options(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ps.run(_study(), out=tmp_path, progress=False, **kwargs)


def test_study_rejects_bad_declarations():
    with pytest.raises(ValueError, match="reserved key"):
        _study(grid=[{"seed": 1}])
    with pytest.raises(ValueError, match="repeats grid"):
        _study(grid=[{"loc": 1.0}, {"loc": 1.0}])
    with pytest.raises(ValueError, match="JSON"):
        _study(grid=[{"loc": object()}])
    with pytest.raises(ValueError, match="name="):
        _study(name="a/b")


def test_process_pool_needs_a_picklable_trial(tmp_path):
    study = _study(lambda config, seed: {"x": 1.0})
    with pytest.raises(ValueError, match="module-level function"):
        ps.run(study, seeds=2, out=tmp_path, workers=2, progress=False)
    assert len(ps.run(study, seeds=2, out=tmp_path, workers=1, progress=False)) == 4


def test_numpy_seeds_and_config_values_count_like_python_ones(tmp_path):
    def trial(config, seed):
        assert type(config["n"]) is int and config["ks"] == [1, 2]
        return {"x": float(seed)}

    grid = [{"n": np.int64(3), "ks": np.array([1, 2])}]
    study = ps.Study(name="np", question="Q", trial=trial, grid=grid)
    a = ps.run(study, seeds=np.arange(2), out=tmp_path, progress=False, workers=1)
    b = ps.run(ps.Study(name="np", question="Q", trial=trial, grid=[{"n": 3, "ks": [1, 2]}]),
            seeds=np.int64(2), out=tmp_path, progress=False, workers=1)
    assert sorted(a.seed) == sorted(b.seed) == [0, 1]
    assert a.config_id.tolist() == b.config_id.tolist()


def test_progress_bar_writes_nothing_without_a_tty(tmp_path, capsys):
    study = ps.Study(name="bar", question="Q", trial=lambda c, s: {"x": 1.0}, grid=[{"a": 1}])
    ps.run(study, seeds=3, out=tmp_path, workers=1)  # progress=True; pytest's stderr is no TTY
    assert "\r" not in capsys.readouterr().err

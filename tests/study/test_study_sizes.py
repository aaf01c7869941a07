"""Study sizes (small / default / paper), published references and detail metrics."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import ppl_vae.study as ps
from tests.study.test_study_runner import flaky_trial, normal_mean_trial


def _study(**kwargs):
    kwargs.setdefault("grid", [{"loc": 0.0}, {"loc": 1.0}])
    return ps.Study(name=kwargs.pop("name", "sized"), trial=kwargs.pop("trial", normal_mean_trial),
                    question="Q?", **kwargs)


def test_each_size_runs_its_own_grid_and_the_report_says_which(tmp_path):
    study = _study(small_grid=[{"loc": 5.0}], paper_grid=[{"loc": 9.0}, {"loc": 7.0}],
                   protocol="The paper runs loc 9 and 7; the default size only 0 and 1.")
    assert study.sizes == ("small", "default", "paper")
    for size, locs in (("small", [5.0]), ("default", [0.0, 1.0]), ("paper", [9.0, 7.0])):
        df = ps.run(study, seeds=1, out=tmp_path / size, size=size, workers=1, progress=False)
        assert df["loc"].unique().tolist() == locs
        report = (tmp_path / size / "sized" / "report.md").read_text()
        assert f"- size: {size}" in report
        assert "## Protocol and sizes" in report and "only 0 and 1" in report
    assert study.configs(small=True) == study.configs("small")


def test_paper_size_is_refused_without_a_paper_grid(tmp_path):
    study = _study()
    assert study.sizes == ("small", "default")
    with pytest.raises(ValueError, match="size='paper' is not available for study 'sized'"):
        ps.run(study, out=tmp_path, size="paper", progress=False)
    with pytest.raises(ValueError, match="size='huge' is not recognised"):
        ps.run(study, out=tmp_path, size="huge", progress=False)
    with pytest.raises(ValueError, match="small=True and size='paper' disagree"):
        _study(paper_grid=[{"loc": 2.0}]).configs("paper", small=True)
    assert not (tmp_path / "sized").exists()  # refused before anything is written


def test_references_are_printed_beside_our_mean_and_standard_error(tmp_path):
    refs = [
        ps.Reference(metric="mean", value=10.0, where={"loc": 1}, source="Paper (2020), Tab. 1",
                     note="read from a table"),
        ps.Reference(metric="mean", value=0.0, where={"loc": 3.0}, source="Paper (2020), Tab. 2"),
    ]
    study = _study(trial=flaky_trial, references=refs, grid=[{"loc": 0.0}, {"loc": 1.0}])
    ps.run(study, seeds=[0, 2, 4], out=tmp_path, workers=1, progress=False)
    table = pd.read_csv(tmp_path / "sized" / "references.csv")
    hit = table.iloc[0]
    # flaky_trial: mean = loc * 10 + seed -> seeds 0, 2, 4 give 10, 12, 14 at loc 1
    assert hit["config_id"] == "1" and hit["ours"] == pytest.approx(12.0)
    assert hit["se"] == pytest.approx(2.0 / math.sqrt(3))
    assert hit["difference"] == pytest.approx(2.0)
    assert hit["z"] == pytest.approx(2.0 / (2.0 / math.sqrt(3)))
    miss = table.iloc[1]
    assert miss["config_id"] == "not run" and math.isnan(miss["ours"]) and miss["n_seeds"] == 0
    report = (tmp_path / "sized" / "report.md").read_text()
    assert "## Beside the published figures" in report and "Paper (2020), Tab. 1" in report


def test_detail_metrics_stay_on_disk_but_out_of_the_summary(tmp_path):
    study = _study(trial=flaky_trial, detail_metrics=["half"])
    ps.run(study, seeds=2, out=tmp_path, workers=1, progress=False)
    out = tmp_path / "sized"
    assert "half" in set(pd.read_csv(out / "summary.csv")["metric"])
    report = (out / "report.md").read_text()
    results = report.split("## Results")[1].split("## Failures")[0]
    assert "| mean |" in results and "| half |" not in results
    assert "`half`" in report  # the note says where they went


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"references": [{"metric": "m", "value": 1.0}]}, r"references\[0\]="),
        ({"detail_metrics": "rank_"}, "detail_metrics='rank_' is invalid"),
        ({"paper_grid": [{"loc": 1.0}, {"loc": 1.0}]}, "repeats"),
        ({"references": [ps.Reference(metric="m", value=1.0, source="x", where={"lco": 1})]},
         r"references\[0\]\.where names \['lco'\], which no configuration has"),
    ],
)
def test_bad_size_declarations_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _study(**kwargs)


def test_reference_needs_a_source_and_a_number():
    with pytest.raises(ValueError, match="source="):
        ps.Reference(metric="m", value=1.0, source="")
    with pytest.raises(ValueError, match="value="):
        ps.Reference(metric="m", value="high", source="x")


def test_a_new_version_reruns_trials_and_the_old_records_stay(tmp_path, monkeypatch):
    import os

    from tests.study.test_study_runner import CALLS_ENV, recording_trial

    monkeypatch.setenv(CALLS_ENV, str(tmp_path / "calls"))
    monkeypatch.delenv("PPL_VAE_TEST_INTERRUPT", raising=False)

    def calls():
        return len(os.listdir(tmp_path / "calls"))

    plain = _study(trial=recording_trial, grid=[{"loc": 1.0}])
    ps.run(plain, seeds=2, out=tmp_path, workers=1, progress=False)
    assert calls() == 2
    ps.run(plain, seeds=2, out=tmp_path, workers=1, progress=False)  # reused
    assert calls() == 2
    v2 = _study(trial=recording_trial, grid=[{"loc": 1.0}], version=2)
    ps.run(v2, seeds=2, out=tmp_path, workers=1, progress=False)  # new keys: run again
    assert calls() == 4
    ps.run(plain, seeds=2, out=tmp_path, workers=1, progress=False)  # the old records stay
    assert calls() == 4 and len(list((tmp_path / "sized" / "trials").glob("*.json"))) == 4
    with pytest.raises(ValueError, match="version=True is invalid"):
        _study(version=True)

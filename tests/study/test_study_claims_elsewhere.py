"""A trial claimed by a run on another host (a shared folder) is not run silently missing:
the report, the returned table and a warning name it; ``retry_claimed=True`` takes it over."""

from __future__ import annotations

import json
import socket

import pandas as pd
import pytest

import ppl_vae.study as ps
from ppl_vae.cli import main
from ppl_vae.study.store import TrialStore, trial_key
from tests.study.test_study_sharing import _executions, _study

OTHER = "node-that-is-not-" + socket.gethostname()


def _claimed_by_other_host(tmp_path, seed: int = 1):
    log = tmp_path / "log.txt"
    study = _study(log)
    store = TrialStore(tmp_path / "shared" / "trials")
    store.root.mkdir(parents=True)
    key = trial_key("shared", study.grid[0], seed)
    store.claim_path(key).write_text(json.dumps({"host": OTHER, "pid": 4242, "start": "1"}))
    return study, log, key


def test_claimed_trial_is_listed_in_report_table_and_warning(tmp_path):
    study, log, key = _claimed_by_other_host(tmp_path)
    with pytest.warns(UserWarning) as caught:
        df = ps.run(study, seeds=3, out=tmp_path, workers=1, progress=False)
    assert sorted(df.seed.tolist()) == [0, 2] and len(_executions(log)) == 2
    left = df.attrs["claimed_elsewhere"]
    assert left[["config_id", "seed", "key", "host", "pid"]].to_dict("records") == [
        {"config_id": 0, "seed": 1, "key": key, "host": OTHER, "pid": 4242}]
    pd.Timestamp(left["since"].iloc[0])  # a readable time
    fix = "if that run is dead, run again with retry_claimed=True (ppl-vae study --retry-claimed)"
    expected = f"1 trial(s) claimed by a run on another host ({OTHER}) were not run here; {fix}"
    assert [str(w.message) for w in caught] == [f"study 'shared': {expected}"]
    report = (tmp_path / "shared" / "report.md").read_text()
    assert f"- trials: 3 (0 reused from earlier runs, 2 run now, {expected})" in report
    assert (tmp_path / "shared" / "trials" / f"{key}.claim").exists()  # left to its owner


def test_retry_claimed_takes_the_trial_over(tmp_path):
    study, log, _ = _claimed_by_other_host(tmp_path)
    df = ps.run(study, seeds=3, out=tmp_path, workers=1, progress=False, retry_claimed=True)
    assert sorted(df.seed.tolist()) == [0, 1, 2] and len(_executions(log)) == 3
    assert df.attrs["claimed_elsewhere"].empty
    report = (tmp_path / "shared" / "report.md").read_text()
    assert "- trials: 3 (0 reused from earlier runs, 3 run now)" in report
    assert not list((tmp_path / "shared" / "trials").glob("*.claim"))


def test_retry_claimed_is_checked(tmp_path):
    study, _, _ = _claimed_by_other_host(tmp_path)
    with pytest.raises(ValueError, match=r"^retry_claimed='no' is invalid: pass True or False$"):
        ps.run(study, seeds=1, out=tmp_path, workers=1, progress=False, retry_claimed="no")


def test_cli_says_how_many_are_claimed_and_retries_on_request(tmp_path, monkeypatch, capsys):
    study, log, _ = _claimed_by_other_host(tmp_path)
    monkeypatch.setattr(ps, "get_study", lambda name: study)
    with pytest.warns(UserWarning, match="retry_claimed=True"):
        assert main(["study", "shared", "--seeds", "2", "--out", str(tmp_path), "--no-progress"]) == 0
    assert "1 trial(s) ok, 0 failed, 1 claimed by another host's run (see report.md)" in capsys.readouterr().out
    assert main(["study", "shared", "--seeds", "2", "--out", str(tmp_path), "--no-progress",
                 "--retry-claimed"]) == 0
    assert "2 trial(s) ok, 0 failed; wrote" in capsys.readouterr().out
    assert len(_executions(log)) == 2

"""No leftovers, no duplicated work: killed drivers take their workers with them,
two runs on one folder share the trials, damaged records are rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import ppl_vae.study as ps
from ppl_vae.study.store import TrialStore, _owner, trial_key

ROOT = Path(__file__).resolve().parents[2]
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and prctl")


def logging_trial(config, seed):
    """Appends ``<pid> <seed>`` to the log file, sleeps, returns the seed."""
    with open(config["log"], "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()} {seed}\n")
    time.sleep(config.get("sleep", 0.0))
    return {"seed": float(seed)}


def _study(log: Path, sleep: float = 0.0, name: str = "shared") -> ps.Study:
    return ps.Study(name=name, question="Q", trial=logging_trial,
                    grid=[{"log": str(log), "sleep": sleep}])


def _driver(out: Path, log: Path, *, seeds: int, sleep: float, workers: int) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import ppl_vae.study as ps
        from tests.study.test_study_sharing import _study
        df = ps.run(_study({str(log)!r}, {sleep!r}), seeds={seeds}, out={str(out)!r},
                    workers={workers}, progress=False)
        print(sorted(df.seed.tolist()))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _executions(log: Path) -> list[tuple[int, int]]:
    lines = log.read_text().split("\n") if log.exists() else []
    return [tuple(map(int, line.split())) for line in lines if line.strip()]


def test_two_concurrent_runs_share_the_trials(tmp_path):
    log = tmp_path / "log.txt"
    runs = [_driver(tmp_path, log, seeds=6, sleep=0.5, workers=1) for _ in range(2)]
    outs = [run.communicate(timeout=120) for run in runs]
    for run, (stdout, stderr) in zip(runs, outs):
        assert run.returncode == 0, stderr
        assert stdout.strip().endswith("[0, 1, 2, 3, 4, 5]")  # each sees every trial
    done = _executions(log)
    assert sorted(seed for _, seed in done) == list(range(6))  # each trial ran once
    assert len({pid for pid, _ in done}) == 2  # and both runs did some of the work
    assert not list((tmp_path / "shared" / "trials").glob("*.claim"))


def test_a_trial_claimed_by_a_dead_run_is_taken_over(tmp_path):
    log = tmp_path / "log.txt"
    study = _study(log)
    store = TrialStore(tmp_path / "shared" / "trials")
    store.root.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    key = trial_key("shared", study.grid[0], 0)
    store.claim_path(key).write_text(json.dumps(_owner(dead.pid)))
    df = ps.run(study, seeds=1, out=tmp_path, workers=1, progress=False)
    assert df.seed.tolist() == [0] and len(_executions(log)) == 1


def test_a_trial_claimed_by_a_live_run_waits_until_the_claimant_dies(tmp_path):
    log = tmp_path / "log.txt"
    study = _study(log)
    store = TrialStore(tmp_path / "shared" / "trials")
    store.root.mkdir(parents=True)
    claimant = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        claimed = trial_key("shared", study.grid[0], 0)
        store.claim_path(claimed).write_text(json.dumps(_owner(claimant.pid)))
        result = {}
        thread = threading.Thread(target=lambda: result.update(
            df=ps.run(study, seeds=2, out=tmp_path, workers=1, progress=False)))
        thread.start()
        time.sleep(1.5)
        assert [seed for _, seed in _executions(log)] == [1]  # the free trial only
        assert thread.is_alive()  # waiting for the claimed one
    finally:
        claimant.kill()
        claimant.wait()
    thread.join(timeout=30)
    assert sorted(result["df"].seed.tolist()) == [0, 1]
    assert sorted(seed for _, seed in _executions(log)) == [0, 1]


def _children() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return parents


def _descendants(pid: int) -> set[int]:
    parents, found, todo = _children(), set(), [pid]
    while todo:
        current = todo.pop()
        kids = {child for child, parent in parents.items() if parent == current}
        found |= kids
        todo += list(kids)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@linux
def test_killed_driver_leaves_no_processes(tmp_path):
    log = tmp_path / "log.txt"
    driver = _driver(tmp_path, log, seeds=4, sleep=60.0, workers=2)
    spawned: set[int] = set()
    try:
        deadline = time.time() + 60
        while len(_executions(log)) < 2 and time.time() < deadline:
            time.sleep(0.2)
        assert len(_executions(log)) == 2, driver.stderr.read() if driver.poll() else "timeout"
        spawned = _descendants(driver.pid)  # fork server, resource tracker, workers
        assert {pid for pid, _ in _executions(log)} <= spawned
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.time() + 15
        while any(_alive(p) for p in spawned) and time.time() < deadline:
            time.sleep(0.2)
        assert not [p for p in spawned if _alive(p)]
    finally:
        driver.kill()
        for pid in spawned | _descendants(driver.pid) | {p for p, _ in _executions(log)}:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.mark.parametrize(
    "damage, words",
    [
        ({"results": "garbage"}, "'results' is str"),
        ({"results": {"seed": "high"}}, "metric 'seed' has the non-numeric value 'high'"),
        ({"status": "weird"}, "status 'weird'"),
        ({"seed": -1}, "seed -1"),
    ],
)
def test_damaged_record_is_named_and_rerun(tmp_path, damage, words):
    log = tmp_path / "log.txt"
    study = _study(log)
    ps.run(study, seeds=1, out=tmp_path, workers=1, progress=False)
    (file,) = (tmp_path / "shared" / "trials").glob("*.json")
    record = json.loads(file.read_text())
    record.update(damage)
    file.write_text(json.dumps(record))
    with pytest.warns(UserWarning, match=f"{file.name}.*{words}.*will run again"):
        df = ps.run(study, seeds=1, out=tmp_path, workers=1, progress=False)
    assert df.seed.tolist() == [0] and len(_executions(log)) == 2
    pd.testing.assert_frame_equal(df, pd.read_csv(tmp_path / "shared" / "trials.csv"),
                                  check_dtype=False)

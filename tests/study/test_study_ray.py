"""The Ray executor on a local two-CPU Ray instance gives the same table as local runs."""

from __future__ import annotations

import os
import shutil
import sys

import pandas as pd
import pytest

import ppl_vae.study as ps
from tests.study.test_study_runner import _study, flaky_trial, normal_mean_trial

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.mark.ray
def test_ray_executor_matches_local(tmp_path, local_ray):
    local = ps.run(_study(), seeds=3, out=tmp_path / "local", workers=1, progress=False)
    on_ray = ps.run(_study(), seeds=3, out=tmp_path / "ray", executor="ray", progress=False)
    pd.testing.assert_frame_equal(local, on_ray)
    assert ray.is_initialized()  # the runner leaves an instance it did not start alone


@pytest.mark.ray
def test_ray_executor_records_failures(tmp_path, local_ray):
    df = ps.run(_study(flaky_trial), seeds=2, out=tmp_path, executor="ray", progress=False)
    assert len(df) == (2 * 2 - 1) * 2
    failures = pd.read_csv(tmp_path / "toy" / "failures.csv")
    assert failures["error"].tolist() == ["RuntimeError: diverged at step 7"]
    # resume: nothing left to run, so Ray is not even needed
    again = ps.run(_study(normal_mean_trial), seeds=2, out=tmp_path, executor="ray", progress=False)
    pd.testing.assert_frame_equal(again, df)


def _refuse_to_load():
    raise ImportError("module missing on this worker")


class UnloadableTrial:
    """Pickles fine in the driver but cannot be unpickled: a worker-side import error."""

    def __call__(self, config, seed):
        return {"x": 1.0}

    def __reduce__(self):
        return (_refuse_to_load, ())


@pytest.mark.ray
def test_ray_infrastructure_error_is_raised_not_recorded(tmp_path, local_ray):
    with pytest.raises(RuntimeError, match="failed outside the trial.*module missing"):
        ps.run(_study(UnloadableTrial()), seeds=1, out=tmp_path, executor="ray", progress=False)
    assert not list((tmp_path / "toy" / "trials").glob("*.json"))  # resume will retry them


def device_ray_trial(config, seed):
    """The device the runner handed this Ray task, and the GPUs Ray gave it."""
    import ray

    device = ps.trial_device()
    return {"cpu": float(device == "cpu"), "gpus": float(len(ray.get_gpu_ids()))}


@pytest.mark.ray
def test_ray_trial_gets_its_device(tmp_path, local_ray):
    # "auto" on a cluster without GPUs: the CPU, and no GPU requested
    df = ps.run(_study(device_ray_trial), seeds=1, out=tmp_path, executor="ray",
                progress=False, device="auto")
    assert dict(zip(df.metric, df.value)) == {"cpu": 1.0, "gpus": 0.0}


@pytest.mark.ray
def test_ray_cuda_without_gpus_is_a_value_error_before_any_trial(tmp_path, local_ray):
    if ray.cluster_resources().get("GPU", 0) > 0:
        pytest.skip("the cluster has GPUs")
    with pytest.raises(ValueError, match="the Ray cluster has no GPUs"):
        ps.run(_study(device_ray_trial), seeds=1, out=tmp_path, executor="ray",
               progress=False, device="cuda")
    assert not list(tmp_path.rglob("*.json")) and not list(tmp_path.rglob("*.claim"))


def test_start_local_ray_checks_num_cpus_before_starting():
    with pytest.raises(ValueError, match="num_cpus=0 is invalid: pass a number of CPUs >= 1"):
        ps.start_local_ray(num_cpus=0)


def listener_trial(config, seed):
    """Listening TCP sockets of the driver's process tree (the local Ray instance)."""
    import subprocess
    from pathlib import Path

    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, todo = set(), [config["driver"]]
    while todo:
        current = todo.pop()
        kids = {c for c, p in parents.items() if p == current} - tree
        tree |= kids
        todo += list(kids)
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    ours = [line.split() for line in out.splitlines()
            if any(f"pid={pid}," in line for pid in tree)]
    loopback = ("127.0.0.1:", "[::1]:", "[::ffff:127.0.0.1]:")
    return {"listeners": float(len(ours)),
            "non_loopback": float(sum(not f[3].startswith(loopback) for f in ours))}


@pytest.mark.ray
@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("ss") is None,
                    reason="reads /proc and ss")
def test_local_ray_listens_on_loopback_only(tmp_path):
    if ray.is_initialized():
        ray.shutdown()
    study = ps.Study(name="ports", question="Q", trial=listener_trial,
                     grid=[{"driver": os.getpid()}])
    df = ps.run(study, seeds=1, out=tmp_path, executor="ray", progress=False)
    values = dict(zip(df.metric, df.value))
    assert values["listeners"] > 0 and values["non_loopback"] == 0
    assert not ray.is_initialized()


"""``device=`` for studies: checked before any trial runs, handed to every trial (in
process, on the pool, on Ray), and turned into the right Ray resource request."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
import torch

import ppl_vae as pv
import ppl_vae.study as ps
from ppl_vae.cli import main
from ppl_vae.study import executors as ex
from ppl_vae.study import ray_executor as rx
from tests.study.test_study_runner import _study

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def device_trial(config, seed):
    """Which device the runner handed this trial (one-hot, metrics must be floats)."""
    device = ps.trial_device()
    return {"none": float(device is None), "cpu": float(device == "cpu"),
            "cuda": float(device == "cuda")}


def _seen(df: pd.DataFrame) -> set[str]:
    return set(df.loc[df["value"] == 1.0, "metric"])


def _records(folder) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


# -- validation, before any trial runs -----------------------------------------------------
def test_check_device_local():
    assert ex.check_device(None, executor="local") is None
    assert ex.check_device("cpu", executor="local") == "cpu"
    assert ex.check_device(torch.device("cpu"), executor="local") == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert ex.check_device("auto", executor="local") == expected
    with pytest.raises(ValueError, match=r"device='tpu' is not a device: pass 'auto'"):
        ex.check_device("tpu", executor="local")


@no_cuda
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_a_value_error_before_any_trial(tmp_path, device):
    with pytest.raises(ValueError, match="no CUDA device is available here"):
        ps.run(_study(device_trial), seeds=2, out=tmp_path, workers=1, progress=False,
               device=device)
    assert not list(tmp_path.rglob("*.json")) and not list(tmp_path.rglob("*.claim"))


def test_check_device_ray_checks_names_only():
    # the GPUs are the cluster's: the driver may have none, so only the name is checked
    assert ex.check_device("cuda", executor="ray") == "cuda"
    assert ex.check_device("cuda:0", executor="ray") == "cuda"
    assert ex.check_device("auto", executor="ray") == "auto"
    assert ex.check_device("cpu", executor="ray") == "cpu"
    for bad in ("cuda:1", "mps", 3):
        with pytest.raises(ValueError, match="not usable with executor='ray'.*cuda:0"):
            ex.check_device(bad, executor="ray")


def test_gpus_per_trial_is_checked():
    assert ex.check_gpus_per_trial(None) is None
    assert ex.check_gpus_per_trial(0.25) == 0.25
    assert ex.check_gpus_per_trial(2) == 2.0
    for bad in (0, -1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="gpus_per_trial=.* is invalid"):
            ex.check_gpus_per_trial(bad)


@pytest.mark.parametrize("options", [{"executor": "local", "device": "cpu"},
                                     {"executor": "ray", "device": "cpu"},
                                     {"executor": "ray", "device": None}])
def test_gpus_per_trial_only_for_ray_on_cuda(tmp_path, options):
    with pytest.raises(ValueError, match="gpus_per_trial=0.5 is only used by Ray trials on CUDA"):
        ps.run(_study(device_trial), seeds=1, out=tmp_path, progress=False,
               gpus_per_trial=0.5, **options)


# -- Ray resources, without a GPU ----------------------------------------------------------
def test_ray_device_settles_against_the_cluster():
    assert rx.ray_device(None, cluster_gpus=4) is None  # None keeps the CPU, as before
    assert rx.ray_device("cpu", cluster_gpus=4) == "cpu"
    assert rx.ray_device("auto", cluster_gpus=0) == "cpu"
    assert rx.ray_device("auto", cluster_gpus=2) == "cuda"
    assert rx.ray_device("cuda", cluster_gpus=1) == "cuda"
    with pytest.raises(ValueError, match="the Ray cluster has no GPUs"):
        rx.ray_device("cuda", cluster_gpus=0)


def test_ray_task_options():
    cpu_only = {"num_cpus": 1, "max_retries": 1}
    assert rx.ray_task_options(None) == cpu_only
    assert rx.ray_task_options("cpu", gpus_per_trial=0.5) == cpu_only  # no GPU it won't use
    assert rx.ray_task_options("cuda") == {**cpu_only, "num_gpus": 1.0}
    assert rx.ray_task_options("cuda", gpus_per_trial=0.25) == {**cpu_only, "num_gpus": 0.25}
    assert rx.ray_task_options("cuda", gpus_per_trial=2) == {**cpu_only, "num_gpus": 2.0}


def test_in_flight_limit_counts_gpus_for_cuda_trials():
    cluster = {"CPU": 16.0, "GPU": 2.0}
    assert rx._in_flight_limit(cluster, rx.ray_task_options(None)) == 16
    assert rx._in_flight_limit(cluster, rx.ray_task_options("cuda")) == 2
    assert rx._in_flight_limit(cluster, rx.ray_task_options("cuda", gpus_per_trial=0.25)) == 8
    assert rx._in_flight_limit({"CPU": 1.0}, rx.ray_task_options(None)) == 1


# -- the device reaches the trial ----------------------------------------------------------
def test_trial_device_outside_a_trial_is_none():
    assert ps.trial_device() is None


@pytest.mark.parametrize("workers", [1, 2])
def test_device_reaches_each_trial(tmp_path, workers):
    df = ps.run(_study(device_trial), seeds=2, out=tmp_path / "cpu", workers=workers,
                progress=False, device="cpu")
    assert _seen(df) == {"cpu"} and len(df) == 2 * 2 * 3
    records = _records(tmp_path / "cpu" / "toy" / "trials")
    assert len(records) == 4 and {r["device"] for r in records} == {"cpu"}
    assert "- device: cpu" in (tmp_path / "cpu" / "toy" / "report.md").read_text()
    # the default stays what it was: no device for the trial, none in its record
    df = ps.run(_study(device_trial), seeds=2, out=tmp_path / "none", workers=workers,
                progress=False)
    assert _seen(df) == {"none"}
    assert all("device" not in r for r in _records(tmp_path / "none" / "toy" / "trials"))


def test_shipped_study_on_cpu_matches_the_default(tmp_path):
    study = pv.study.get_study("gmm_vs_em")
    study = dataclasses.replace(study, small_grid=study.small_grid[:1])
    options = {"small": True, "seeds": [0], "progress": False, "workers": 1}
    default = pv.study.run(study, out=tmp_path / "default", **options)
    on_cpu = pv.study.run(study, out=tmp_path / "cpu", device="cpu", **options)
    pd.testing.assert_frame_equal(default, on_cpu)


# -- the CLI -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, message",
    [
        pytest.param(["--device", "cuda"], "no CUDA device is available here", marks=no_cuda),
        (["--device", "gpu"], "--device gpu is not a device"),
        (["--device", "cuda:1", "--executor", "ray"], "not usable with --executor='ray'"),
        (["--device", "cpu", "--gpus-per-trial", "0.5"], "only used by Ray trials on CUDA"),
    ],
)
def test_cli_bad_device_is_one_line_exit_2(tmp_path, argv, message, capsys):
    assert main(["study", "gmm_vs_em", "--small", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not list(tmp_path.rglob("*.json"))

"""The Ray executor on a local two-CPU Ray instance gives the same table as local runs."""

from __future__ import annotations

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

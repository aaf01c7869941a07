"""A shipped study on a local two-CPU Ray instance gives the same table as the local executor."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

import ppl_vae as pv

ray = pytest.importorskip("ray")


@pytest.mark.ray
def test_gmm_vs_em_ray_matches_local(tmp_path):
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        # one small configuration, two seeds: two trials, one per Ray worker
        study = pv.study.get_study("gmm_vs_em")
        study = dataclasses.replace(study, small_grid=study.small_grid[:1])
        options = {"small": True, "seeds": [0, 1], "progress": False}
        local = pv.study.run(study, out=tmp_path / "local", workers=1, **options)
        on_ray = pv.study.run(study, out=tmp_path / "ray", executor="ray", **options)
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(local, on_ray)
    assert len(local) > 0

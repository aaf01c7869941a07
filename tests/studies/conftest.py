"""Shared fixture: run a shipped study's small grid once per test module."""

from __future__ import annotations

import pytest

import ppl_vae as pv


def run_small(name: str, out, *, seeds=1, **options):
    """``pv.study.run(name, small=True)`` in one process; returns (tidy df, wide table)."""
    df = pv.study.run(name, small=True, seeds=seeds, workers=1, out=out, progress=False,
                      **options)
    wide = df.pivot_table(index=["config_id", "seed"], columns="metric", values="value")
    return df, wide


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, request):
    """(df, wide, out_dir) of the study named by the module's ``STUDY_NAME``."""
    name = request.module.STUDY_NAME
    out = tmp_path_factory.mktemp(name)
    df, wide = run_small(name, out)
    return df, wide, out / name

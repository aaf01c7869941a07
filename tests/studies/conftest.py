"""Shared fixtures: run a shipped study's small grid once per test module, and its paper
grid with the costs shrunk (on the first images of the project's MNIST copy)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import ppl_vae as pv
from ppl_vae.studies import _study_kit
from ppl_vae.study.store import canonical_config

#: The project's shared copy of the four MNIST IDX files (next to the checkout).
SHARED_MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"


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



@pytest.fixture
def shrunk_paper_run(tmp_path, request, monkeypatch):
    """``run(**cheap)``: the module's study's paper grid with ``cheap`` values replacing its
    costly ones, one seed, in ``tmp_path``; every other key and value of the paper's
    configurations reaches the trial. ``_study_kit.dataset("mnist", ...)`` reads the first
    600 training and 200 test images of the shared MNIST copy (skips where it is missing).
    """
    if not (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST files not found in {SHARED_MNIST}")
    load = _study_kit.dataset

    def dataset(name, **options):
        if name == "mnist":
            options = {"root": str(SHARED_MNIST), "n_train": 600, "n_test": 200, **options}
        return load(name, **options)

    monkeypatch.setattr(_study_kit, "dataset", dataset)

    def run(**cheap):
        study = pv.study.get_study(request.module.STUDY_NAME)
        configs = {canonical_config(c): c for c in ({**c, **cheap} for c in study.paper_grid)}
        return run_small(dataclasses.replace(study, small_grid=list(configs.values())), tmp_path)

    return run

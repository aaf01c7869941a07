"""A study that declares ``takes_context=True`` hands its trial a TrialContext (seed,
device, size, a scratch folder made for it); the old ``trial(config, seed)`` form is unchanged."""

from __future__ import annotations

import pytest

import ppl_vae.study as study_api
from ppl_vae.study import Study, TrialContext


def context_trial(config, context):
    assert isinstance(context, TrialContext)
    (context.scratch_dir / "made.txt").write_text("x")
    return {"got_seed": float(context.seed), "cpu": float(context.device is None),
            "small": float(context.size == "small"), "a": float(config["a"]),
            "scratch_ok": float(context.scratch_dir.is_dir())}


def seed_trial(config, seed):
    assert isinstance(seed, int)
    return {"got_seed": float(seed), "a": float(config["a"])}


@pytest.mark.parametrize("workers", [1, 2])
def test_context_form_gets_seed_size_and_scratch(tmp_path, workers):
    st = Study(name="ctx", trial=context_trial, grid=[{"a": 1}, {"a": 2}], takes_context=True)
    res = study_api.run(st, seeds=[5, 9], out=tmp_path, size="small", workers=workers,
                        progress=False)
    rows = res.pivot(index="seed", columns="metric", values="value").reset_index()
    assert len(rows) == 2  # small grid: the first configuration, two seeds
    assert sorted(rows["seed"].astype(int)) == [5, 9]
    assert (rows["got_seed"] == rows["seed"]).all()
    assert (rows["small"] == 1.0).all() and (rows["scratch_ok"] == 1.0).all()
    assert (rows["cpu"] == 1.0).all()
    assert len(list((tmp_path / "ctx" / "scratch").glob("*/made.txt"))) == 2


def test_seed_form_is_the_default(tmp_path):
    st = Study(name="old", trial=seed_trial, grid=[{"a": 3}])
    assert st.takes_context is False
    res = study_api.run(st, seeds=[4], out=tmp_path, progress=False)
    rows = res.pivot(index="seed", columns="metric", values="value").reset_index()
    assert list(rows["seed"].astype(int)) == [4] and list(rows["a"]) == [3.0]
    assert not (tmp_path / "old" / "scratch").exists()


def test_takes_context_must_be_a_bool():
    with pytest.raises(ValueError, match="takes_context"):
        Study(name="bad", trial=seed_trial, grid=[{"a": 1}], takes_context="yes")

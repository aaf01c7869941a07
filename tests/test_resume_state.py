"""A checkpoint's training state, edited or written by another version, is refused by
``training.resume.check_saved_training`` with a ValueError naming the field; a checkpoint
path that could never be written is refused by ``checkpoint.check_checkpoint_path``."""

from __future__ import annotations

import copy
import os

import pytest
import torch

import ppl_vae as pv
from ppl_vae import checkpoint as ckpt
from ppl_vae.training.resume import check_saved_training

X = torch.bernoulli(torch.full((40, 64), 0.5), generator=torch.Generator().manual_seed(0))


def _model():
    return pv.build("vae", latent_dim=2, decoder={"hidden": [8]}, guide={"hidden": [8]})


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """(training state, parameters) of a real checkpoint with validation and a schedule."""
    path = tmp_path_factory.mktemp("ck") / "c.pt"
    model = _model()
    pv.fit(model, X, steps=4, batch_size=10, checkpoint=path, checkpoint_every=2,
           progress=False, x_val=X[:5], eval_every=2,
           lr_schedule={"kind": "StepLR", "step_size": 2, "gamma": 0.5})
    return ckpt.read(path)["training"], list(model.parameters())


def _set(key, value):
    return lambda t: t.__setitem__(key, value)


def _row(i, j, value):
    return lambda t: t["rows"][i].__setitem__(j, value)


def _optimizer_buffer(t):
    first = next(iter(t["optimizer"]["state"].values()))
    first["exp_avg"] = torch.zeros(3, 3)


def _optimizer_groups(t):
    t["optimizer"]["param_groups"][0]["params"] = t["optimizer"]["param_groups"][0]["params"][:2]


EDITS = [
    ("step-negative", _set("step", -1), "'step' is -1, not an integer >= 0"),
    ("step-text", _set("step", "4"), "'step' is '4'"),
    ("step-float", _set("step", 4.0), "'step' is 4.0"),
    ("rng-short", _set("rng", torch.zeros(10, dtype=torch.uint8)), "'rng' is a torch.uint8 tensor of shape (10,)"),
    ("rng-float", _set("rng", torch.get_rng_state().float()), "'rng' is a torch.float32"),
    ("rng-list", _set("rng", [1, 2, 3]), "'rng' is list"),
    ("cuda-rng", _set("cuda_rng", "abc"), "'cuda_rng' is not a list"),
    ("rows-strings", _row(0, 1, "45.0"), "'rows' row 0 holds '45.0', not a number"),
    ("rows-short", lambda t: t["rows"].__setitem__(1, [1, 2.0]), "'rows' row 1 is [1, 2.0]"),
    ("rows-not-list", _set("rows", "abc"), "'rows' is str"),
    ("rows-step-beyond", _row(3, 0, 99), "'rows' row 3 is for step 99, outside 1..4"),
    ("columns", _set("columns", ["a", "b"]), "'columns' is ['a', 'b']"),
    ("optimizer-text", _set("optimizer", "adam"), "'optimizer' is not an optimizer state_dict"),
    ("optimizer-shapes", _optimizer_buffer, "'optimizer' has exp_avg of shape (3, 3)"),
    ("optimizer-params", _optimizer_groups, "'optimizer' holds 2 parameters, the model"),
    ("seed", _set("seed", -5), "'seed' is -5"),
    ("options", _set("options", [1]), "'options' is list, not dict"),
    ("scheduler", _set("scheduler", "x"), "'scheduler' is str, not dict"),
    ("best", lambda t: t["best"].__setitem__("value", "high"), "'best' is not a best-validation"),
]


@pytest.mark.parametrize("edit, words", [pytest.param(e, w, id=i) for i, e, w in EDITS])
def test_edited_training_state_is_refused_naming_the_field(written, edit, words):
    saved, params = written
    state = copy.deepcopy(saved)
    edit(state)
    with pytest.raises(ValueError) as err:
        check_saved_training(state, "run/c.pt", params=params)
    message = str(err.value)
    assert words in message and "checkpoint='run/c.pt'" in message, message
    assert "resume=False" in message


@pytest.mark.parametrize("value", ["x", 5, [1, 2]])
def test_training_that_is_not_a_dict_is_refused(value):
    with pytest.raises(ValueError, match=r"field 'training' is (str|int|list)"):
        check_saved_training(value, "c.pt")


def test_a_written_state_passes(written):
    saved, params = written
    check_saved_training(saved, "c.pt", params=params)
    check_saved_training(saved, "c.pt")
    check_saved_training(None, "c.pt")  # a checkpoint saved by pv.save has no training state


# -- the checkpoint path ------------------------------------------------------------------

def _fifo(t):
    os.mkfifo(t / "fifo")
    return t / "fifo"


def _link(t):
    (t / "link.pt").symlink_to(t / "nothing.pt")  # a link to a file is followed
    return t / "link.pt"


def _under_file(t):
    (t / "afile").write_text("x")
    return t / "afile" / "c.pt"


@pytest.mark.parametrize("make, words", [
    (lambda t: t, ["is a folder", "model.pt"]),
    (_link, ["link.pt", "symbolic link to", "does not exist"]),
    (_fifo, ["fifo", "not a regular file"]),
    (_under_file, ["afile", "which is a file, not a folder"]),
    (lambda t: 5, ["checkpoint=5 is invalid", "run/checkpoint.pt"]),
    (lambda t: "", ["checkpoint='' is invalid"]),
    (lambda t: True, ["checkpoint=True is invalid"]),
])
def test_checkpoint_paths_that_cannot_be_written_are_refused(tmp_path, make, words):
    with pytest.raises(ValueError) as err:
        ckpt.check_checkpoint_path(make(tmp_path))
    assert all(w in str(err.value) for w in words), str(err.value)
    assert str(err.value).startswith("checkpoint=")


def test_good_checkpoint_paths_pass(tmp_path):
    assert ckpt.check_checkpoint_path(tmp_path / "new" / "deeper" / "c.pt") == \
        tmp_path / "new" / "deeper" / "c.pt"
    (tmp_path / "old.pt").write_bytes(b"")
    ckpt.check_checkpoint_path(str(tmp_path / "old.pt"))
    assert not (tmp_path / "new").exists()  # nothing created

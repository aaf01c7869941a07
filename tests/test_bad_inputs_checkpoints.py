"""Hostile checkpoints for ``pv.fit(..., checkpoint=PATH)`` (issue 24, cases A and B).

A: resuming from a checkpoint whose training state was edited or written by another
version is a ValueError naming the field, the file, and the remedy (resume=False or a
checkpoint this version wrote) — before anything trains, and the file is left as it was.
B: a checkpoint path that could never be written (a folder, a FIFO, a dangling link, a
path under a file, a folder nobody may write into, not a path at all) is refused before
training starts, without hanging; a link to a regular file is followed.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import ppl_vae as pv
from tests.test_bad_inputs import snapshot

X = torch.bernoulli(torch.full((40, 64), 0.5), generator=torch.Generator().manual_seed(0))
RUN = {"batch_size": 10, "checkpoint_every": 2, "progress": False, "x_val": X[:5],
       "eval_every": 2, "lr_schedule": {"kind": "StepLR", "step_size": 2, "gamma": 0.5}}


def _model():
    return pv.build("vae", latent_dim=2, decoder={"hidden": [8]}, guide={"hidden": [8]})


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The dict of a checkpoint that ``pv.fit`` wrote after 4 steps."""
    path = tmp_path_factory.mktemp("ck") / "c.pt"
    pv.fit(_model(), X, steps=4, checkpoint=path, **RUN)
    return torch.load(path, weights_only=True)


def _fit(checkpoint, *, resume=False, steps=6):
    return pv.fit(_model(), X, steps=steps, checkpoint=checkpoint, resume=resume, **RUN)


# -- A: the training state ---------------------------------------------------------------

def _training(key, value):
    return lambda o: o["training"].__setitem__(key, value)


def _drop(key, where="training"):
    return lambda o: (o[where] if where else o).pop(key)


def _first_buffers(o):
    return next(iter(o["training"]["optimizer"]["state"].values()))


def _weights_edited(o):
    o["state_dict"]["prior._zero"] = torch.zeros(7)
    o["training"]["best"] = None


def _best_tensor(o, value):
    o["training"]["best"]["state"]["prior._zero"] = value


EDITS = {
    "rng-wrong-size": (_training("rng", torch.zeros(10, dtype=torch.uint8)),
                       "'rng' is a torch.uint8 tensor of shape (10,)"),
    "rng-wrong-type": (_training("rng", [1, 2, 3]), "'rng' is list"),
    "rng-float": (_training("rng", torch.get_rng_state().float()), "'rng' is a torch.float32"),
    "rng-bytes-not-a-state": (_training("rng", torch.zeros_like(torch.get_rng_state())),
                              "'rng' holds 5056 bytes that are not a generator state"),
    "rows-of-strings": (lambda o: o["training"]["rows"][0].__setitem__(1, "45.0"),
                        "'rows' row 0 holds '45.0', not a number"),
    "rows-of-text": (_training("rows", ["a", "b"]), "'rows' row 0 is 'a'"),
    "step-negative": (_training("step", -1), "'step' is -1, not an integer >= 0"),
    "step-text": (_training("step", "4"), "'step' is '4'"),
    "optimizer-other-shapes": (lambda o: _first_buffers(o).__setitem__("exp_avg", torch.zeros(3, 3)),
                               "'optimizer' has exp_avg of shape (3, 3) for a parameter of shape"),
    "optimizer-fewer-params": (
        lambda o: o["training"]["optimizer"]["param_groups"][0].__setitem__("params", [0, 1]),
        "'optimizer' holds 2 parameters, the model"),
    "optimizer-buffer-text": (lambda o: _first_buffers(o).__setitem__("step", "x"),
                              "'optimizer' has step='x' for parameter 0, not a tensor or number"),
    "optimizer-lr-text": (
        lambda o: o["training"]["optimizer"]["param_groups"][0].__setitem__("lr", "fast"),
        "'optimizer' has lr='fast' in a parameter group, not a number"),
    "optimizer-not-a-state": (_training("optimizer", "adam"), "'optimizer' is not an optimizer"),
    "optimizer-buffer-dtype": (
        lambda o: _first_buffers(o).__setitem__("exp_avg", _first_buffers(o)["exp_avg"].long()),
        "'optimizer' has exp_avg of dtype torch.int64, not floating point"),
    "optimizer-extra-group": (
        lambda o: o["training"]["optimizer"]["param_groups"].append(
            dict(o["training"]["optimizer"]["param_groups"][0], params=[])),
        "'optimizer' has param_groups of 2 items, where this version keeps 1"),
    "scheduler-text-epoch": (lambda o: o["training"]["scheduler"].__setitem__("last_epoch", "x"),
                             "'scheduler' has last_epoch='x', where this version keeps a number"),
    "scheduler-text-gamma": (lambda o: o["training"]["scheduler"].__setitem__("gamma", "x"),
                             "'scheduler' has gamma='x'"),
    "scheduler-no-rates": (lambda o: o["training"]["scheduler"].__setitem__("base_lrs", []),
                           "'scheduler' has base_lrs of 0 items, where this version keeps 1"),
    "scheduler-not-a-dict": (_training("scheduler", "x"), "'scheduler' is str, not dict"),
    "best-other-shapes": (lambda o: _best_tensor(o, torch.zeros(3)),
                          "'best' has 'prior._zero' of shape (3,), the checkpoint's weights (2,)"),
    "best-missing-tensor": (lambda o: o["training"]["best"]["state"].pop("prior._zero"),
                            "'best' holds other tensors than the checkpoint's weights"),
    "best-value-text": (lambda o: o["training"]["best"].__setitem__("value", "high"),
                        "'best' is not a best-validation record"),
    "overrides-garbage": (_training("overrides", [1, "x"]), "'overrides' holds 1, not a record"),
    "columns-repeated": (lambda o: o["training"]["columns"].__setitem__(1, "step"),
                         "'columns' is ['step', 'step'"),
    "training-not-a-dict": (lambda o: o.__setitem__("training", "x"),
                            "'training' is str ('x'), not a dict"),
    "training-empty": (lambda o: o.__setitem__("training", {}), "'step' is missing"),
    "missing-step": (_drop("step"), "'step' is missing"),
    "missing-rows": (_drop("rows"), "'rows' is missing"),
    "missing-columns": (_drop("columns"), "'columns' is missing"),
    "missing-rng": (_drop("rng"), "'rng' is missing"),
    "missing-optimizer": (_drop("optimizer"), "'optimizer' is missing"),
    "missing-seed": (_drop("seed"), "'seed' is missing"),
    "missing-spec": (_drop("spec", None), "its spec is NoneType, not a dict"),
    "missing-state_dict": (_drop("state_dict", None), "its state_dict is missing"),
    "weights-other-shapes": (_weights_edited, "its weights do not match its spec"),
    "weights-other-than-best": (lambda o: o["state_dict"].__setitem__("prior._zero", torch.zeros(7)),
                                "'best' has 'prior._zero' of shape (2,), the checkpoint's weights"),
}


@pytest.mark.parametrize("case", list(EDITS))
def test_an_edited_training_state_is_refused_naming_the_field(tmp_path, written, case):
    edit, words = EDITS[case]
    obj = copy.deepcopy(written)
    edit(obj)
    path = tmp_path / "c.pt"
    torch.save(obj, path)
    before = snapshot(tmp_path)
    with pytest.raises(ValueError) as err:
        _fit(path, resume=True)
    message = str(err.value)
    assert words in message and str(path) in message, message
    assert "another version" in message and "resume=False" in message, message
    assert snapshot(tmp_path) == before  # nothing written, nothing lost


def test_an_unedited_checkpoint_resumes(tmp_path, written):
    path = tmp_path / "c.pt"
    torch.save(written, path)
    assert _fit(path, resume=True).history["step"].tolist() == [1, 2, 3, 4, 5, 6]


# -- B: the checkpoint path --------------------------------------------------------------

def _fifo(t):
    os.mkfifo(t / "fifo.pt")
    return t / "fifo.pt"


def _dangling(t):
    (t / "link.pt").symlink_to(t / "gone.pt")
    return t / "link.pt"


def _loop(t):
    (t / "a.pt").symlink_to(t / "b.pt")
    (t / "b.pt").symlink_to(t / "a.pt")
    return t / "a.pt"


def _link_to_folder(t):
    (t / "runs").mkdir()
    (t / "link.pt").symlink_to(t / "runs")
    return t / "link.pt"


def _under_file(t):
    (t / "file.txt").write_text("notes")
    return t / "file.txt" / "ckpt.pt"


def _folder(t):
    (t / "runs").mkdir()
    return t / "runs"


PATHS = {
    "folder": (_folder, "is a folder: pass a file path such as"),
    "fifo": (_fifo, "is not a regular file (a device, FIFO or socket)"),
    "dangling-link": (_dangling, "is a symbolic link to"),
    "link-loop": (_loop, "does not exist (or loops)"),
    "link-to-folder": (_link_to_folder, "is a folder"),
    "under-a-file": (_under_file, "which is a file, not a folder"),
    "int": (lambda t: 5, "checkpoint=5 is invalid: pass a file path"),
    "bytes": (lambda t: b"c.pt", "checkpoint=b'c.pt' is invalid"),
    "list": (lambda t: ["c.pt"], "checkpoint=['c.pt'] is invalid"),
    "bool": (lambda t: True, "checkpoint=True is invalid"),
    "empty": (lambda t: "", "checkpoint='' is invalid"),
}


@pytest.mark.parametrize("resume", [False, True], ids=["fresh", "resume"])
@pytest.mark.parametrize("case", list(PATHS))
def test_a_checkpoint_path_that_cannot_be_written_is_refused_before_training(
        tmp_path, case, resume, no_hang):
    make, words = PATHS[case]
    target = make(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match=r"^checkpoint=") as err:
        _fit(target, resume=resume)
    assert words in str(err.value), str(err.value)
    assert snapshot(tmp_path) == before


def _chattr(flag: str, path: Path) -> bool:
    tool = shutil.which("chattr")
    return tool is not None and subprocess.run([tool, flag, str(path)],
                                               check=False, capture_output=True).returncode == 0


def _chmod(flag: str, path: Path) -> bool:
    path.chmod(0o500 if flag == "+i" else 0o700)
    return os.geteuid() != 0  # root may write into a folder without write permission


@pytest.mark.parametrize("lock", [_chattr, _chmod], ids=["immutable", "read-only"])
def test_a_folder_that_cannot_be_written_is_refused_before_training(tmp_path, lock):
    folder = tmp_path / "locked"
    folder.mkdir()
    if not lock("+i", folder):
        lock("-i", folder)
        pytest.skip("this user may write into the locked folder (root), or chattr is missing")
    try:
        with pytest.raises(ValueError, match="is not writable by this user"):
            _fit(folder / "c.pt")
    finally:
        lock("-i", folder)
    assert list(folder.iterdir()) == []


def test_a_link_to_a_file_is_followed_and_stays_a_link(tmp_path, written):
    real = tmp_path / "run" / "c.pt"
    real.parent.mkdir()
    torch.save(written, real)
    link = tmp_path / "latest.pt"
    link.symlink_to(real)
    result = _fit(link, resume=True)
    assert result.history["step"].tolist() == [1, 2, 3, 4, 5, 6]
    assert link.is_symlink() and link.resolve() == real
    assert pv.checkpoint.read(real)["training"]["step"] == 6

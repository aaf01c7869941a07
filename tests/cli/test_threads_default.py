"""One documented torch thread count for every computing command: ``--threads``, default 1."""

from __future__ import annotations

import argparse

import pytest
import torch

from ppl_vae.cli import _shared, main, parser


def _commands():
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_every_computing_command_has_threads_defaulting_to_one():
    defaults = {name: [a.default for a in command._actions if a.dest == "threads"]
                for name, command in _commands().items()}
    assert _shared.DEFAULT_THREADS == 1
    assert defaults.pop("bench") == []  # passes its arguments to the benchmark script
    assert defaults == {name: [1] for name in defaults} and "study" in defaults


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_command_sets_torch_threads(tiny_vae_checkpoint, tmp_path, restore_threads):
    out = str(tmp_path / "s.png")
    torch.set_num_threads(2)
    assert main(["sample", str(tiny_vae_checkpoint), "--n", "4", "--out", out]) == 0
    assert torch.get_num_threads() == 1  # the default, set although sample never did before
    assert main(["sample", str(tiny_vae_checkpoint), "--n", "4", "--out", out, "--threads", "2"]) == 0
    assert torch.get_num_threads() == 2


def test_zero_threads_is_refused(tiny_vae_checkpoint, tmp_path, capsys, restore_threads):
    assert main(["resynth", str(tiny_vae_checkpoint), "--threads", "0",
                 "--out", str(tmp_path / "r.png")]) == 2
    assert "ppl-vae resynth: error: --threads=0 is invalid: pass an integer >= 1" in capsys.readouterr().err

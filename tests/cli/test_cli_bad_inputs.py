"""The CLI half of the bad-input matrix: one line on stderr, exit status 2, no
traceback, the flag or file named — and nothing on disk changed."""

from __future__ import annotations

import struct
import sys

import numpy as np
import pytest
import torch

import ppl_vae as pv
from ppl_vae.cli import main
from tests.test_bad_inputs import snapshot

TINY = {"latent_dim": 2, "decoder": {"hidden": [8]}, "guide": {"hidden": [8]}}


def _setup(tmp):
    pv.save(pv.build("vae", **TINY), tmp / "m.pt")
    (tmp / "t.txt").write_text("not a checkpoint\n")
    (tmp / "afile").write_text("x")
    (tmp / "bad.toml").write_bytes(b'family = "vae"\nlatent_dim = "\xff"\n')
    (tmp / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp / "gz").mkdir()
    (tmp / "gz" / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bgarbage")


CASES = [
    ("evaluate-seed", ["evaluate", "m.pt", "--seed", "-3"], "--seed=-3"),
    ("evaluate-seed-huge", ["evaluate", "m.pt", "--seed", str(2**63)], "--seed="),
    ("evaluate-ks", ["evaluate", "m.pt", "--ks", "0"], "--ks"),
    ("evaluate-chunk", ["evaluate", "m.pt", "--chunk-size", "0"], "--chunk-size=0"),
    ("evaluate-threads", ["evaluate", "m.pt", "--threads", "0"], "--threads=0"),
    ("evaluate-missing", ["evaluate", "nothing.pt"], "no such checkpoint"),
    ("evaluate-text", ["evaluate", "t.txt"], "not a ppl_vae checkpoint"),
    ("evaluate-out-is-file", ["evaluate", "m.pt", "--max-points", "5", "--ks", "1",
                              "--out", "afile"], "afile"),
    ("evaluate-out-under-file", ["evaluate", "m.pt", "--max-points", "5", "--ks", "1",
                                 "--out", "afile/sub"], "afile"),
    ("evaluate-data-npz", ["evaluate", "m.pt", "--data", "bad.npz"], "bad.npz"),
    ("evaluate-data-idx", ["evaluate", "m.pt", "--data", "gz"], "train-images"),
    ("sample-text", ["sample", "t.txt"], "not a ppl_vae checkpoint"),
    ("sample-n", ["sample", "m.pt", "--n", "0"], "--n=0"),
    ("sample-out-under-file", ["sample", "m.pt", "--n", "4", "--out", "afile/s.png"], "afile"),
    ("resynth-n", ["resynth", "m.pt", "--n", "0"], "--n=0"),
    ("traverse-k", ["traverse", "m.pt", "--data", "digits", "--k", "nan"], "--k=nan"),
    ("train-huge-latent", ["train", "--set", "latent_dim=1000000000000", "--steps", "1",
                           "--out", "run"], "memory budget"),
    ("train-spec-not-utf8", ["train", "--spec", "bad.toml", "--steps", "1", "--out", "run"],
     "UTF-8"),
    ("train-lr", ["train", "--lr", "nan", "--out", "run"], "--lr=nan"),
    ("study-seeds", ["study", "elbo_vs_is", "--seeds", "0"], "--seeds=0"),
    ("study-name", ["study", "nope"], "nope"),
    ("study-out-is-file", ["study", "elbo_vs_is", "--out", "afile"], "afile"),
    # round 3: flags named as flags, nothing created before refusing, sizes, devices
    ("train-kl-warmup", ["train", "--kl-warmup", "-1", "--out", "run"], "--kl-warmup=-1"),
    ("train-val-fraction", ["train", "--val-fraction", "1.5", "--out", "run"],
     "--val-fraction=1.5"),
    ("train-val-iwae-no-val", ["train", "--steps", "1", "--val-iwae", "5", "--out", "run/sub"],
     "--val-iwae needs validation data: pass --val-fraction"),
    ("train-early-stop-no-val", ["train", "--steps", "1", "--early-stopping", "2",
                                 "--out", "run"], "--early-stopping needs validation data"),
    ("train-kl-text", ["train", "--steps", "1", "--set", "objective.kl=abc", "--out", "run"],
     "objective.kl='abc'"),
    ("evaluate-ks-huge", ["evaluate", "m.pt", "--ks", "1,1000000000", "--out", "ev"],
     "--ks 1000000000"),
    *[(f"{cmd[0]}-mps", [*cmd, "--device", "mps"], "--device mps but no MPS")
      for cmd in (["train", "--steps", "1", "--out", "run"], ["sample", "m.pt"],
                  ["evaluate", "m.pt", "--out", "ev"], ["resynth", "m.pt"],
                  ["ood", "m.pt", "--in-classes", "0-4"], ["traverse", "m.pt", "--data", "digits"],
                  ["quickstart", "--out", "q"], ["study", "elbo_vs_is", "--small"])
      if not torch.backends.mps.is_available()],
]


@pytest.mark.parametrize("argv, fragment", [pytest.param(a, f, id=i) for i, a, f in CASES])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, monkeypatch, capsys, argv, fragment):
    monkeypatch.chdir(tmp_path)
    _setup(tmp_path)
    before = snapshot(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert fragment in err, err
    assert snapshot(tmp_path) == before


def test_cli_ray_missing_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    before = snapshot(tmp_path)
    code = main(["study", "elbo_vs_is", "--small", "--seeds", "1", "--executor", "ray",
                 "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "needs Ray" in err, err
    assert snapshot(tmp_path) == before


def test_cli_disk_full_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.chdir(tmp_path)
    _setup(tmp_path)
    before = snapshot(tmp_path)

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:783] . unexpected pos 448 vs 342")

    monkeypatch.setattr(torch, "save", full)
    model = pv.load(tmp_path / "m.pt")
    with pytest.raises(OSError, match=r"disk full .*m\.pt"):
        pv.save(model, tmp_path / "m.pt")
    assert snapshot(tmp_path) == before  # old file intact, no temporary left


def test_idx_loader_reads_a_good_gzip(tmp_path):
    """The bounded reader still reads real data (and np.nan-free floats)."""
    import gzip

    from ppl_vae.data import read_idx

    data = b"\0\0\x0d\x02" + struct.pack(">2I", 2, 2) + struct.pack(">4f", 0, 1, 2, 3)
    (tmp_path / "f.gz").write_bytes(gzip.compress(data))
    np.testing.assert_array_equal(read_idx(tmp_path / "f.gz"), [[0, 1], [2, 3]])

"""Commands that write one file put it under ``ppl_vae_out/<command>/`` by default, and
refuse an ``--out`` that is a folder (naming the flag, the path and the fix)."""

from __future__ import annotations

import pytest

import ppl_vae as pv
from ppl_vae.cli import main


@pytest.fixture(scope="module")
def sprites_checkpoint(tmp_path_factory):
    model = pv.build("vae", data_dim=169, latent_dim=3, decoder={"hidden": [8]}, guide={"hidden": [8]})
    return pv.save(model, tmp_path_factory.mktemp("ckpt") / "model.pt")


def test_sample_and_traverse_write_under_ppl_vae_out(tiny_vae_checkpoint, sprites_checkpoint,
                                                     tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["sample", str(tiny_vae_checkpoint), "--n", "4"]) == 0
    assert "wrote ppl_vae_out/sample/samples.png" in capsys.readouterr().out
    assert main(["traverse", str(sprites_checkpoint), "--data", "sprites", "--steps", "3",
                 "--max-points", "50"]) == 0
    assert "wrote ppl_vae_out/traverse/traversal.png" in capsys.readouterr().out
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["ppl_vae_out/sample/samples.png", "ppl_vae_out/traverse/traversal.png"]


def test_an_out_that_is_a_folder_is_refused(tiny_vae_checkpoint, tmp_path, capsys):
    assert main(["sample", str(tiny_vae_checkpoint), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--out={str(tmp_path)!r} is a folder: pass a file path, e.g. {tmp_path / 'out.png'}" in err
    assert list(tmp_path.iterdir()) == []

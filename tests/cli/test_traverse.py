"""``ppl-vae traverse`` with a tiny model on 13×13 sprites."""

import pytest
import torch

import ppl_vae as pv
from ppl_vae.cli import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = pv.build("vae", data_dim=169, latent_dim=3, decoder={"hidden": [8]}, guide={"hidden": [8]})
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    pv.save(model, path)
    return path


def test_traverse_writes_png(checkpoint, tmp_path, capsys):
    out = tmp_path / "grid" / "traversal.png"
    rc = main(["traverse", str(checkpoint), "--data", "sprites", "--out", str(out),
               "--steps", "5", "--max-points", "200", "--seed", "1"])
    assert rc == 0
    assert out.stat().st_size > 1000
    assert "3 rows" in capsys.readouterr().out


def test_wrong_data_is_a_one_line_error(checkpoint, tmp_path, capsys):
    rc = main(["traverse", str(checkpoint), "--data", "sprites", "--size", "16",
               "--out", str(tmp_path / "t.png")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "data_dim=169" in err


def test_not_a_checkpoint_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    torch.save({"x": 1}, bad)
    assert main(["traverse", str(bad), "--data", "sprites"]) == 2
    assert "not a ppl_vae checkpoint" in capsys.readouterr().err

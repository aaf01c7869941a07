"""``ppl-vae train --test-fraction``: a data file without x_test is split, and the command says so."""

import numpy as np
import pytest

from ppl_vae.cli import main


@pytest.fixture
def npz(tmp_path):
    x = (np.random.default_rng(0).random((350, 64)) < 0.3).astype(np.float32)
    path = tmp_path / "mine.npz"
    np.savez(path, x=x)
    both = tmp_path / "both.npz"
    np.savez(both, x=x[:300], x_test=x[300:])
    return path, both


def _train(tmp_path, data, *extra):
    return main(["train", "--data", str(data), "--steps", "2", "--set", "latent_dim=2",
                 "--no-progress", "--out", str(tmp_path / "out"), *extra])


@pytest.mark.parametrize(("extra", "split", "train", "test"),
                         [((), "80/20 (--test-fraction 0.2)", 280, 70),
                          (("--test-fraction", "0.5"), "50/50 (--test-fraction 0.5)", 175, 175)])
def test_a_file_without_x_test_is_split_and_the_command_says_so(tmp_path, npz, capsys, extra, split,
                                                                 train, test):
    assert _train(tmp_path, npz[0], *extra) == 0
    out = capsys.readouterr().out
    assert (f"note: {npz[0]} holds no x_test: its rows were split {split}; "
            f"{train} train rows are used, {test} test rows held out") in out
    assert f"on mine ({train} points, 2 steps" in out


def test_a_file_with_x_test_is_not_split(tmp_path, npz, capsys):
    assert _train(tmp_path, npz[1]) == 0
    out = capsys.readouterr().out
    assert "note:" not in out and "on both (300 points, 2 steps" in out
    assert _train(tmp_path, npz[1], "--test-fraction", "0.3") == 2
    assert (f"--test-fraction=0.3 does not apply: {npz[1]} holds its own x_test; drop --test-fraction"
            in capsys.readouterr().err)


def test_test_fraction_out_of_range_is_refused_before_anything_is_written(tmp_path, npz, capsys):
    assert _train(tmp_path, npz[0], "--test-fraction", "1.5") == 2
    assert "--test-fraction=1.5" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_dataset_says_how_it_was_split(npz):
    import ppl_vae as pv

    assert pv.data.load(str(npz[0]), test_fraction=0.3, seed=2).params["split"] == {
        "test_fraction": 0.3, "seed": 2}
    assert pv.data.load(str(npz[1])).params["split"] == "file"

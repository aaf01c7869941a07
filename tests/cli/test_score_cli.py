"""ppl-vae score: a table and score.csv; one-line errors for bad flags."""

import pandas as pd
import pytest

import ppl_vae as pv
from ppl_vae.cli import main


@pytest.fixture(scope="module")
def sprites_checkpoint(tmp_path_factory):
    data = pv.data.load("sprites", size=16, grid="small", n=400)
    model = pv.build("vae", data_dim=256, latent_dim=3, decoder={"hidden": [16]}, guide={"hidden": [16]})
    pv.fit(model, data.x_train, steps=30, batch_size=50, lr=1e-2, seed=0, progress=False)
    return pv.save(model, tmp_path_factory.mktemp("ckpt") / "model.pt")


def test_score_writes_a_tidy_csv(sprites_checkpoint, tmp_path, capsys):
    rc = main(["score", str(sprites_checkpoint), "--data", "sprites", "--size", "16",
               "--metrics", "mig,sap,factorvae", "--num-votes", "40", "--max-points", "300",
               "--out", str(tmp_path)])
    assert rc == 0
    table = pd.read_csv(tmp_path / "score.csv")
    assert list(table.columns) == ["metric", "factor", "value"]
    assert "shape" in set(table.factor) and "factorvae_score" in set(table.metric)
    assert "mig" in capsys.readouterr().out


@pytest.mark.parametrize("flags, message", [
    (["--metrics", "mig,bogus"], "--metrics='mig,bogus' is invalid"),
    (["--size", "16", "--data", "digits"], "--size=16 is only for --data sprites"),
    (["--num-votes", "1"], "--num-votes=1 is invalid"),
    (["--data", "digits"], "has no ground-truth factors"),
])
def test_bad_flags_are_one_line_errors(sprites_checkpoint, tmp_path, capsys, flags, message):
    rc = main(["score", str(sprites_checkpoint), "--out", str(tmp_path / "o"), *flags])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_score_on_a_dsprites_file(tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    classes = np.stack([rng.integers(0, s, 300) for s in (1, 3, 6, 40, 32, 32)], axis=1)
    np.savez(tmp_path / "d.npz", imgs=rng.integers(0, 2, (300, 64, 64), dtype=np.uint8),
             latents_classes=classes, latents_values=classes.astype(float))
    model = pv.build("vae", data_dim=4096, latent_dim=2, decoder={"hidden": [8]},
                     guide={"hidden": [8]})
    ckpt = pv.save(model, tmp_path / "m.pt")
    # the file is a 300-row subset: refused with the fix named
    rc = main(["score", str(ckpt), "--data", "dsprites", "--path", str(tmp_path / "d.npz"),
               "--out", str(tmp_path / "o")])
    assert rc == 2 and "subset=True to use a file with fewer rows" in capsys.readouterr().err
    rc = main(["score", str(ckpt), "--data", "dsprites", "--path", str(tmp_path / "d.npz"),
               "--subset", "--metrics", "mig,modularity", "--out", str(tmp_path / "o")])
    assert rc == 0
    table = pd.read_csv(tmp_path / "o" / "score.csv")
    assert {"color", "shape", "posY"} <= set(table.factor)
    assert {"modularity", "explicitness"} <= set(table.metric)

"""``ppl-vae train --spec rdvae --classes 0-4`` then ``ppl-vae ood``, with a tiny training run."""

import pandas as pd
import pytest

import ppl_vae as pv
from ppl_vae.cli import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("rdvae")
    rc = main(
        [
            "train",
            "--spec",
            "rdvae",
            "--data",
            "digits",
            "--classes",
            "0-4",
            "--steps",
            "60",
            "--out",
            str(out),
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    assert rc == 0
    return out / "model.pt"


def test_train_with_classes_uses_labels(checkpoint):
    model = pv.load(checkpoint)
    assert model.spec["family"] == "rdvae" and model.num_classes == 5


def test_ood_prints_and_writes(checkpoint, tmp_path, capsys):
    out = tmp_path / "ood"
    rc = main(
        [
            "ood",
            str(checkpoint),
            "--data",
            "digits",
            "--in-classes",
            "0-4",
            "--num-samples",
            "8",
            "--subclass",
            "1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "in-domain accuracy" in text
    table = pd.read_csv(out / "ood.csv")
    assert set(table["method"]) == {"log_px", "latent_density", "latent_distance"}
    assert table["auroc"].between(0, 1).all() and table["default"].sum() == 1
    assert table["n_in"].iloc[0] == 180 and table["n_out"].iloc[0] == 179
    for name in ("latent_scatter.png", "subclasses.png"):
        assert (out / name).stat().st_size > 1000


def test_one_method(checkpoint, tmp_path, capsys):
    rc = main(
        [
            "ood",
            str(checkpoint),
            "--in-classes",
            "0,1,2,3,4",
            "--method",
            "latent_distance",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    assert list(pd.read_csv(tmp_path / "ood.csv")["method"]) == ["latent_distance"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--in-classes", "0-2"], "num_classes=5"),
        (["--in-classes", "0-4", "--method", "entropy"], "--method='entropy'"),
    ],
)
def test_bad_input_is_a_one_line_error(checkpoint, tmp_path, capsys, extra, message):
    assert main(["ood", str(checkpoint), "--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_model_without_classes_is_refused(tmp_path, capsys):
    path = tmp_path / "vae.pt"
    pv.save(pv.build("vae"), path)
    assert main(["ood", str(path), "--in-classes", "0-4", "--out", str(tmp_path)]) == 2
    assert "without class Gaussians" in capsys.readouterr().err

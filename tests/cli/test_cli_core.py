"""The CLI: quickstart, train, sample with tiny settings; one-line errors for bad input."""

import subprocess
import sys

import pandas as pd
import pytest

import ppl_vae as pv
from ppl_vae.cli import main


def test_quickstart_writes_its_outputs(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), "--steps", "30", "--no-progress"]) == 0
    for name in ("model.pt", "prior_samples.png", "prior_samples_noisy.png",
                 "reconstructions.png", "training_curve.png", "elbo.csv"):
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "elbo.csv")
    assert set(table.split) == {"train", "test"} and (table.elbo < 0).all()
    assert "wrote to" in capsys.readouterr().out


def test_train_then_sample(tmp_path):
    out = tmp_path / "run"
    code = main(["train", "--spec", "vae", "--data", "digits", "--steps", "20", "--out", str(out),
                 "--set", "latent_dim=3", "--set", "decoder.hidden=[32]", "--no-progress"])
    assert code == 0
    model = pv.load(out / "model.pt")
    assert model.spec["latent_dim"] == 3 and model.spec["decoder"]["hidden"] == [32]
    assert len(pd.read_csv(out / "history.csv")) == 20
    png = tmp_path / "s.png"
    assert main(["sample", str(out / "model.pt"), "--n", "16", "--out", str(png)]) == 0
    assert png.stat().st_size > 0
    # resume to more steps continues the same run
    assert main(["train", "--steps", "30", "--out", str(out), "--set", "latent_dim=3",
                 "--set", "decoder.hidden=[32]", "--resume", "--no-progress"]) == 0
    assert len(pd.read_csv(out / "history.csv")) == 30


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train", "--spec", "nonexistent"], "spec='nonexistent' is neither a preset"),
        (["train", "--steps", "0"], "steps=0 is invalid"),
        (["train", "--data", "nodata"], "nodata"),
        (["train", "--set", "latent_dim"], "use KEY=VALUE"),
        (["train", "--set", "bogus=1"], "unknown key 'bogus'"),
        (["sample", "missing.pt"], "no such checkpoint file"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(argv, fragment, tmp_path, capsys):
    argv = argv + (["--out", str(tmp_path / "o")] if argv[0] == "train" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_python_dash_m_runs_the_cli():
    run = subprocess.run([sys.executable, "-m", "ppl_vae", "--help"], capture_output=True, text=True, check=False)
    assert run.returncode == 0 and "quickstart" in run.stdout
    run = subprocess.run([sys.executable, "-m", "ppl_vae", "train", "--steps", "-3"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2 and "Traceback" not in run.stderr


def test_device_flag_is_checked_on_computing_commands(tmp_path):
    import subprocess
    import sys

    for cmd in (["quickstart", "--steps", "2"], ["sample", str(tmp_path / "none.pt")]):
        done = subprocess.run([sys.executable, "-m", "ppl_vae", *cmd, "--device", "tpu:7"],
                              capture_output=True, text=True, cwd=tmp_path, check=False)
        assert done.returncode == 2 and "--device" in done.stderr and "tpu:7" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_sample_on_the_cpu_device(tiny_vae_checkpoint, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "s.png"
    done = subprocess.run([sys.executable, "-m", "ppl_vae", "sample", str(tiny_vae_checkpoint),
                           "--n", "4", "--out", str(out), "--device", "cpu"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert out.exists()

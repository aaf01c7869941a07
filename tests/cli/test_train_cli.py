"""``ppl-vae train`` options: the [training] table, validation, --strict, resume checks."""

import pandas as pd

from ppl_vae.cli import main
from ppl_vae.cli import train as cli_train
from ppl_vae.training import TrainingError


def test_training_table_and_flags(tmp_path, capsys):
    spec = tmp_path / "run.toml"
    spec.write_text(
        'family = "vae"\nlatent_dim = 2\n[decoder]\nhidden = [16]\n[guide]\nhidden = [16]\n'
        '[training]\nsteps = 30\nlr = 0.003\nlr_schedule = "iwae_paper"\nval_fraction = 0.1\n'
        "eval_every = 10\nearly_stopping = 5\nkl_warmup = 10\n"
    )
    out = tmp_path / "run"
    assert main(["train", "--spec", str(spec), "--steps", "20", "--out", str(out), "--no-progress"]) == 0
    h = pd.read_csv(out / "history.csv")
    assert len(h) == 20  # the flag wins over the table
    assert h.lr.iloc[0] == 0.003 and h.kl_weight.iloc[0] == 0.0 and h.val_elbo.notna().sum() == 2
    # the same run resumed with a different rate is refused, then accepted with --override
    argv = ["train", "--spec", str(spec), "--steps", "25", "--out", str(out), "--no-progress", "--resume"]
    assert main(argv + ["--lr", "0.01"]) == 2
    assert "lr: checkpoint 0.003, now 0.01" in capsys.readouterr().err
    assert main(argv + ["--lr", "0.01", "--override"]) == 0
    assert (out / "checkpoint.best.pt").exists()


def test_strict_exits_non_zero_when_training_diverges(tmp_path, capsys):
    argv = ["train", "--steps", "30", "--lr", "10000", "--set", "latent_dim=2", "--no-progress",
            "--out", str(tmp_path / "d")]
    assert main(argv) == 0
    assert "training diverged" in capsys.readouterr().out
    assert main(argv + ["--strict"]) == 1


def test_training_error_names_cli_flags_not_python_arguments(tmp_path):
    class Args:
        lr = 0.5

    for last_saved, hint in ((None, "--checkpoint-every"), (200, "--resume")):
        err = TrainingError("x", step=201, value=float("nan"), checkpoint="c", last_saved=last_saved)
        text = str(cli_train._cli_training_error(err, Args(), tmp_path))
        assert "checkpoint=" not in text and "--lr (0.5 now)" in text and hint in text

"""``ppl-vae evaluate``: a tiny trained checkpoint in, a table and CSV out; bad input exits 2."""

from __future__ import annotations

import pandas as pd
import pytest

import ppl_vae as pv
from ppl_vae.cli import main


@pytest.fixture
def checkpoint(tiny_vae_checkpoint):
    return tiny_vae_checkpoint


def test_evaluate_writes_the_table(checkpoint, tmp_path, capsys):
    code = main(
        [
            "evaluate",
            str(checkpoint),
            "--data",
            "digits",
            "--ks",
            "1,10,50",
            "--max-points",
            "40",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    frame = pd.read_csv(tmp_path / "evaluate.csv")
    assert list(frame["K"]) == [1, 10, 50] and (frame["n"] == 40).all()
    assert {"elbo", "log_px", "ess_mean", "share_unreliable", "exact_log_px"} <= set(frame.columns)
    assert (
        frame["log_px"].is_monotonic_increasing and (frame["elbo"] < frame["log_px"].iloc[-1]).all()
    )
    assert frame["exact_log_px"].isna().all()  # a VAE has no closed form
    assert "log_px" in capsys.readouterr().out


def test_khat_columns_are_not_applicable_where_k_is_too_small(checkpoint, tmp_path, capsys):
    # K = 1, 2, 10: PSIS cannot fit a tail at any point (every one "cannot tell"), so
    # neither a share of unreliable points nor the threshold (-2.32 at K = 2) is a number.
    assert main(["evaluate", str(checkpoint), "--ks", "1,2,10,100", "--max-points", "30",
                 "--out", str(tmp_path)]) == 0
    frame = pd.read_csv(tmp_path / "evaluate.csv").set_index("K")
    small = frame.loc[[1, 2, 10]]
    assert (small["share_cannot_tell"] == 1).all()
    assert small["share_unreliable"].isna().all() and small["khat_threshold"].isna().all()
    assert frame.loc[100, "khat_threshold"] == pytest.approx(0.5)  # 1 - 1/log10(100)
    assert frame.loc[100, "share_unreliable"] >= 0 and frame.loc[100, "share_cannot_tell"] == 0
    lines = capsys.readouterr().out.splitlines()
    row_k2 = next(line for line in lines if line.split()[2:3] == ["2"])
    assert row_k2.count("n/a") == 3 and "-2.32" not in row_k2  # threshold, share, exact


def test_evaluate_reports_exact_log_px_for_the_linear_gaussian_lvm(tmp_path):
    data = pv.data.load("linear_gaussian", data_dim=4, latent_dim=1, n=200, seed=0)
    np_path = tmp_path / "lg.npz"
    import numpy as np

    np.savez(np_path, x=np.concatenate([data.x_train, data.x_test]))
    model = pv.build(
        "lvm",
        data_dim=4,
        latent_dim=1,
        decoder={"hidden": []},
        guide={"kind": "amortized", "hidden": []},
    )
    pv.fit(model, data.x_train, steps=50, batch_size=80, lr=1e-2, seed=0, progress=False)
    ckpt = pv.save(model, tmp_path / "lvm.pt")
    assert (
        main(
            [
                "evaluate",
                str(ckpt),
                "--data",
                str(np_path),
                "--ks",
                "100",
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    frame = pd.read_csv(tmp_path / "out" / "evaluate.csv")
    assert frame["exact_log_px"].notna().all()
    assert abs(frame["log_px"][0] - frame["exact_log_px"][0]) < 0.5


def test_evaluate_fits_every_latent_of_a_local_graph_model(tmp_path, capsys):
    import numpy as np
    import torch

    spec = {"family": "vae", "data_dim": 4,
            "latent": {"z2": {"dim": 1}, "z1": {"dim": 2, "parents": ["z2"], "prior": {
                "kind": "normal", "hidden": [], "scale": "learned"}}},
            "decoder": {"parents": ["z1"], "hidden": []},
            "likelihood": {"kind": "normal", "scale": 0.5}, "guide": {"kind": "local"}}
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    model = pv.build(spec)
    pv.fit(model, x, steps=60, batch_size=10, seed=0, progress=False)
    ckpt = pv.save(model, tmp_path / "local_graph.pt")
    np.savez(tmp_path / "new.npz", x=x[:8].numpy() + 0.1)  # rows its guide was not fitted to
    assert main(["evaluate", str(ckpt), "--data", str(tmp_path / "new.npz"), "--ks", "200",
                 "--out", str(tmp_path / "out")]) == 0
    assert "fitting q(z|θᵢ)" in capsys.readouterr().out
    frame = pd.read_csv(tmp_path / "out" / "evaluate.csv")
    # the joint local guide over z1 and z2 gives IS that agrees with the closed form
    assert abs(frame["log_px"][0] - frame["exact_log_px"][0]) < 0.2
    assert frame["elbo"][0] <= frame["exact_log_px"][0] + 0.05


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--ks", "1,ten"], "--ks"),
        (["--ks", "0"], "--ks"),
        (["--max-points", "0"], "--max-points"),
        (["--chunk-size", "0"], "--chunk-size"),
        (["--data", "linear_gaussian"], "linear_gaussian"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(checkpoint, tmp_path, capsys, extra, message):
    code = main(["evaluate", str(checkpoint), "--out", str(tmp_path), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["evaluate", str(bad)]) == 2
    assert "not a ppl_vae checkpoint" in capsys.readouterr().err


def test_an_npz_file_is_scored_whole_unless_a_split_is_asked_for(checkpoint, tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "new.npz", x=(rng.random((350, 64)) > 0.5).astype(float))
    data = str(tmp_path / "new.npz")
    runs = {"all": [], "test": ["--split", "test"],
            "half": ["--split", "test", "--test-fraction", "0.5"]}
    rows = {}
    for name, extra in runs.items():
        assert main(["evaluate", str(checkpoint), "--data", data, "--ks", "2",
                     "--out", str(tmp_path / name), *extra]) == 0
        rows[name] = int(pd.read_csv(tmp_path / name / "evaluate.csv")["n"].iloc[0])
    assert rows == {"all": 350, "test": 70, "half": 175}  # 20 % held out by default
    out = capsys.readouterr().out
    assert "(all 350 rows)" in out and "test split: 70 of 350 rows" in out
    assert "test split, test_fraction 0.5: 175 of 350 rows" in out
    assert main(["evaluate", str(checkpoint), "--data", data, "--test-fraction", "0.5"]) == 2
    assert "--test-fraction=0.5 needs --split test or train" in capsys.readouterr().err

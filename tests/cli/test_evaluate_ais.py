"""``ppl-vae evaluate --ais``: AIS beside the IS table, BDMC bounds, the figure."""

from __future__ import annotations

import pandas as pd
import pytest

from ppl_vae.cli import main


def test_evaluate_with_ais_and_bdmc(tiny_vae_checkpoint, tmp_path, capsys):
    code = main(["evaluate", str(tiny_vae_checkpoint), "--ks", "1,100", "--max-points", "10",
                 "--ais", "3,10", "--ais-chains", "4", "--bdmc", "4", "--out", str(tmp_path)])
    assert code == 0
    frame = pd.read_csv(tmp_path / "ais.csv")
    table = pd.read_csv(tmp_path / "evaluate.csv")
    assert list(frame["steps"]) == [3, 10] and (frame["chains"] == 4).all()
    gap = frame["bdmc_upper"] - frame["bdmc_lower"]
    assert ((frame["bdmc_gap"] - gap).abs() < 1e-4).all()
    assert frame["ais"].iloc[1] > table["elbo"].iloc[0]
    assert (tmp_path / "ais.png").stat().st_size > 0
    assert "annealed importance sampling" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--ais", "0"], "--ais"),
    (["--ais", "a,b"], "--ais"),
    (["--bdmc", "5"], "--bdmc needs --ais"),
    (["--ais", "5", "--ais-chains", "0"], "--ais-chains"),
])
def test_bad_ais_flags(tiny_vae_checkpoint, tmp_path, capsys, extra, message):
    code = main(["evaluate", str(tiny_vae_checkpoint), "--out", str(tmp_path), *extra])
    assert code == 2 and message in capsys.readouterr().err

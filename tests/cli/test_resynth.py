"""``ppl-vae resynth``: attribute vector between two digit classes, PNG grid out."""

from __future__ import annotations

import pytest

from ppl_vae.cli import main


@pytest.fixture
def checkpoint(tiny_vae_checkpoint):
    return tiny_vae_checkpoint


def test_resynth_writes_a_png(checkpoint, tmp_path, capsys):
    out = tmp_path / "grid.png"
    code = main(
        [
            "resynth",
            str(checkpoint),
            "--data",
            "digits",
            "--from",
            "1",
            "--to",
            "7",
            "--n",
            "3",
            "--out",
            str(out),
        ]
    )
    assert code == 0 and out.stat().st_size > 1000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "attribute vector 1 → 7" in capsys.readouterr().out


def test_resynth_with_map_projection(checkpoint, tmp_path):
    out = tmp_path / "map.png"
    assert (
        main(
            [
                "resynth",
                str(checkpoint),
                "--method",
                "map",
                "--n",
                "2",
                "--scales=-1,0,1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert out.exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--from", "11"], "--from=11"),
        (["--to", "-3"], "--to=-3"),
        (["--n", "0"], "--n=0"),
        (["--scales", "a,b"], "--scales"),
        (["--data", "linear_gaussian"], "linear_gaussian"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(checkpoint, tmp_path, capsys, extra, message):
    code = main(["resynth", str(checkpoint), "--out", str(tmp_path / "g.png"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1

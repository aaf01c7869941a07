"""ppl-vae bench lists the benchmark scripts and refuses unknown names."""

from ppl_vae.cli import bench, main


def test_bench_lists_the_shipped_benchmarks(capsys):
    assert main(["bench"]) == 0
    out = capsys.readouterr().out
    for name in ("log_likelihood", "study_scaling"):
        assert name in out and name in bench.available()


def test_unknown_benchmark_is_a_one_line_error(capsys):
    assert main(["bench", "warp_drive"]) == 2
    err = capsys.readouterr().err.strip()
    assert "benchmark 'warp_drive' is unknown; available:" in err and len(err.splitlines()) == 1

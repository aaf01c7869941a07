"""Rank histograms: the band of uniform ranks flags the bins a miscalibrated guide fills."""

import numpy as np
import pytest

from ppl_vae import plots


def test_rank_histograms_flag_bins_outside_the_uniform_band(tmp_path):
    flat = np.full(10, 100)
    u_shape = np.array([180, 120, 90, 70, 40, 40, 70, 90, 120, 180])
    fig = plots.rank_histograms({"exact": flat, "too narrow": u_shape},
                                path=tmp_path / "sub" / "ranks.png", title="SBC")
    assert (tmp_path / "sub" / "ranks.png").stat().st_size > 0
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles[0] == "exact (0/10 bins outside)"
    assert titles[1] == "too narrow (6/10 bins outside)"  # binomial(1000, 0.1) 99 %: [76, 125]


def test_unequal_widths_move_the_expected_counts(tmp_path):
    # 5 rank values in 2 bins of widths 3 and 2: uniform ranks give 60 and 40 of 100
    fig = plots.rank_histograms({"q": [60, 40]}, widths=[3, 2], path=tmp_path / "r.png")
    assert fig.axes[0].get_title() == "q (0/2 bins outside)"
    fig = plots.rank_histograms({"q": [50, 50]}, path=tmp_path / "r.png")
    assert fig.axes[0].get_title() == "q (0/2 bins outside)"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"counts": {}}, "non-empty dict"),
        ({"counts": {"a": [1, 2], "b": [1, 2, 3]}}, "same bins"),
        ({"counts": {"a": [1, 2]}, "widths": [1]}, "widths"),
        ({"counts": {"a": [1, 2]}, "level": 1.5}, "level=1.5"),
    ],
)
def test_bad_inputs(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plots.rank_histograms(path=tmp_path / "x.png", **kwargs)

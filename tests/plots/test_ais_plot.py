"""``pv.plots.ais_vs_steps``: the AIS curve, reference lines and the BDMC band."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ppl_vae as pv


def test_ais_vs_steps_draws_the_curve_and_the_band(tmp_path):
    frame = pd.DataFrame({"steps": [1000, 10, 100], "ais": [-91.5, -95.0, -92.0],
                          "bdmc_lower": [-93.2, -99.0, -94.0], "bdmc_upper": [-93.0, -88.0, -92.0]})
    fig = pv.plots.ais_vs_steps(frame, path=tmp_path / "a.png", reference={"ELBO": -96.0})
    assert (tmp_path / "a.png").stat().st_size > 0
    data_ax, band_ax = fig.axes
    x, y = data_ax.lines[0].get_data()
    assert list(x) == [10, 100, 1000] and list(y) == [-95.0, -92.0, -91.5]  # sorted by steps
    assert [line.get_label() for line in data_ax.lines][1] == "ELBO"
    lower, upper = band_ax.lines[0].get_data()[1], band_ax.lines[1].get_data()[1]
    assert np.allclose(lower, [-99.0, -94.0, -93.2]) and np.allclose(upper, [-88.0, -92.0, -93.0])


def test_ais_vs_steps_without_bdmc_and_missing_columns(tmp_path):
    fig = pv.plots.ais_vs_steps(pd.DataFrame({"steps": [10, 100], "ais": [-3.0, -2.5]}),
                                path=tmp_path / "b.png")
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="ais"):
        pv.plots.ais_vs_steps(pd.DataFrame({"steps": [10]}), path=tmp_path / "c.png")

"""prior_vs_aggregate, small grid: C2ST accuracies in range, train-vs-test near chance."""

import numpy as np

STUDY_NAME = "prior_vs_aggregate"


def test_c2st(small_run):
    _df, wide, out = small_run
    row = wide.iloc[0]
    for name in ("c2st_prior", "c2st_aggregate", "c2st_train_images"):
        assert 0 <= row[name] <= 1
    # the calibration row: real training images vs held-out images is close to chance
    assert abs(row["c2st_train_images"] - 0.5) < 0.1
    # a briefly trained VAE's samples are easy to spot: well above the calibration row
    assert row["c2st_prior"] > row["c2st_train_images"] + 0.1
    assert np.isclose(row["c2st_prior_minus_aggregate"], row["c2st_prior"] - row["c2st_aggregate"])
    assert (out / "c2st.png").stat().st_size > 0

"""inference_gaps, small grid: the two gaps add up and have the right signs."""

import numpy as np

STUDY_NAME = "inference_gaps"


def test_gaps_decompose(small_run):
    _df, wide, out = small_run
    for _, row in wide.iterrows():
        assert row["amortization_gap"] >= 0  # ELBO[q*] taken >= the encoder's per point
        assert row["approximation_gap"] > -0.3  # log p(x) >= ELBO[q*] up to IS noise
        assert np.isclose(row["total_gap"], row["approximation_gap"] + row["amortization_gap"],
                          atol=1e-4)
        assert np.isclose(row["total_gap"], row["log_px"] - row["elbo_amortized"], atol=1e-3)
        assert row["elbo_amortized"] <= row["elbo_local"] <= row["log_px"] + 0.3
        assert 0 <= row["local_improved_share"] <= 1
    assert (out / "gaps.png").stat().st_size > 0

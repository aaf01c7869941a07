"""disentanglement, small grid: scores in range, the ELBO decomposition adds up."""

import numpy as np

STUDY_NAME = "disentanglement"


def test_scores_and_decomposition(small_run):
    df, wide, out = small_run
    assert set(zip(df["family"], df["beta"])) == {("vae", 1.0), ("vae", 4.0), ("tcvae", 4.0)}
    for _, row in wide.iterrows():
        for name in ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness"):
            assert 0 <= row[name] <= 1, name
        assert np.isclose(row["elbo"], row["reconstruction"] - row["kl"], atol=1e-3)
        parts = row["mutual_information"] + row["total_correlation"] + row["dimwise_kl"]
        assert abs(parts - row["kl"]) < 0.5 + 0.2 * row["kl"]  # Chen et al. Eq. 2, MC error
    assert (out / "scores.png").stat().st_size > 0

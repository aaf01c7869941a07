"""rdvae_ood, small grid: accuracies and AUROCs in range for the VAE baseline and an RD-VAE."""

STUDY_NAME = "rdvae_ood"


def test_accuracy_and_auroc(small_run):
    df, wide, out = small_run
    assert list(dict.fromkeys(df["model"])) == ["vae", "rdvae"]
    vae, rd = wide.loc[0].iloc[0], wide.loc[1].iloc[0]
    for row in (vae, rd):
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["auroc_log_px"] <= 1
    assert {"auroc_latent_density", "auroc_latent_distance"} <= set(rd.dropna().index)
    assert rd["min_sq_distance_class_means"] > 0
    assert vae["accuracy"] > 0.3  # a linear probe beats chance (0.2) even after brief training
    paired = (out / "paired.csv").read_text()
    assert "accuracy" in paired
    assert (out / "accuracy_auroc.png").stat().st_size > 0

"""sbc, small grid: the exact posterior and the trained guide pass; mis-scaled guides fail."""

import dataclasses

import numpy as np
import pandas as pd
import torch

import ppl_vae as pv
from ppl_vae.studies import sbc

STUDY_NAME = "sbc"


def _by_arm(df, wide):
    arms = df.drop_duplicates("config_id").set_index("config_id")
    key = {cid: (row["guide"], row["spread"]) for cid, row in arms.iterrows()}
    return {key[cid]: row for (cid, _seed), row in wide.iterrows()}


def test_calibrated_guides_pass_and_mis_scaled_ones_fail(small_run):
    df, wide, out = small_run
    arm = _by_arm(df, wide)
    exact, trained = arm[("exact", 1.0)], arm[("amortized", 1.0)]
    narrow, wide_q = arm[("amortized", 0.5)], arm[("amortized", 2.0)]
    assert exact["calibrated"] == 1 and exact["p_value"] >= 0.01
    assert exact["kl_to_exact"] == 0
    assert trained["calibrated"] == 1 and trained["p_value"] >= 0.01
    assert 0 < trained["kl_to_exact"] < 0.2  # trained close to the exact posterior
    assert narrow["calibrated"] == 0 and narrow["p_value"] < 1e-6 and narrow["sd_ratio"] > 1.15
    assert wide_q["calibrated"] == 0 and wide_q["p_value"] < 1e-6 and wide_q["sd_ratio"] < 0.85
    for row in arm.values():  # the pooled histogram counts every rank once
        bins = [row[f"rank_bin_{b:02d}"] for b in range(10)]
        assert np.isclose(sum(bins), 400 * 2)
    assert (out / "ranks.png").stat().st_size > 0 and (out / "p_values.png").stat().st_size > 0


def test_paper_grid_has_talts_et_al_sizes_and_the_default_arms():
    study = pv.study.get_study(STUDY_NAME)
    assert [sbc.label(c) for c in study.paper_grid] == [sbc.label(c) for c in study.grid]
    for paper, default in zip(study.paper_grid, study.grid, strict=True):
        assert paper["n_sims"] >= 10_000 and paper["n_sims"] >= 5 * default["n_sims"]
        assert paper["num_draws"] >= 99 and (paper["num_draws"] + 1) % paper["bins"] == 0
        assert {k: v for k, v in paper.items() if k != "n_sims"} == {
            k: v for k, v in default.items() if k != "n_sims"}
    assert study.detail("rank_bin_00") and not study.detail("p_value")


def test_trial_trains_and_simulates_on_the_trial_device(tmp_path):
    study = dataclasses.replace(pv.study.get_study(STUDY_NAME),
                                small_grid=pv.study.get_study(STUDY_NAME).small_grid[:2])
    options = {"small": True, "seeds": [0], "progress": False, "workers": 1}
    default = pv.study.run(study, out=tmp_path / "default", **options)
    on_cpu = pv.study.run(study, out=tmp_path / "cpu", device="cpu", **options)
    pd.testing.assert_frame_equal(default, on_cpu)
    # the cached model is keyed by device too: a "cpu" trial trains its own, on the CPU
    args = [study.small_grid[0][k] for k in sbc._TRAINING]
    assert sbc._trained(0, "cpu", *args) is not sbc._trained(0, None, *args)
    assert {p.device.type for p in sbc._trained(0, "cpu", *args).parameters()} == {"cpu"}


def test_exact_posterior_in_any_dtype_matches_the_joint_gaussian():
    model = pv.build("lvm", data_dim=6, latent_dim=3, likelihood={"scale": 0.7}, seed=1,
                     decoder={"hidden": []}, guide={"kind": "amortized", "hidden": []})
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(0))  # float32
    post = sbc.exact_posterior(model.double(), x)
    assert post.mean.dtype == torch.float64 and post.mean.device == x.device
    # p(z | x) from the joint Gaussian: Σ_zx Σ_xx⁻¹ (x − b), I − Σ_zx Σ_xx⁻¹ Σ_xz
    layer = model.decoder.net[0]
    w, b = layer.weight.detach(), layer.bias.detach()
    gain = w.T @ torch.linalg.inv(w @ w.T + 0.49 * torch.eye(6, dtype=torch.float64))
    assert torch.allclose(post.mean, (x.double() - b) @ gain.T, atol=1e-10)
    assert torch.allclose(post.covariance_matrix, torch.eye(3, dtype=torch.float64) - gain @ w,
                          atol=1e-10)
    single = sbc.exact_posterior(model.float(), x)
    assert single.mean.dtype == torch.float32
    assert torch.allclose(single.mean.double(), post.mean, atol=1e-4)

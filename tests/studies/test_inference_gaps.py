"""inference_gaps: the gaps add up, have the right signs and order on both subsets, for
both guide families; the MNIST path runs (tiny) and fails clearly without the data;
the default and paper sizes follow Cremer et al.'s design."""

import numpy as np
import pytest

from ppl_vae.studies import inference_gaps as study
from ppl_vae.study import TrialContext

STUDY_NAME = "inference_gaps"
_IS_NOISE = 0.3  # log p̂ (K = 64) and ELBO[q*] (8 draws) are both noisy in the small grid


def _check_gaps(row, subset):
    g = {name: row[f"{name}_{subset}"] for name in (
        "log_px", "elbo_local", "elbo_amortized", "approximation_gap", "amortization_gap",
        "total_gap", "amortization_share", "share_unreliable", "local_improved_share",
        "log_px_is", "log_px_ais", "ais_won_share")}
    assert all(np.isfinite(v) for v in g.values()), g
    # log p̂ is per point the larger of IS and AIS: at least each on average
    assert g["log_px"] >= max(g["log_px_is"], g["log_px_ais"]) - 1e-4
    assert 0 <= g["ais_won_share"] <= 1
    if g["ais_won_share"] == 0:
        assert np.isclose(g["log_px"], g["log_px_is"], atol=1e-4)
    assert g["amortization_gap"] > 0  # q* starts at q and improves (common random numbers)
    assert g["approximation_gap"] > -_IS_NOISE  # log p̂ >= ELBO[q*] up to IS noise
    assert g["log_px"] + _IS_NOISE >= g["elbo_local"] > g["elbo_amortized"]
    assert np.isclose(g["total_gap"], g["approximation_gap"] + g["amortization_gap"], atol=1e-4)
    assert np.isclose(g["total_gap"], g["log_px"] - g["elbo_amortized"], atol=1e-3)
    assert np.isclose(g["amortization_share"], g["amortization_gap"] / g["total_gap"])
    assert 0 <= g["share_unreliable"] <= 1 and 0 <= g["local_improved_share"] <= 1
    assert g["local_improved_share"] > 0  # q* beats the encoder on some points at least


def test_gaps_decompose_on_both_subsets(small_run):
    df, wide, out = small_run
    assert set(df["guide"]) == {"gaussian", "flow"} and set(df["dataset"]) == {"digits"}
    assert len(wide) == 2  # one trial per model, both subsets inside it
    for _, row in wide.iterrows():
        for subset in ("train", "test"):
            _check_gaps(row, subset)
    assert (out / "gaps.png").stat().st_size > 0


_CHEAP = {"steps": 3, "n_eval": 4, "local_steps": 2, "local_particles": 1, "elbo_particles": 4,
          "num_samples": 16, "ais_steps": 3, "ais_chains": 2}


def test_paper_configs_run_when_shrunk(shrunk_paper_run):
    df, wide = shrunk_paper_run(**_CHEAP)
    assert set(df["dataset"]) == {"mnist"} and np.isfinite(df["value"]).all()
    assert len(wide) == 4  # FFG and flow, standard and larger encoder
    for _, row in wide.iterrows():
        for subset in ("train", "test"):
            assert np.isclose(row[f"total_gap_{subset}"],
                              row[f"log_px_{subset}"] - row[f"elbo_amortized_{subset}"], atol=1e-3)


def test_ais_won_share_and_the_choice_per_point(small_run):
    df, wide, out = small_run
    shares = wide[[f"ais_won_share_{s}" for s in ("train", "test")]].to_numpy()
    assert np.isfinite(shares).all() and (shares > 0).any()  # AIS is the tighter somewhere
    for _, row in wide.iterrows():
        for subset in ("train", "test"):
            # the per-point maximum: above both means, at most their larger plus the spread
            assert row[f"log_px_{subset}"] >= row[f"log_px_is_{subset}"] - 1e-4
            assert row[f"log_px_{subset}"] >= row[f"log_px_ais_{subset}"] - 1e-4


def test_without_ais_steps_log_px_is_importance_sampling_alone(monkeypatch):
    config = {**study.STUDY.small_grid[0], "ais_steps": 0, "n_eval": 4, "local_steps": 2}
    out = study.trial(config, TrialContext(seed=0))
    assert "ais_won_share_test" not in out and np.isfinite(out["log_px_test"])


def test_missing_mnist_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PPL_VAE_MNIST", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"does not exist.*needs the real MNIST.*PPL_VAE_MNIST"):
        study.trial({**study.GRID[0], **_CHEAP}, TrialContext(seed=0))


def test_sizes_follow_the_paper_design():
    small, default, paper = (study.STUDY.configs(s) for s in ("small", "default", "paper"))
    assert {c["dataset"] for c in small} == {"digits"}
    for grid in (default, paper):
        assert {c["dataset"] for c in grid} == {"mnist"}
        assert {(c["guide"], tuple(c["encoder_hidden"])) for c in grid} == {
            (g, e) for g in ("gaussian", "flow") for e in ((200, 200), (500, 500))}
        assert (grid[0]["guide"], grid[0]["encoder_hidden"]) == ("gaussian", [200, 200])
        assert all(c["latent_dim"] == 50 and c["decoder_hidden"] == [200, 200] for c in grid)
    assert all(c["n_eval"] == 1000 and c["steps"] == 3280 * 60_000 // 100 for c in paper)
    assert all(c["num_samples"] == 5000 for c in default + paper)
    assert study.STUDY.protocol and study.STUDY.references == ()


def test_the_two_elbos_share_random_numbers(monkeypatch):
    """q* at its start (no steps) is the encoder's q exactly, so with common random numbers
    the two ELBOs agree to rounding — for any chunking of the particles."""
    import ppl_vae as pv
    from ppl_vae.studies import _study_kit

    data = _study_kit.dataset("digits", binarize=True)
    model = pv.build("vae", latent_dim=2, seed=0)
    x = _study_kit.subsample(data.x_test, 6, seed=0)
    start = pv.infer.fit_local_guide(model, x, steps=0, init="encoder")
    monkeypatch.setattr(study, "ELBO_CHUNK", 2)
    amortized = study._elbo(model, x, None, 5, 7, None)  # passes of 2, 2 and 1 particles
    local = study._elbo(model, x, start, 5, 7, None)
    np.testing.assert_allclose(local.numpy(), amortized.numpy(), rtol=0, atol=1e-4)
    passes = [pv.infer.elbo(model, x, num_particles=n, seed=7 + j) for j, n in enumerate((2, 2, 1))]
    np.testing.assert_allclose(amortized.numpy(), ((2 * passes[0] + 2 * passes[1] + passes[2]) / 5).numpy(),
                               rtol=1e-6)

"""Hostile sizes and flags (issue 24, cases C–F): each is a ValueError naming the
argument, the value and the fix — before any work, without hanging, nothing written.

C: ``ppl-vae evaluate --ks 1000000000``; D: SBC's ranks, bins, simulations, guide and
draws; E: ``pv.study.run``'s ``retry_failed`` and huge ``seeds``; F: a local guide over
5·10⁷ rows under a 1 GB memory budget.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ppl_vae as pv
from ppl_vae.cli import main
from ppl_vae.metrics import check_simulations, rank_counts, rank_uniformity
from ppl_vae.studies import sbc
from ppl_vae.study import Study, TrialContext
from tests.test_bad_inputs import snapshot

BUDGET = "PPL_VAE_MEMORY_BUDGET"

# -- C: evaluate --ks ---------------------------------------------------------------------


@pytest.mark.parametrize("ks", ["1000000000", "1,1000000000", "99999999999999999999999"])
def test_evaluate_with_a_huge_k_is_refused_by_the_budget_in_one_line(
        tmp_path, monkeypatch, capsys, ks, no_hang):
    monkeypatch.chdir(tmp_path)
    pv.save(pv.build("vae", latent_dim=2, decoder={"hidden": [8]}, guide={"hidden": [8]}),
            tmp_path / "m.pt")
    before = snapshot(tmp_path)
    assert main(["evaluate", "m.pt", "--ks", ks, "--out", "ev"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"--ks {max(int(k) for k in ks.split(','))} for" in err and "memory budget" in err
    assert "smaller --ks" in err, err
    assert snapshot(tmp_path) == before


# -- D: simulation-based calibration ------------------------------------------------------

UNIFORM = np.tile(np.arange(10), 10)[:, None]  # 100 simulations, ranks uniform on 0 … 9


def _nan_ranks():
    ranks = UNIFORM.astype(float)
    ranks[3] = np.nan
    return ranks


SBC_CALLS = {
    "nan-ranks": (lambda: rank_uniformity(_nan_ranks(), num_draws=9),
                  "ranks contains NaN or inf (first at row 3)"),
    "bins-fraction": (lambda: rank_uniformity(UNIFORM, num_draws=9, bins=2.5),
                      "bins=2.5 is invalid: pass an integer 2 <= bins"),
    "bins-bool": (lambda: rank_uniformity(UNIFORM, num_draws=9, bins=True), "bins=True is invalid"),
    "bins-one": (lambda: rank_uniformity(UNIFORM, num_draws=9, bins=1), "bins=1 is invalid"),
    "num-draws-fraction": (lambda: rank_uniformity(UNIFORM, num_draws=9.5),
                           "num_draws=9.5 is invalid"),
    "one-simulation": (lambda: rank_uniformity(UNIFORM[:1], num_draws=9),
                       "1 simulation(s) give"),
    "one-simulation-two-bins": (lambda: rank_uniformity(UNIFORM[:1], num_draws=9, bins=2),
                                "too few for the χ² test"),
    "bins-past-budget": (lambda: rank_uniformity(UNIFORM, num_draws=10**11, bins=10**9),
                         "bins=1000000000 (for 1 coordinate(s)) would take"),
    "counts-bins-past-budget": (lambda: rank_counts(UNIFORM, num_draws=10**11, bins=10**9),
                                "pass fewer bins"),
    "check-bins-past-budget": (
        lambda: check_simulations(10**6, num_draws=10**11, bins=10**9), "memory budget"),
}


@pytest.mark.parametrize("case", list(SBC_CALLS))
def test_sbc_metrics_refuse_bad_ranks_bins_and_sizes(case, no_hang):
    call, words = SBC_CALLS[case]
    with pytest.raises(ValueError) as err:
        call()
    assert words in str(err.value), str(err.value)


SMALL_SBC = {**sbc._SMALL, **sbc._ARMS[0], "steps": 5, "n": 50}


@pytest.mark.parametrize("change, words", [
    ({"n_sims": 1}, "sbc config n_sims: 1 simulation(s) give"),  # not 'calibrated = 1'
    ({"n_sims": 1, "bins": 2}, "too few for the χ² test"),
    ({"guide": "bogus"}, "sbc config guide='bogus' is not recognised; valid values: exact"),
    ({"num_draws": 10**11}, "num_draws=100000000000 would take"),
    ({"bins": 2.5}, "sbc config bins=2.5"),
], ids=["one-simulation", "one-simulation-two-bins", "guide-bogus", "draws-past-budget",
        "bins-fraction"])
def test_an_sbc_trial_refuses_before_training(change, words, no_hang):
    before = sbc._trained.cache_info()  # other tests of this process may have trained some
    with pytest.raises(ValueError) as err:
        sbc.trial({**SMALL_SBC, **change}, TrialContext(seed=0))
    assert words in str(err.value), str(err.value)
    after = sbc._trained.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)  # nothing was trained


# -- E: study runs ------------------------------------------------------------------------

def _trial(config, context):
    return {"value": float(config["a"])}


STUDY = Study(name="hostile", trial=_trial, grid=[{"a": 1}, {"a": 2}])


@pytest.mark.parametrize("kwargs, words", [
    ({"retry_failed": "no"}, "retry_failed='no' is invalid: pass True or False"),
    ({"retry_failed": 1}, "retry_failed=1 is invalid"),
    ({"retry_failed": None}, "retry_failed=None is invalid"),
    ({"seeds": 10**12}, "seeds=1000000000000: 2000000000000 trials would take"),
    ({"seeds": range(10**12)}, "seeds (a list of 1000000000000 seeds)"),
    ({"seeds": range(10**20)}, "memory budget"),
    ({"seeds": np.int64(10**12)}, "seeds=1000000000000"),
], ids=["retry-text", "retry-int", "retry-none", "seeds-count", "seeds-range",
        "seeds-range-overflow", "seeds-numpy"])
def test_a_study_run_refuses_before_anything_runs(tmp_path, kwargs, words, no_hang):
    with pytest.raises(ValueError) as err:
        pv.study.run(STUDY, out=tmp_path / "out", progress=False, workers=1,
                     **{"seeds": 1, **kwargs})
    assert words in str(err.value), str(err.value)
    assert not (tmp_path / "out").exists()


def test_a_seed_list_past_the_budget_is_refused(tmp_path, monkeypatch, no_hang):
    monkeypatch.setenv(BUDGET, "1M")
    with pytest.raises(ValueError, match=r"seeds \(a list of 2000 seeds\): 4000 trials would "
                                         r"take 3\.9 MiB, more than the memory budget"):
        pv.study.run(STUDY, seeds=list(range(2000)), out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


# -- F: a local guide over many rows ------------------------------------------------------

def _local(**guide):
    return pv.build("vae", data_dim=1, latent_dim=2, decoder={"hidden": [4]},
                    guide={"kind": "local", **guide})


@pytest.mark.parametrize("rows, budget, covariance", [
    (50_000_000, "1G", "diagonal"),  # the case: 3 GiB of parameters to train
    (100_000, "1M", "diagonal"),
    (20_000, "1M", "full"),
], ids=["5e7-rows-1G", "1e5-rows-1M", "full-covariance"])
def test_fit_refuses_a_local_guide_past_the_budget_before_allocating(
        monkeypatch, rows, budget, covariance, no_hang):
    monkeypatch.setenv(BUDGET, budget)
    model = _local(covariance=covariance)
    with pytest.raises(ValueError) as err:
        pv.fit(model, torch.zeros(rows, 1), steps=1, batch_size=100, progress=False)
    message = str(err.value)
    assert f"guide 'local' with parameters for {rows} datapoints" in message, message
    assert "more than the memory budget" in message and "amortized guide" in message
    assert model.q.num_data == 0  # refused before the parameters were made


def test_fit_local_guide_refuses_rows_past_the_budget(monkeypatch, no_hang):
    monkeypatch.setenv(BUDGET, "1M")
    model = pv.build("vae", data_dim=1, latent_dim=2, decoder={"hidden": [4]},
                     guide={"hidden": [4]})
    with pytest.raises(ValueError, match=r"num_particles=1 for 100000 row\(s\) .* pass fewer "
                                         r"rows \(fit the local guide in parts\)"):
        pv.infer.fit_local_guide(model, torch.zeros(100_000, 1), steps=1)


def test_a_local_guide_within_the_budget_still_trains(monkeypatch):
    monkeypatch.setenv(BUDGET, "1M")
    model = _local()
    pv.fit(model, torch.bernoulli(torch.full((200, 1), 0.5)), steps=2, batch_size=50,
           progress=False)
    assert model.q.num_data == 200

"""A shipped study's trial refuses a bad configuration before computing anything: a
ValueError naming the study, the key, the value and what to pass."""

from __future__ import annotations

import numpy as np
import pytest

from ppl_vae.studies import (
    _study_kit,
    disentanglement,
    elbo_vs_is,
    gmm_vs_em,
    inference_gaps,
    prior_vs_aggregate,
    rdvae_ood,
    sbc,
)
from ppl_vae.study import TrialContext

CASES = [
    (sbc, {"n_sims": 1}, "sbc config n_sims: 1 simulation(s)", "run more simulations"),
    (sbc, {"n_sims": 0}, "sbc config n_sims=0", "integer >= 1"),
    (sbc, {"guide": "bogus"}, "sbc config guide='bogus'", "exact, amortized"),
    (sbc, {"spread": 0.0}, "sbc config spread=0.0", "> 0"),
    (sbc, {"spread": -2.0}, "sbc config spread=-2.0", "> 0"),
    (sbc, {"bins": 2.5}, "sbc config bins=2.5", "integer >= 2"),
    (sbc, {"num_draws": 0}, "sbc config num_draws=0", "integer >= 1"),
    (sbc, {"num_draws": 10**11}, "sbc config n_sims=400, num_draws=100000000000",
     "memory budget"),
    (elbo_vs_is, {"elbo_particles": 0}, "elbo_vs_is config elbo_particles=0", "integer >= 1"),
    (elbo_vs_is, {"n_eval": 0}, "elbo_vs_is config n_eval=0", "integer >= 1"),
    (elbo_vs_is, {"ks": [10, 0]}, "elbo_vs_is config ks[1]=0", "integer >= 1"),
    (elbo_vs_is, {"ks": []}, "elbo_vs_is config ks=[]", "non-empty list"),
    (elbo_vs_is, {"ais_chains": 0}, "elbo_vs_is config ais_chains=0", "integer >= 1"),
    (elbo_vs_is, {"ais_steps": -1}, "elbo_vs_is config ais_steps=-1", "integer >= 0"),
    (inference_gaps, {"n_eval": 0}, "inference_gaps config n_eval=0", "integer >= 1"),
    (inference_gaps, {"elbo_particles": 0}, "inference_gaps config elbo_particles=0", ">= 1"),
    (inference_gaps, {"guide": "iaf"}, "inference_gaps config guide='iaf'", "gaussian, flow"),
    (disentanglement, {"n_eval": 0}, "disentanglement config n_eval=0", "integer >= 1"),
    (prior_vs_aggregate, {"folds": 1}, "prior_vs_aggregate config folds=1", "integer >= 2"),
    (gmm_vs_em, {"em_inits": 0}, "gmm_vs_em config em_inits=0", "integer >= 1"),
    (rdvae_ood, {"model": "x"}, "rdvae_ood config model='x'", "vae, rdvae"),
    (rdvae_ood, {"num_samples": 0}, "rdvae_ood config num_samples=0", "integer >= 1"),
]


@pytest.mark.parametrize("module, change, names, fix", CASES,
                         ids=[f"{m.__name__.rsplit('.', 1)[1]}-{next(iter(c))}" for m, c, *_ in CASES])
def test_bad_trial_config_is_refused_up_front(module, change, names, fix, monkeypatch):
    monkeypatch.setattr(_study_kit, "train", lambda *a, **k: pytest.fail("trained before checking"))
    with pytest.raises(ValueError) as err:
        config = {**module.STUDY.small_grid[0], **change}
        # each study declares its trial's form: trial(config, context) or trial(config, seed)
        module.trial(config, TrialContext(seed=0) if module.STUDY.takes_context else 0)
    assert names in str(err.value) and fix in str(err.value), str(err.value)


def test_missing_key_is_named():
    config = dict(sbc.STUDY.small_grid[0])
    del config["spread"]
    with pytest.raises(ValueError, match="sbc: config has no key 'spread'"):
        sbc.trial(config, TrialContext(seed=0))


def test_numpy_values_are_accepted_like_python_ones():
    config = _study_kit.check_config("t", {"n": np.int64(3), "ks": np.array([1, 10]),
                                        "s": np.float32(0.5)},
                                  {"n": _study_kit.COUNT, "ks": _study_kit.COUNTS, "s": _study_kit.POSITIVE})
    assert config == {"n": 3, "ks": [1, 10], "s": 0.5}
    assert type(config["n"]) is int and all(type(k) is int for k in config["ks"])

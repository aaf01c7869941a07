"""Conformance, second round: guides and model shapes as Pyro users write them.

Pairs from ``pyro_pairs.py``; every reference is exact (closed form or Pyro's own
estimator on a pair whose weights are constant) or an asserted refusal message:

- ``pyro.markov`` linear-Gaussian state-space model with a guide — the Kalman-filter
  log p(x) (a Gaussian marginal in closed form); with the exact posterior chain as guide
  every weight equals it (and Pyro's ``Trace_ELBO`` gives it too); with a mean-field guide
  the ELBO's closed form E_q[log p(x, z)] + H[q], and IS converging to log p(x);
- ``pyro.markov`` discrete HMM enumerated in the model — the forward algorithm.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from pyro.infer import Trace_ELBO, TraceEnum_ELBO

import ppl_vae as pv

_spec = importlib.util.spec_from_file_location(
    "pyro_pairs", Path(__file__).with_name("pyro_pairs.py")
)
pp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pp)
close = pp.close


# ---------------------------------------------------------------------------
# pyro.markov
# ---------------------------------------------------------------------------


@pytest.fixture
def ssm():
    return pp.StateSpace()


def test_reference_state_space_exact_guide_gives_the_kalman_value(ssm):
    xs = ssm.sample()
    close(-Trace_ELBO().loss(ssm.model, ssm.guide_exact, xs), ssm.exact(xs).sum(), atol=1e-3)


@pytest.mark.parametrize("vectorize", [None, False])
def test_state_space_with_exact_guide_is_the_kalman_value(ssm, vectorize):
    xs = ssm.sample()
    exact = ssm.exact(xs)
    res = pv.infer.log_likelihood(ssm.model, xs, guide=ssm.guide_exact, num_samples=3, seed=0,
                                  vectorize=vectorize)
    close(res.log_px, exact)
    close(pv.infer.elbo(ssm.model, xs, guide=ssm.guide_exact, seed=0, vectorize=vectorize), exact)


def test_state_space_mean_field_elbo_and_is_converge(ssm):
    xs = ssm.sample()
    elbo = pv.infer.elbo(ssm.model, xs, guide=ssm.guide_mean_field, num_particles=20000, seed=0)
    close(elbo, ssm.elbo_mean_field(xs), atol=0.075)  # the weights' s.d. is ≈ 2.5: 4 s.e.
    assert (ssm.elbo_mean_field(xs) < ssm.exact(xs)).all()
    res = pv.infer.log_likelihood(ssm.model, xs, guide=ssm.guide_mean_field, num_samples=20000,
                                  seed=0)
    # ESS ≈ 0.42 K here, so the s.e. of log p̂ is √((K/ESS − 1)/K) ≈ 0.008: 4 s.e.
    close(res.log_px, ssm.exact(xs), atol=0.035)


def test_markov_hmm_enumerated_is_the_forward_algorithm():
    hmm = pp.MarkovHMM()
    xs = hmm.sample()
    exact = hmm.exact(xs)
    close(-TraceEnum_ELBO(max_plate_nesting=1).loss(hmm.model, hmm.guide, xs), exact.sum(),
          atol=1e-3)
    close(pv.infer.log_likelihood(hmm.model, xs, guide=hmm.guide, num_samples=2).log_px, exact)
    close(pv.infer.elbo(hmm.model, xs, guide=hmm.guide), exact)

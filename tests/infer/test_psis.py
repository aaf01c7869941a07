"""The vectorised PSIS k̂ against ArviZ's ``psislw`` (the reference), datapoint by datapoint.

Reference values come from ``az.psislw(log_w.T, reff=1.0)`` on the same float64
weights, so nothing is pinned.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from ppl_vae.infer import khat_threshold, pareto_khat


def arviz_khat(log_w: torch.Tensor) -> np.ndarray:
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, k = az.psislw(log_w.T.double().numpy(), reff=1.0)
    return np.asarray(k)


@pytest.mark.parametrize("k", [21, 25, 100, 1000, 5000])
def test_equals_arviz_on_light_and_heavy_tails(k):
    g = torch.Generator().manual_seed(k)
    normal = torch.randn(k, 20, generator=g) * torch.linspace(0.1, 3.0, 20)  # light to heavy
    student = torch.distributions.StudentT(2.0).sample((k, 10)).abs().log() * 3  # heavy
    log_w = torch.cat([normal, student], 1).double()
    ours = pareto_khat(log_w).double().numpy()
    ref = arviz_khat(log_w)
    assert np.allclose(ours, ref, atol=1e-4, rtol=0), np.abs(ours - ref).max()


def test_ties_that_leave_a_short_tail_are_infinite_as_in_arviz():
    log_w = torch.zeros(100, 3, dtype=torch.float64)
    log_w[:, 0] = torch.randn(100, dtype=torch.float64)
    log_w[:97, 1] = -1.0  # three large weights, the rest tied below: a tail of 3 draws
    log_w[:, 2] = -1e6
    log_w[0, 2] = 0.0  # one weight carries everything (below the tiny cut-off)
    ours = pareto_khat(log_w).double().numpy()
    ref = arviz_khat(log_w)
    assert math.isinf(ours[1]) and math.isinf(ref[1]) and ours[1] > 0
    assert math.isinf(ours[2]) and ours[2] > 0
    assert np.isclose(ours[0], ref[0], atol=1e-4)


def test_flat_weights_have_no_tail_and_small_k_cannot_tell():
    flat = torch.full((100, 4), -12.3) + 1e-6 * torch.randn(100, 4)  # a perfect proposal
    assert torch.isneginf(pareto_khat(flat)).all()
    assert torch.isnan(pareto_khat(torch.randn(20, 4))).all()  # K < 21: at most 4 tail draws
    assert torch.isnan(pareto_khat(torch.randn(1, 4))).all()


def test_threshold_depends_on_sample_size():
    assert math.isclose(khat_threshold(100), 0.5)
    assert math.isclose(khat_threshold(1000), 1 - 1 / 3)
    assert khat_threshold(10_000) == 0.7
    assert math.isclose(khat_threshold(21), 1 - 1 / math.log10(21))


def test_rejects_wrong_shape():
    with pytest.raises(ValueError, match="log_w"):
        pareto_khat(torch.zeros(5))

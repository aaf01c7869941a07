"""AUROC anchors: separated = 1, identical ≈ 0.5, reversed = 0."""

import numpy as np
import pytest
import torch

from ppl_vae.metrics import ood_auroc


def test_perfectly_separated_identical_and_reversed():
    assert ood_auroc([0.1, 0.2, 0.3], [1.0, 2.0]) == 1.0
    assert ood_auroc([1.0, 2.0], [0.1, 0.2, 0.3]) == 0.0
    rng = np.random.default_rng(0)
    assert ood_auroc(rng.normal(size=5000), rng.normal(size=5000)) == pytest.approx(0.5, abs=0.02)
    assert ood_auroc([1.0, 1.0], [1.0]) == 0.5  # ties count one half


def test_matches_pairwise_probability_and_accepts_tensors():
    rng = np.random.default_rng(1)
    s_in, s_out = rng.normal(size=300), rng.normal(1.0, 1.0, size=200)
    pairwise = (s_out[None, :] > s_in[:, None]).mean()
    assert ood_auroc(s_in, s_out) == pytest.approx(pairwise)
    assert ood_auroc(torch.as_tensor(s_in), torch.as_tensor(s_out)) == pytest.approx(pairwise)


@pytest.mark.parametrize(
    "scores_in, scores_out, match",
    [
        ([], [1.0], "scores_in is empty"),
        ([1.0], [], "scores_out is empty"),
        ([1.0, np.nan], [1.0], "scores_in contains NaN"),
        ([1.0], [np.inf], "scores_out contains NaN or inf"),
        ([[1.0, 2.0]], [1.0], "scores_in has shape"),
        (None, [1.0], "scores_in=None"),
        (["a"], [1.0], "scores_in has dtype"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(scores_in, scores_out, match):
    with pytest.raises(ValueError, match=match):
        ood_auroc(scores_in, scores_out)

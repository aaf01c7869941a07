"""MIG sanity anchors (disentanglement_lib style): identity ≈ 1, noise ≈ 0."""

import numpy as np
import pandas as pd
import pytest
import torch

from ppl_vae.metrics import mig, mig_details


def discrete_factors(n=3000, sizes=(3, 6, 10, 8), seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, k, n) for k in sizes], axis=1)


def test_latents_equal_to_factors_score_near_one():
    f = discrete_factors()
    assert mig(f, f) > 0.98  # measured 0.995; the rest is plug-in MI bias of the runner-up
    noisy = f + 0.1 * np.random.default_rng(1).normal(size=f.shape)
    assert mig(noisy, f) > 0.97


def test_independent_noise_scores_near_zero():
    f = discrete_factors()
    assert mig(np.random.default_rng(2).normal(size=(len(f), 4)), f) < 0.02


def test_factor_copied_into_two_latents_has_no_gap():
    f = discrete_factors()
    details = mig_details(np.column_stack([f, f[:, 0]]), f, factor_names=list("abcd"))
    assert isinstance(details, pd.DataFrame)
    assert list(details.columns) == [
        "factor",
        "entropy",
        "top_latent",
        "top_mi",
        "second_latent",
        "second_mi",
        "gap",
    ]
    assert details.loc[0, "factor"] == "a"
    assert details.loc[0, "gap"] < 0.02
    assert (details.loc[1:, "gap"] > 0.98).all()
    # gap is the normalised difference of the two columns it reports
    expected = (details["top_mi"] - details["second_mi"]) / details["entropy"]
    np.testing.assert_allclose(details["gap"], expected)


def test_permuting_latents_or_relabelling_factors_does_not_change_the_score():
    f = discrete_factors()
    lat = f + 0.3 * np.random.default_rng(3).normal(size=f.shape)
    base = mig(lat, f)
    assert mig(lat[:, [2, 0, 3, 1]], f) == base
    relabelled = np.column_stack([f[:, 0] * 10 - 7, f[:, 1].astype(str), f[:, 2], f[:, 3] / 3])
    assert mig(lat, relabelled.astype(object)) == pytest.approx(base)


def test_constant_factor_is_skipped_and_torch_input_accepted():
    f = discrete_factors()
    with_constant = np.column_stack([f, np.zeros(len(f))])
    details = mig_details(with_constant, with_constant)
    assert np.isnan(details["gap"].iloc[-1]) and details["entropy"].iloc[-1] == 0
    assert mig(with_constant, with_constant) == pytest.approx(mig(with_constant, f))
    assert mig(torch.as_tensor(f, dtype=torch.float32), torch.as_tensor(f)) == pytest.approx(
        mig(f, f)
    )
    with pytest.raises(ValueError, match="all constant"):
        mig(f, np.zeros(len(f)))


@pytest.mark.parametrize(
    "latents, factors, kwargs, match",
    [
        (np.zeros((10, 2)), np.zeros((9, 1)), {}, "factors has 9 rows but latents has 10"),
        (np.full((10, 2), np.nan), np.zeros((10, 1)), {}, "latents contains NaN"),
        (np.zeros((10, 2)), np.full((10, 1), np.nan), {}, "factors contains NaN"),
        (np.zeros((10, 2)), np.zeros((10, 1)), {"bins": 1}, "bins=1"),
        (np.zeros((10, 2)), np.zeros((10, 1)), {"bins": 2.5}, "bins=2.5"),
        (np.zeros((10, 1)), np.zeros((10, 1)), {}, "latents has 1 column"),
        (np.zeros((0, 2)), np.zeros((0, 1)), {}, "latents is empty"),
        (np.zeros((10, 2)), np.zeros((10, 1)), {"factor_names": ["a", "b"]}, "factor_names"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(latents, factors, kwargs, match):
    fn = mig_details if "factor_names" in kwargs else mig
    with pytest.raises(ValueError, match=match):
        fn(latents, factors, **kwargs)

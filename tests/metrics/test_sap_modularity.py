"""SAP, modularity and explicitness: anchors on constructed codes and hand-computed values."""

import numpy as np
import pandas as pd
import pytest

from ppl_vae.metrics import mig_details, modularity_explicitness, sap, sap_details
from ppl_vae.metrics.modularity import modularity_from_mi
from ppl_vae.metrics.sap import sap_gaps


def binary_factors(n=1200, num=3, seed=0):
    return np.random.default_rng(seed).integers(0, 2, size=(n, num))


def test_sap_gap_by_hand():
    scores = np.array([[0.9, 0.5], [0.6, 0.55], [0.5, 0.8]])
    # factor 0: 0.9 - 0.6; factor 1: 0.8 - 0.55
    assert np.allclose(sap_gaps(scores), [0.3, 0.25])


def test_sap_perfect_code_noise_and_duplicate():
    f = binary_factors()
    rng = np.random.default_rng(1)
    perfect = f + 0.05 * rng.normal(size=f.shape)
    assert sap(perfect, f, num_train=800, num_test=400) > 0.45  # top 1, runner-up ~0.5: gap ~0.5
    noise = rng.normal(size=f.shape)
    assert sap(noise, f, num_train=800, num_test=400) < 0.1
    doubled = np.column_stack([perfect, perfect[:, 0]])  # factor 0 in two latents: no gap
    details = sap_details(doubled, pd.DataFrame(f, columns=["a", "b", "c"]), num_train=800,
                          num_test=400)
    assert list(details["factor"]) == ["a", "b", "c"]
    assert details["gap"].iloc[0] < 0.02 and details["gap"].iloc[1] > 0.45


def test_modularity_by_hand():
    mi = np.array([[2.0, 1.0], [0.0, 3.0], [0.0, 0.0]])
    # latent 0: squares 4, 1; delta = 1 / (4 * 1) -> 0.75; latent 1: 1; silent latent: 0
    assert np.allclose(modularity_from_mi(mi), [0.75, 1.0, 0.0])


def test_modularity_explicitness_anchors():
    f = np.random.default_rng(0).integers(0, 4, size=(2000, 3))
    z = (f - 1.5) + 0.05 * np.random.default_rng(1).normal(size=f.shape)
    good = modularity_explicitness(z, f, num_train=1500, num_test=500)
    assert good["modularity"] > 0.95 and good["explicitness"] > 0.95
    a = np.pi / 4
    mixed = z @ np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    assert modularity_explicitness(mixed, f, num_train=1500, num_test=500)["modularity"] < \
        good["modularity"] - 0.1
    noise = np.random.default_rng(2).normal(size=f.shape)
    bad = modularity_explicitness(noise, f, num_train=1500, num_test=500)
    assert abs(bad["explicitness"] - 0.5) < 0.05  # chance AUC
    with pytest.raises(ValueError, match="at least 2"):
        modularity_explicitness(z, np.column_stack([f[:, 0], np.zeros(2000)]))


def test_mig_details_takes_names_from_a_dataframe():
    f = binary_factors()
    frame = pd.DataFrame(f, columns=["shape", "scale", "pos_x"])
    assert list(mig_details(f.astype(float), frame)["factor"]) == ["shape", "scale", "pos_x"]

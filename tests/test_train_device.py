"""pv.fit's device option and dynamic binarization."""

from __future__ import annotations

import pytest
import torch

import ppl_vae as pv


@pytest.fixture(scope="module")
def grey():
    return pv.data.load("digits").x_train[:300]


def small():
    return pv.build("vae", latent_dim=3, decoder={"hidden": [16]}, guide={"hidden": [16]}, seed=1)


def test_device_option_moves_the_model_once(grey):
    model = small().double()
    res = pv.fit(model, (grey > 0.5).astype("float32"), steps=5, seed=0, progress=False,
                 device="cpu")
    assert next(res.model.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="device="):
        pv.fit(small(), (grey > 0.5).astype("float32"), steps=1, progress=False, device="gpu0")


def test_dynamic_binarization_draws_fresh_batches_and_resumes_exactly(grey, tmp_path):
    full = pv.fit(small(), grey, steps=12, batch_size=50, seed=3, progress=False,
                  binarize="dynamic")
    again = pv.fit(small(), grey, steps=12, batch_size=50, seed=3, progress=False,
                   binarize="dynamic")
    assert full.history["loss"].tolist() == again.history["loss"].tolist()
    fixed = pv.fit(small(), (grey > 0.5).astype("float32"), steps=12, batch_size=50, seed=3,
                   progress=False)
    assert full.history["loss"].tolist() != fixed.history["loss"].tolist()
    path = tmp_path / "c.pt"
    pv.fit(small(), grey, steps=5, batch_size=50, seed=3, progress=False, binarize="dynamic",
           checkpoint=path)
    resumed = pv.fit(small(), grey, steps=12, batch_size=50, seed=3, progress=False,
                     binarize="dynamic", checkpoint=path, resume=True)
    assert resumed.history["loss"].tolist() == full.history["loss"].tolist()
    with pytest.raises(ValueError, match="binarize"):
        pv.fit(small(), grey, steps=12, batch_size=50, seed=3, progress=False,
               checkpoint=path, resume=True)  # the checkpoint was written with dynamic draws


def test_dynamic_binarization_needs_probabilities(grey):
    with pytest.raises(ValueError, match=r"binarize='dynamic' needs x in \[0, 1\]"):
        pv.fit(small(), grey * 2, steps=1, progress=False, binarize="dynamic")
    with pytest.raises(ValueError, match="binarize="):
        pv.fit(small(), grey, steps=1, progress=False, binarize="sometimes")


def test_local_guide_parameters_follow_the_model_dtype(grey):
    model = pv.build("vae", latent_dim=2, guide={"kind": "local"}).double()
    res = pv.fit(model, (grey[:40] > 0.5).astype("float32"), steps=3, seed=0, progress=False)
    assert res.model.q.loc.dtype == torch.float64 and res.model.q.loc.shape == (40, 2)

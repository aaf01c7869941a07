"""A tiny trained VAE checkpoint shared by the CLI tests (50 steps, 2-D latent)."""

from __future__ import annotations

import pytest

import ppl_vae as pv


@pytest.fixture(scope="session")
def tiny_vae_checkpoint(tmp_path_factory):
    data = pv.data.load("digits", binarize=True)
    model = pv.build("vae", latent_dim=2, decoder={"hidden": [16]}, guide={"hidden": [16]})
    pv.fit(model, data.x_train[:200], steps=50, batch_size=50, lr=1e-2, seed=0, progress=False)
    return pv.save(model, tmp_path_factory.mktemp("ckpt") / "model.pt")

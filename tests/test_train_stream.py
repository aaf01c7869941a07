"""pv.fit on a lazily indexed source (pv.data.SpriteGrid) equals pv.fit on the same images in memory."""

from __future__ import annotations

import numpy as np
import pytest

import ppl_vae as pv


@pytest.fixture(scope="module")
def grid():
    return pv.data.SpriteGrid(size=16, grid="small", scales=2, orientations=4, positions=6)


def vae(grid):
    return pv.build("vae", data_dim=grid.data_dim, latent_dim=3, decoder={"hidden": [16]},
                    guide={"hidden": [16]}, seed=2)


def test_streamed_fit_equals_in_memory_fit(grid, tmp_path):
    images = grid.render(np.arange(len(grid)))
    streamed = pv.fit(vae(grid), grid, steps=15, batch_size=32, seed=0, progress=False)
    held = pv.fit(vae(grid), images, steps=15, batch_size=32, seed=0, progress=False)
    assert streamed.history["loss"].tolist() == held.history["loss"].tolist()
    # resuming a streamed run continues it exactly
    path = tmp_path / "c.pt"
    pv.fit(vae(grid), grid, steps=6, batch_size=32, seed=0, progress=False, checkpoint=path)
    resumed = pv.fit(vae(grid), grid, steps=15, batch_size=32, seed=0, progress=False,
                     checkpoint=path, resume=True)
    assert resumed.history["loss"].tolist() == streamed.history["loss"].tolist()


def test_streaming_needs_an_amortized_guide(grid):
    lvm = pv.build("lvm", data_dim=grid.data_dim, latent_dim=2, likelihood={"kind": "bernoulli"})
    with pytest.raises(ValueError, match="amortized guide"):
        pv.fit(lvm, grid, steps=1, progress=False)


class Lazy:
    """A user's lazily indexed dataset: only len() and [indices], default repr."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        return self.images[idx]


def test_any_lazy_source_resumes(grid, tmp_path):
    images = grid.render(np.arange(len(grid)))
    path = tmp_path / "c.pt"
    pv.fit(vae(grid), Lazy(images), steps=4, batch_size=32, seed=0, progress=False,
           checkpoint=path)
    resumed = pv.fit(vae(grid), Lazy(images), steps=8, batch_size=32, seed=0, progress=False,
                     checkpoint=path, resume=True)  # a new object with the same data
    full = pv.fit(vae(grid), images, steps=8, batch_size=32, seed=0, progress=False)
    assert resumed.history["loss"].tolist() == full.history["loss"].tolist()
    with pytest.raises(ValueError, match="data"):
        pv.fit(vae(grid), Lazy(1 - images), steps=8, batch_size=32, seed=0, progress=False,
               checkpoint=path, resume=True)

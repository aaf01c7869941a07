"""traversal_images: rows sorted by KL, column 0 is the start code, values around it."""

import pytest
import torch

import ppl_vae as pv
from ppl_vae.analysis.traversals import dimension_kl, traversal_images


@pytest.fixture(scope="module")
def model_and_x():
    model = pv.build("vae", data_dim=16, latent_dim=4, decoder={"hidden": [8]}, guide={"hidden": [8]})
    x = (torch.rand(60, 16, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    return model, x


def test_dimension_kl_sums_to_the_closed_form_kl(model_and_x):
    model, x = model_and_x
    q = model.encode(x)
    total = torch.distributions.kl_divergence(q, model.prior.distribution()).mean()
    torch.testing.assert_close(dimension_kl(model, x).sum(), total)


def test_rows_sorted_by_kl_and_start_column_decodes_the_start(model_and_x):
    model, x = model_and_x
    tr = traversal_images(model, x, index=5, k=2.0, steps=5)
    assert tr.images.shape == (4, 5, 16)
    assert sorted(tr.dims) == [0, 1, 2, 3]
    assert torch.all(tr.kl[:-1] >= tr.kl[1:])
    torch.testing.assert_close(tr.offsets, torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]))
    start = model.encode(x[5:6]).mean[0]
    torch.testing.assert_close(tr.start, start)
    centre = model.decode(start[None]).mean[0]
    for r in range(4):
        torch.testing.assert_close(tr.images[r, 2], centre)
    d = tr.dims[0]
    code = start.clone()
    code[d] = start[d] + 2.0
    torch.testing.assert_close(tr.images[0, 4], model.decode(code[None]).mean[0])
    assert tr.row_labels()[0].startswith(f"z{d}  KL=")


def test_seeded_start_and_given_code(model_and_x):
    model, x = model_and_x
    a = traversal_images(model, x, seed=3, max_rows=2)
    assert a.index == traversal_images(model, x, seed=3).index and a.images.shape[0] == 2
    b = traversal_images(model, x, z=torch.zeros(4))
    assert b.index is None and torch.equal(b.start, torch.zeros(4))
    with pytest.raises(ValueError, match="z has 3 coordinates.*\\[4\\]"):
        traversal_images(model, x, z=torch.zeros(3))
    with pytest.raises(ValueError, match="index=60 is out of range"):
        traversal_images(model, x, index=60)


def test_plot_writes_a_png(model_and_x, tmp_path):
    model, x = model_and_x
    fig = traversal_images(model, x, index=0).plot(tmp_path / "t.png", image_shape=(4, 4))
    assert (tmp_path / "t.png").stat().st_size > 0 and fig is not None

"""Tests for ppl_vae.plots: exact tiling, figures that render, and input validation."""

import matplotlib
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import torch

from ppl_vae import plots

H, W = 3, 5  # non-square on purpose: catches transposed reshapes


def _images(n, h=H, w=W):
    # image i is filled with a distinct value, so its block is identifiable
    return np.stack([np.full((h, w), (i + 1) / (n + 1)) for i in range(n)])


# --------------------------------------------------------------------------- tile_images


def test_tile_images_places_each_image_in_its_block():
    imgs = _images(7)
    out = plots.tile_images(imgs.reshape(7, -1), (H, W), nrow=3, pad=2, pad_value=-1.0)
    assert out.shape == (3 * (H + 2) + 2, 3 * (W + 2) + 2)
    for i in range(7):
        top, left = 2 + (i // 3) * (H + 2), 2 + (i % 3) * (W + 2)
        np.testing.assert_array_equal(out[top : top + H, left : left + W], imgs[i])
    # separators, border and the two empty cells hold exactly the pad value
    mask = np.ones_like(out, dtype=bool)
    for i in range(7):
        top, left = 2 + (i // 3) * (H + 2), 2 + (i % 3) * (W + 2)
        mask[top : top + H, left : left + W] = False
    assert np.all(out[mask] == -1.0)


def test_tile_images_keeps_pixel_layout_row_major():
    img = np.arange(H * W, dtype=float)
    out = plots.tile_images(img[None], (H, W), nrow=1, pad=0)
    np.testing.assert_array_equal(out, img.reshape(H, W))


def test_tile_images_default_nrow_is_near_square_and_nan_padding():
    out = plots.tile_images(torch.rand(10, H, W), nrow=None, pad=1)
    assert out.shape == (3 * (H + 1) + 1, 4 * (W + 1) + 1)  # ceil(sqrt(10)) = 4 per row
    assert np.isnan(out[0]).all() and np.isnan(out[:, 0]).all()


def test_tile_images_does_not_clip():
    out = plots.tile_images(np.full((1, 2, 2), 3.0), pad=0)
    assert np.all(out == 3.0)


def test_tile_images_validates():
    with pytest.raises(ValueError, match="image_shape"):
        plots.tile_images(np.zeros((2, 14)), (3, 5))
    with pytest.raises(ValueError, match="nrow"):
        plots.tile_images(np.zeros((2, 3, 5)), nrow=0)


# --------------------------------------------------------------------------- figures


def _check_png(path, *, min_px=150, max_px=5000):
    assert path.exists() and path.stat().st_size > 1000
    img = mpimg.imread(path)
    assert img.ndim == 3 and min_px <= img.shape[0] <= max_px and min_px <= img.shape[1] <= max_px
    assert img[..., :3].std() > 0.01  # not a blank canvas
    return img


def test_image_grid_writes_png_in_nested_folder(tmp_path):
    path = tmp_path / "a" / "b" / "grid.png"
    fig = plots.image_grid(
        torch.rand(12, H * W),
        image_shape=(H, W),
        path=path,
        nrow=4,
        title="samples",
        row_labels=["r0", "r1", "r2"],
        col_labels=list("abcd"),
        dpi=60,
    )
    assert isinstance(fig, matplotlib.figure.Figure)
    _check_png(path, min_px=80)


def test_image_grid_does_not_touch_pyplot_state(tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plots.image_grid(_images(4), path=tmp_path / "g.png", dpi=50)
    assert plt.get_fignums() == before


def test_image_grid_size_grows_with_the_grid(tmp_path):
    plots.image_grid(_images(4, 8, 8), path=tmp_path / "s.png", nrow=2, dpi=50)
    plots.image_grid(_images(64, 8, 8), path=tmp_path / "l.png", nrow=8, dpi=50)
    small, large = mpimg.imread(tmp_path / "s.png"), mpimg.imread(tmp_path / "l.png")
    assert large.shape[1] > 2 * small.shape[1]


def test_reconstruction_and_comparison_grids(tmp_path):
    x = np.random.default_rng(0).random((13, 64))
    plots.reconstruction_grid(x, x[::-1], image_shape=(8, 8), path=tmp_path / "r.png", dpi=60)
    _check_png(tmp_path / "r.png")
    plots.sample_comparison(
        {"prior": x[:9], "aggregated posterior": x[:4], "data": x},
        image_shape=(8, 8),
        path=tmp_path / "c.png",
        title="t",
        dpi=60,
    )
    img = _check_png(tmp_path / "c.png")
    assert img.shape[1] > 2 * img.shape[0]  # three panels side by side


def test_traversal_and_resynthesis_grids(tmp_path):
    imgs = torch.rand(4, 5, 64)
    plots.traversal_grid(
        imgs,
        image_shape=(8, 8),
        path=tmp_path / "t.png",
        row_labels=[f"z{i}  KL={i:.1f} nats" for i in range(4)],
        col_values=[-2, -1, 0, 1, 2],
        title="traversal",
        dpi=60,
    )
    _check_png(tmp_path / "t.png")
    plots.resynthesis_grid(
        imgs,
        image_shape=(8, 8),
        path=tmp_path / "r.png",
        scales=[-2, -1, 0, 1, 2],
        original=torch.rand(4, 64),
        dpi=60,
    )
    _check_png(tmp_path / "r.png")


def test_training_curve_and_bound_vs_k(tmp_path):
    steps = np.arange(200)
    hist = pd.DataFrame({"step": steps, "loss": 100 * np.exp(-steps / 30) + 20})
    hist["test_loss"] = np.where(steps % 50 == 0, hist["loss"] + 1, np.nan)
    plots.training_curve(hist, path=tmp_path / "c.png", extra=["test_loss"], dpi=60)
    _check_png(tmp_path / "c.png")
    ks = [1, 10, 100, 1000]
    frame = pd.DataFrame(
        {
            "K": ks * 2,
            "mean": np.r_[-95, -94, -93.5, -93.2, -96, -94, -93, -92.8],
            "label": ["vae"] * 4 + ["iwae"] * 4,
        }
    )
    frame["lo"], frame["hi"] = frame["mean"] - 0.5, frame["mean"] + 0.5
    plots.bound_vs_k(frame, path=tmp_path / "b.png", reference={"exact": -92.0}, dpi=60)
    _check_png(tmp_path / "b.png")


def test_latent_scatter_bars_and_histograms(tmp_path):
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(300, 2)), rng.integers(0, 10, 300)
    plots.latent_scatter(
        torch.as_tensor(z),
        labels=y,
        ood_mask=rng.random(300) < 0.1,
        class_means=True,
        path=tmp_path / "s.png",
        title="z",
        dpi=60,
    )
    _check_png(tmp_path / "s.png")
    frame = pd.DataFrame(
        [
            {"model": m, "metric": k, "value": rng.random(), "seed": s}
            for m in ("vae", "tcvae")
            for k in ("MIG", "AUROC")
            for s in range(3)
        ]
    )
    plots.metric_bars(frame, path=tmp_path / "m.png", title="metrics", dpi=60)
    _check_png(tmp_path / "m.png")
    plots.histogram_comparison(
        {"in": rng.normal(size=200), "out": np.r_[rng.normal(2, 1, 50), np.nan]},
        xlabel="score",
        vlines={"k-hat = 0.7": 0.7},
        path=tmp_path / "h.png",
        dpi=60,
    )
    _check_png(tmp_path / "h.png")


# --------------------------------------------------------------------------- validation


def test_wrong_image_shape_names_argument_and_fix(tmp_path):
    with pytest.raises(ValueError, match=r"image_shape=\(8, 8\) needs 64.*dataset.image_shape"):
        plots.image_grid(np.zeros((4, 63)), image_shape=(8, 8), path=tmp_path / "x.png")
    with pytest.raises(ValueError, match="image_shape is required"):
        plots.image_grid(np.zeros((4, 64)), path=tmp_path / "x.png")
    with pytest.raises(ValueError, match="image_shape"):
        plots.image_grid(np.zeros((4, 64)), image_shape=(8, 8, 3), path=tmp_path / "x.png")


def test_mismatched_lengths_raise(tmp_path):
    p = tmp_path / "x.png"
    with pytest.raises(ValueError, match="reconstructions"):
        plots.reconstruction_grid(np.zeros((4, 64)), np.zeros((5, 64)), image_shape=(8, 8), path=p)
    with pytest.raises(ValueError, match="col_values has 3 entries"):
        plots.traversal_grid(np.zeros((2, 5, 64)), image_shape=(8, 8), path=p, col_values=[0, 1, 2])
    with pytest.raises(ValueError, match="row_labels has 1 entries"):
        plots.traversal_grid(np.zeros((2, 5, 64)), image_shape=(8, 8), path=p, row_labels=["a"])
    with pytest.raises(ValueError, match="scales"):
        plots.resynthesis_grid(np.zeros((2, 5, 64)), image_shape=(8, 8), path=p, scales=[0, 1])
    with pytest.raises(ValueError, match="original has 3 images"):
        plots.resynthesis_grid(
            np.zeros((2, 2, 64)),
            image_shape=(8, 8),
            path=p,
            scales=[0, 1],
            original=np.zeros((3, 64)),
        )
    with pytest.raises(ValueError, match="labels has 3 entries"):
        plots.latent_scatter(np.zeros((4, 2)), labels=[0, 1, 2], path=p)
    with pytest.raises(ValueError, match="ood_mask"):
        plots.latent_scatter(np.zeros((4, 2)), ood_mask=[True], path=p)
    assert not p.exists()


def test_other_bad_inputs(tmp_path):
    p = tmp_path / "x.png"
    with pytest.raises(ValueError, match=r"z2 has shape \(4, 3\)"):
        plots.latent_scatter(np.zeros((4, 3)), path=p)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['loss'\]"):
        plots.training_curve(pd.DataFrame({"step": [0, 1]}), path=p)
    with pytest.raises(ValueError, match="NaN or inf"):
        plots.image_grid(np.full((2, 4), np.nan), image_shape=(2, 2), path=p)
    with pytest.raises(ValueError, match="extension"):
        plots.image_grid(np.zeros((2, 4)), image_shape=(2, 2), path=tmp_path / "noext")
    with pytest.raises(ValueError, match="error="):
        plots.metric_bars(
            pd.DataFrame({"model": ["a"], "metric": ["m"], "value": [1.0]}), path=p, error="iqr"
        )
    with pytest.raises(ValueError, match="grids must be a non-empty dict"):
        plots.sample_comparison({}, image_shape=(2, 2), path=p)

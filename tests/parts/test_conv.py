"""Convolutional encoder and decoder parts: shapes over leading dims, training, specs, errors."""

import numpy as np
import pytest
import torch

import ppl_vae as pv
from ppl_vae.parts.conv import ConvDecoder, ConvEncoder

# 16x16 sprites with two stride-2 convolutions: a 4x4 feature map, small and fast.
SMALL = {"image_shape": [16, 16], "channels": [4, 8], "hidden": [16]}


def _conv_vae(guide=None, **over):
    return pv.build("vae", data_dim=256, latent_dim=3, decoder={"kind": "conv", **SMALL},
                    guide={"kind": "conv", **SMALL, **(guide or {})}, **over)


def test_paper_architecture_on_64x64():
    model = pv.build("vae", data_dim=4096, latent_dim=10, decoder={"kind": "conv"},
                     guide={"kind": "conv"})
    convs = [m for m in model.q.net.convs if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    assert model.q.net.head[0].in_features == 4 * 4 * 64 and model.q.net.head[0].out_features == 256
    assert model.q.net.head[-1].out_features == 2 * 10
    deconvs = [m for m in model.decoder.deconvs if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [d.out_channels for d in deconvs] == [64, 32, 32, 1]
    assert model.decoder.start == (64, 4, 4)
    assert model.decoder(torch.zeros(2, 10)).shape == (2, 4096)


@pytest.mark.parametrize("lead", [(5,), (4, 5), (2, 3, 5)])
def test_networks_broadcast_over_leading_dims(lead):
    model = _conv_vae()
    z = torch.randn(*lead, 3)
    out = model.decoder(z)
    assert out.shape == (*lead, 256)
    # each row is decoded on its own: same numbers as decoding the flattened batch
    torch.testing.assert_close(out.reshape(-1, 256), model.decoder(z.reshape(-1, 3)))
    x = torch.rand(*lead, 256)
    enc = model.q.net(x)
    assert enc.shape == (*lead, 6)
    torch.testing.assert_close(enc.reshape(-1, 6), model.q.net(x.reshape(-1, 256)))
    q = model.q.distribution(x)
    assert q.batch_shape == lead and q.event_shape == (3,)


def test_image_rows_are_read_row_major():
    # An encoder that only sums the top-left pixel's 4x4 receptive field sees pixel (0, 0).
    enc = ConvEncoder((1, 4, 4), (1,), [], 1, "relu", where="guide")
    with torch.no_grad():
        conv = enc.convs[0]
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, 0, 1, 1] = 1.0  # output (0, 0) at padding 1 reads input (0, 0)
        lin = enc.head[0]
        lin.weight.zero_()
        lin.bias.zero_()
        lin.weight[0, 0] = 1.0
    x = torch.zeros(2, 16)
    x[0, 0] = 3.0  # (row 0, col 0)
    x[1, 1] = 3.0  # (row 0, col 1): not read by output (0, 0)
    assert enc(x)[:, 0].tolist() == [3.0, 0.0]


def test_conv_vae_trains_and_evaluates_on_sprites():
    data = pv.data.load("sprites", size=16, scales=2, orientations=2, positions=4)
    model = _conv_vae()
    x = torch.as_tensor(data.x_train[:96])
    before = pv.infer.elbo(model, x, num_particles=4, seed=0).mean()
    result = pv.fit(model, x, steps=30, batch_size=32, lr=3e-3, seed=0, progress=False)
    assert np.isfinite(result.history["loss"]).all()
    after = pv.infer.elbo(result.model, x, num_particles=4, seed=0).mean()
    assert after > before  # the reconstruction improves within a few steps
    ll = pv.infer.log_likelihood(result.model, x[:8], num_samples=16, seed=0)
    assert ll.log_px.shape == (8,) and torch.isfinite(ll.log_px).all()
    assert (ll.log_px <= 0).all()  # Bernoulli pixels: log p(x) <= 0


def test_spec_round_trip_rebuilds_the_same_weights():
    model = _conv_vae(seed=3)
    again = pv.build(model.spec)
    assert again.spec == model.spec
    assert model.spec["decoder"] == {"kind": "conv", "activation": "relu", **SMALL}
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)


def test_conv_guide_keeps_the_amortized_options():
    model = _conv_vae(guide={"covariance": "full"})
    q = model.q.distribution(torch.rand(4, 256))
    assert isinstance(q, torch.distributions.MultivariateNormal) and q.batch_shape == (4,)
    assert model.q.amortized and model.guide_fits(torch.rand(2, 256))
    flow = _conv_vae(guide={"flow": {"kind": "planar", "layers": 1}})
    qf = flow.q.distribution(torch.rand(3, 256))
    assert qf.log_prob(qf.rsample()).shape == (3,)


def test_square_side_derived_from_data_dim():
    dec = ConvDecoder(pv.parts.Context(1024, 2), channels=[8, 8])
    assert dec.image_shape == (1, 32, 32)
    chw = ConvDecoder(pv.parts.Context(3 * 8 * 4, 2), image_shape=[3, 8, 4], channels=[4, 4])
    assert chw(torch.zeros(5, 2)).shape == (5, 96)


@pytest.mark.parametrize(
    "data_dim, table, match",
    [
        (1000, {}, "not a square number"),
        (4096, {"image_shape": [32, 32]}, "holds 1024 values"),
        (36, {}, "height 6 does not fit 4 stride-2"),
        (256, {"image_shape": [16, 16], "channels": [8] * 5}, "divisible by 32"),
        (256, {"image_shape": 16}, "image_shape=16 is invalid"),
        (256, {"channels": []}, "channels=\\[\\] is invalid"),
        (256, {"channels": [8, 0]}, "channels\\[1\\]"),
        (256, {"activation": "swish"}, "activation"),
    ],
)
@pytest.mark.parametrize("table_name", ["decoder", "guide"])
def test_bad_image_shapes_are_value_errors(data_dim, table, match, table_name):
    with pytest.raises(ValueError, match=match) as err:
        pv.build("vae", data_dim=data_dim, latent_dim=2, **{table_name: {"kind": "conv", **table}})
    assert table_name in str(err.value)

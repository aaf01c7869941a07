"""The tcvae_dsprites presets: Chen et al. (2018)'s dSprites networks, MLP and convolutional."""

import pytest
import torch
from torch import nn

import ppl_vae as pv


def _layers(seq, kind):
    return [m for m in seq if isinstance(m, kind)]


def test_mlp_preset_has_chen_et_al_networks():
    model = pv.build("tcvae_dsprites")
    assert (model.data_dim, model.latent_dim) == (4096, 10)
    assert model.likelihood.binary_data and model.spec["likelihood"]["kind"] == "bernoulli"
    enc = _layers(model.q.net, nn.Linear)
    assert [(m.in_features, m.out_features) for m in enc] == [
        (4096, 1200), (1200, 1200), (1200, 20)]
    assert len(_layers(model.q.net, nn.ReLU)) == 2 and not _layers(model.q.net, nn.Tanh)
    dec = _layers(model.decoder.net, nn.Linear)
    assert [(m.in_features, m.out_features) for m in dec] == [
        (10, 1200), (1200, 1200), (1200, 1200), (1200, 4096)]
    assert len(_layers(model.decoder.net, nn.Tanh)) == 3 and not _layers(model.decoder.net, nn.ReLU)
    # beta = 6 is the weight of TC: loss = -ELBO + 5 TC
    assert model.spec["beta"] == 6.0 and model.objective.weights["tc"] == pytest.approx(5.0)
    assert model.kl_weight == 1.0 and model.spec["objective"]["estimator"] == "mss"


def test_conv_preset_has_the_conv_setting():
    model = pv.build("tcvae_dsprites_conv")
    convs = _layers(model.q.net.convs, nn.Conv2d)
    assert [c.out_channels for c in convs] == [32, 32, 64, 64]
    assert [m.out_features for m in _layers(model.q.net.head, nn.Linear)] == [512, 20]
    assert model.decoder.start == (64, 4, 4)
    assert model.spec["decoder"]["image_shape"] == [64, 64]


@pytest.mark.parametrize("preset", ["tcvae_dsprites", "tcvae_dsprites_conv"])
def test_presets_round_trip_and_fit_64x64_sprites(preset):
    model = pv.build(preset, seed=1)
    again = pv.build(model.spec)
    assert again.spec == model.spec
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
    x = pv.data.load("sprites", size=64, n=16, seed=0).x_train
    result = pv.fit(model, x, steps=2, batch_size=8, seed=0, progress=False)
    assert result.history["loss"].notna().all()

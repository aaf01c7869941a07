"""The graph presets (hierarchical, cvae, m2, vamp, mog_prior): what each promises."""

import pytest
import torch
from torch import nn

import ppl_vae as pv


def widths(seq):
    """(in, out) of every Linear layer and the activations of an nn.Sequential."""
    layers = [(m.in_features, m.out_features) for m in seq if isinstance(m, nn.Linear)]
    return layers, {type(m).__name__ for m in seq if not isinstance(m, nn.Linear)}


def test_hierarchical_is_burdas_two_stochastic_layer_architecture():
    model = pv.build("hierarchical")
    assert model.spec["latent"]["z1"]["dim"] == 100 and model.spec["latent"]["z2"]["dim"] == 50
    # q(z1 | x): 784-200-200-(100 means, 100 scales); q(z2 | z1): 100-100-100-(50, 50)
    assert widths(model.encoders["z1"].net) == ([(784, 200), (200, 200), (200, 200)], {"Tanh"})
    assert widths(model.encoders["z2"].net) == ([(100, 100), (100, 100), (100, 100)], {"Tanh"})
    # p(z1 | z2): 50-100-100-(100, 100); p(x | z1): 100-200-200-784
    assert widths(model.priors["z1"].net) == ([(50, 100), (100, 100), (100, 200)], {"Tanh"})
    assert widths(model.decoder.net) == ([(100, 200), (200, 200), (200, 784)], {"Tanh"})
    assert model.guide_order == ["z1", "z2"]


def test_cvae_conditions_prior_decoder_and_encoder_on_y(digits):
    model = pv.build("cvae")
    assert model.requires_labels and not model.enumerate and model.num_classes == 10
    assert model.given["z"] == ["x", "y"]
    x, y = digits.x_train[:64], digits.y_train[:64]
    # the prior depends on y: different classes, different p(z | y)
    means = model.priors["z"].distribution(torch.eye(10)).mean
    assert not torch.allclose(means[0], means[1])
    pv.fit(model, x, y=y, steps=30, batch_size=32, seed=0, progress=False)
    est = pv.infer.log_likelihood(model, x[:8], y[:8], num_samples=8, seed=0).log_px
    assert torch.isfinite(est).all()
    assert model.sample(4, y=[0, 1, 2, 3]).shape == (4, 64)


def test_m2_is_trained_with_enumeration_and_scores_unlabelled_data(digits):
    model = pv.build("m2", data_dim=64)
    assert model.enumerate and not model.requires_labels and model.num_classes == 10
    assert model.guide_order == ["y", "z"] and model.given["z"] == ["x", "y"]
    x, y = digits.x_train[:128], digits.y_train[:128]
    before = float(pv.infer.elbo(model, x, num_particles=2, seed=0).mean())
    pv.fit(model, x, steps=60, batch_size=64, seed=0, progress=False)  # unlabelled
    pv.fit(model, x, y=y, steps=60, batch_size=64, seed=0, progress=False)  # labelled
    after = float(pv.infer.elbo(model, x, num_particles=2, seed=0).mean())
    assert after > before + 1.0


def test_vamp_and_mog_prior_presets():
    vamp = pv.build("vamp")
    assert vamp.priors["z"].pseudo_inputs.shape == (500, 784)
    mog = pv.build("mog_prior")
    assert mog.priors["z"].means.shape == (10, 8)
    assert isinstance(mog.priors["z"].logits, nn.Parameter)


def test_m2_trains_on_labelled_and_unlabelled_rows_in_one_fit(digits):
    # y = -1 marks a missing label: each step draws a labelled and an unlabelled batch, and
    # the first loss is exactly the two bounds (labelled: y observed; unlabelled: y summed
    # out), each scaled to its own rows, per datapoint of the whole set
    from ppl_vae import _seed
    from ppl_vae.training import batches, bounds

    small = {"data_dim": 64, "latent": {"y": {"num_classes": 10}, "z": {"dim": 2}},
             "decoder": {"hidden": [16]}, "guide": {"hidden": [16]}, "seed": 0}
    x = torch.as_tensor(digits.x_train[:300])
    y = torch.as_tensor(digits.y_train[:300]).clone()
    y[100:] = -1
    result = pv.fit(pv.build("m2", **small), x, y, steps=3, batch_size=32, seed=5, progress=False)
    assert result.history.loss.notna().all()
    model = pv.build("m2", **small)
    bound = bounds.Bound(bounds.parse("elbo", 1), model)
    with _seed.seeded(5):
        i_l = batches.batch_indices(100, 32, 0, 5)
        i_u = batches.batch_indices(200, 32, 0, 5 ^ 1)
        loss = bound(model, x[:100][i_l], y[:100][i_l], i_l, 100, 0) \
            + bound(model, x[100:][i_u], None, i_u, 200, 0)
    assert result.history.loss.iloc[0] == pytest.approx(float(loss) / 300, rel=1e-6)
    with pytest.raises(ValueError, match="y contains label -2"):
        pv.fit(pv.build("m2", **small), x, torch.full((300,), -2), steps=1, progress=False)

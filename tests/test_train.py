"""pv.fit: learning, reproducibility, checkpoints and resume, divergence, bad input."""

import numpy as np
import pytest
import torch

import ppl_vae as pv
from ppl_vae import checkpoint as ckpt


def test_vae_elbo_rises_on_digits(digits):
    model = pv.build("vae", latent_dim=4, decoder={"hidden": [64]}, guide={"hidden": [64]})
    x_test = digits.x_test[:200]
    before = pv.infer.elbo(model, x_test, num_particles=5, seed=0).mean()
    result = pv.fit(model, digits.x_train, steps=300, batch_size=128, lr=3e-3, seed=0, progress=False)
    after = pv.infer.elbo(model, x_test, num_particles=5, seed=0).mean()
    assert after > before + 10, (before, after)  # ~44 -> ~25 nats: clearly learning
    h = result.history
    assert list(h.columns[:2]) == ["step", "loss"] and len(h) == 300
    assert h.loss.tail(50).mean() < h.loss.head(50).mean() - 5


def test_same_seed_same_history_bit_for_bit(digits):
    def run():
        model = pv.build("vae", latent_dim=2, decoder={"hidden": [16]}, guide={"hidden": [16]})
        return pv.fit(model, digits.x_train, steps=30, batch_size=64, seed=5, progress=False)

    a, b = run(), run()
    assert a.history.loss.tolist() == b.history.loss.tolist()
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)


def test_resume_continues_exactly_where_it_stopped(digits, tmp_path):
    def fresh():
        return pv.build("vae", latent_dim=2, decoder={"hidden": [16]}, guide={"hidden": [16]})

    full = pv.fit(fresh(), digits.x_train, steps=40, batch_size=64, seed=1, progress=False)
    path = tmp_path / "ck.pt"
    pv.fit(fresh(), digits.x_train, steps=25, batch_size=64, seed=1, progress=False,
           checkpoint=path, checkpoint_every=10)
    assert ckpt.read(path)["training"]["step"] == 25
    resumed = pv.fit(fresh(), digits.x_train, steps=40, batch_size=64, seed=1, progress=False,
                     checkpoint=path, resume=True)
    assert len(resumed.history) == 40
    assert resumed.history.loss.tolist() == full.history.loss.tolist()
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporaries


def test_local_guide_lvm_trains_and_resumes(tmp_path):
    data = pv.data.load("linear_gaussian", data_dim=4, latent_dim=1, n=200)
    model = pv.build("lvm", data_dim=4, latent_dim=1)
    path = tmp_path / "lvm.pt"
    pv.fit(model, data.x_train, steps=20, batch_size=50, lr=1e-2, progress=False, checkpoint=path)
    assert model.q.num_data == len(data.x_train)
    again = pv.load(path)  # local parameters are sized from the file
    assert again.q.num_data == len(data.x_train)
    assert torch.equal(again.q.loc, model.q.loc)


def test_non_finite_loss_stops_with_the_step_and_keeps_the_checkpoint(digits, tmp_path):
    model = pv.build("vae", latent_dim=2, decoder={"hidden": [16]}, guide={"hidden": [16]})
    forward, calls = model.decoder.forward, []

    def poisoned(z):  # the decoder breaks down from the 11th training step on
        calls.append(1)
        out = forward(z)
        return out * float("nan") if len(calls) > 10 else out

    model.decoder.forward = poisoned
    path = tmp_path / "ck.pt"
    with pytest.raises(pv.TrainingError, match=r"loss became nan at step 11: .*lower learning rate.*step 10"):
        pv.fit(model, digits.x_train, steps=20, batch_size=64, progress=False,
               checkpoint=path, checkpoint_every=5)
    kept = ckpt.read(path)
    assert kept["training"]["step"] == 10
    assert all(torch.isfinite(v).all() for v in kept["state_dict"].values())


@pytest.mark.parametrize(
    "x, fragment",
    [
        (np.full((5, 64), np.nan, dtype="float32"), "contains NaN or inf (first in row 0)"),
        (np.zeros((0, 64), dtype="float32"), "is empty"),
        (np.zeros((5, 10), dtype="float32"), "data dimension 10 but the model expects 64"),
        (np.full((5, 64), 0.5, dtype="float32"), "binarize=True or use likelihood.kind='continuous_bernoulli'"),
        (np.zeros((2, 3, 4)), "pass a 2-D array"),
    ],
)
def test_bad_data_is_refused_with_the_fix(x, fragment):
    with pytest.raises(ValueError) as err:
        pv.fit(pv.build("vae"), x, steps=1, progress=False)
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"steps": 0}, "steps=0 is invalid"),
        ({"steps": 2.5}, "steps=2.5 is invalid"),
        ({"batch_size": -1}, "batch_size=-1 is invalid"),
        ({"lr": 0.0}, "lr=0.0 is invalid"),
        ({"lr": float("nan")}, "lr=nan is invalid"),
        ({"resume": True}, "resume=True needs checkpoint"),
    ],
)
def test_bad_training_options(kwargs, fragment, digits):
    options = {"steps": 1, "progress": False, **kwargs}
    with pytest.raises(ValueError) as err:
        pv.fit(pv.build("vae"), digits.x_train, **options)
    assert fragment in str(err.value)


def test_continuous_bernoulli_and_normal_accept_grey_data(digits):
    grey = pv.data.load("digits").x_train[:100]
    for likelihood in ({"kind": "continuous_bernoulli"}, {"kind": "normal", "scale": "learned"}):
        model = pv.build("vae", latent_dim=2, likelihood=likelihood, decoder={"hidden": [8]},
                         guide={"hidden": [8]})
        result = pv.fit(model, grey, steps=3, progress=False)
        assert np.isfinite(result.history.loss).all()

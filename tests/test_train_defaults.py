"""pv.fit with default options reproduces the numbers of the original one-loop trainer.

The original trainer (``pv.fit`` as it was before optimisers, schedules,
objectives, validation and callbacks were added) is kept as
``benchmarks/_fit_baseline.py``. Both run here, in the same process on the same
machine (one thread, Pyro validation on, as in ``conftest.py``): the loss of
every step and every parameter afterwards must agree bit for bit. Comparing two
runs in one process, instead of numbers recorded elsewhere, keeps the test true
on any machine (float rounding of the same operations differs between CPUs and
BLAS builds, not between two runs of one build).
"""

import importlib.util
from pathlib import Path

import pytest
import torch

import ppl_vae as pv

BASELINE = Path(__file__).resolve().parents[1] / "benchmarks" / "_fit_baseline.py"


@pytest.fixture(scope="module")
def original_fit():
    spec = importlib.util.spec_from_file_location("_fit_baseline", BASELINE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fit


def _run(fit, name, digits, linear):
    small = {"latent_dim": 2, "decoder": {"hidden": [16]}, "guide": {"hidden": [16]}}
    if name == "vae":
        return fit(pv.build("vae", **small), digits.x_train, steps=8, batch_size=64, seed=3,
                   progress=False)
    if name == "vae_k2":
        return fit(pv.build("vae", **small), digits.x_train, steps=6, batch_size=64, seed=2,
                   lr=3e-3, num_particles=2, progress=False)
    model = (pv.build("gmm", data_dim=4, num_components=3) if name == "gmm"
             else pv.build("lvm", data_dim=4, latent_dim=1))
    return fit(model, linear.x_train, steps=6, batch_size=50, seed=0, lr=1e-2, progress=False)


@pytest.mark.parametrize("name", ["gmm", "lvm", "vae", "vae_k2"])
def test_default_fit_reproduces_the_original_trainer(name, digits, linear, original_fit):
    torch.set_num_threads(1)
    old = _run(original_fit, name, digits, linear)
    new = _run(pv.fit, name, digits, linear)
    assert new.history.loss.tolist() == old.history.loss.tolist()
    assert new.history.loss.iloc[-1] != new.history.loss.iloc[0]  # it trained
    old_params, new_params = old.model.state_dict(), new.model.state_dict()
    assert old_params.keys() == new_params.keys()
    for key, value in old_params.items():
        assert torch.equal(new_params[key], value), key
    assert list(new.history.columns[:3]) == ["step", "loss", "time"]

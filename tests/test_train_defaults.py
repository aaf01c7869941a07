"""pv.fit with default options reproduces the numbers of the original one-loop trainer.

The reference values were produced by ``pv.fit`` as it was before optimisers,
schedules, objectives, validation and callbacks were added (one thread, Pyro
validation on, as in ``conftest.py``): the loss of every step and the sum of all
parameters afterwards. The default path must reproduce them bit for bit.
"""

import pytest
import torch

import ppl_vae as pv

REFERENCE = {
    "vae": ([44.53781836752434, 44.44548635257302, 44.546535444193324, 44.41388864742698,
             44.1706390168637, 43.972308544853966, 43.922858353616135, 43.82057327885953],
            -7.69146595991333),
    "vae_k2": ([44.65390299026426, 44.38107397426982, 44.071260539812236, 43.80451364742698,
                43.548847140125176, 43.27852540420723], -11.578918883693404),
    "gmm": ([-1.4969074249267578, -1.543612575531006, -1.4278444290161132, -1.428542137145996,
             -1.5273027420043945, -1.5123626708984375], -21.494705080986023),
    "lvm": ([60.8060302734375, 33.305319213867186, 15.750740051269531, 8.790737915039063,
             6.027836608886719, 8.153594207763671], -360.4358396145981),
}


def _param_sum(model) -> float:
    return float(sum(p.detach().double().sum() for p in model.parameters()))


def _run(name, digits, linear):
    small = {"latent_dim": 2, "decoder": {"hidden": [16]}, "guide": {"hidden": [16]}}
    if name == "vae":
        return pv.fit(pv.build("vae", **small), digits.x_train, steps=8, batch_size=64, seed=3,
                      progress=False)
    if name == "vae_k2":
        return pv.fit(pv.build("vae", **small), digits.x_train, steps=6, batch_size=64, seed=2,
                      lr=3e-3, num_particles=2, progress=False)
    model = (pv.build("gmm", data_dim=4, num_components=3) if name == "gmm"
             else pv.build("lvm", data_dim=4, latent_dim=1))
    return pv.fit(model, linear.x_train, steps=6, batch_size=50, seed=0, lr=1e-2, progress=False)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_default_fit_reproduces_the_original_trainer(name, digits, linear):
    torch.set_num_threads(1)
    result = _run(name, digits, linear)
    losses, total = REFERENCE[name]
    assert result.history.loss.tolist() == losses
    assert _param_sum(result.model) == total
    assert list(result.history.columns[:3]) == ["step", "loss", "time"]

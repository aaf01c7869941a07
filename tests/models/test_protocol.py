"""Every built-in model satisfies pv.models.Model and declares its capabilities itself."""

import pytest
import torch

import ppl_vae as pv
from ppl_vae.models import Model
from ppl_vae.models.protocol import Model as ProtocolModel

CAPABILITIES = ("max_plate_nesting", "enumerate", "requires_labels")


@pytest.mark.parametrize("preset", pv.spec.presets())
def test_presets_satisfy_the_protocol(preset):
    model = pv.build(preset)
    assert isinstance(model, Model) and Model is ProtocolModel
    for name in CAPABILITIES:  # class attributes, not getattr defaults
        assert any(name in vars(cls) for cls in type(model).__mro__ if cls is not object), name
    assert isinstance(model.max_plate_nesting, int)
    assert isinstance(model.enumerate, bool) and isinstance(model.requires_labels, bool)


def test_capabilities_say_what_training_needs():
    assert pv.build("gmm").enumerate and not pv.build("vae").enumerate
    assert pv.build("rdvae").requires_labels and not pv.build("tcvae").requires_labels


def test_guide_fits_asks_the_guide_not_its_kind():
    x = torch.zeros(7, 64)
    assert pv.build("vae").guide_fits(x) and pv.build("gmm").guide_fits(x)
    lvm = pv.build("lvm")
    assert not lvm.guide_fits(x)
    lvm.initialize(x)
    assert lvm.guide_fits(x) and not lvm.guide_fits(x[:3])


def test_parts_declare_capabilities():
    from ppl_vae import registry

    assert registry.get("likelihood", "bernoulli").binary_data
    assert not registry.get("likelihood", "continuous_bernoulli").binary_data
    assert registry.get("guide", "amortized").amortized
    assert not registry.get("guide", "local").amortized

"""Specs: presets, TOML files, dict overrides, validation messages, round trips."""

import pytest
import torch

import ppl_vae as pv
from ppl_vae import spec as spec_mod


def test_presets_are_shipped():
    assert {"vae", "lvm", "gmm"} <= set(spec_mod.presets())


@pytest.mark.parametrize("name", ["vae", "lvm", "gmm"])
def test_spec_round_trips_through_build(name):
    model = pv.build(name, data_dim=16)
    again = pv.build(model.spec)
    assert again.spec == model.spec
    # Same seed in the spec -> same initial weights.
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)


def test_override_changes_one_key_and_keeps_the_rest():
    base = pv.build("vae")
    model = pv.build("vae", guide={"hidden": [32]})
    assert model.spec["guide"]["hidden"] == [32]
    assert model.spec["guide"]["covariance"] == base.spec["guide"]["covariance"]
    assert model.spec["decoder"] == base.spec["decoder"]


def test_changing_a_part_kind_drops_keys_of_the_old_kind():
    model = pv.build("lvm", guide={"kind": "amortized"})
    assert model.spec["guide"]["kind"] == "amortized"
    assert "init_scale" not in model.spec["guide"]
    assert model.q.amortized


def test_dict_spec_gets_family_defaults():
    model = pv.build({"family": "vae", "latent_dim": 3})
    assert model.spec["latent_dim"] == 3
    assert model.spec["likelihood"]["kind"] == "bernoulli"


def test_toml_file_spec(tmp_path):
    path = tmp_path / "my.toml"
    path.write_text(
        'family = "vae"\ndata_dim = 10\nlatent_dim = 2\n'
        '[likelihood]\nkind = "normal"\nscale = "learned"\n'
        '[decoder]\nkind = "mlp"\nhidden = []\n'
    )
    model = pv.build(path)
    assert model.spec["likelihood"] == {"kind": "normal", "scale": "learned"}
    assert model.decoder.is_linear


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"family": "nope"}, "family='nope' is not a known family; valid: "),
        ({"latent_dim": 0}, "latent_dim=0 is invalid"),
        ({"latnet_dim": 2}, "unknown key 'latnet_dim'; valid keys:"),
        ({"guide": {"kind": "magic"}}, "guide.kind='magic' is not a known guide; valid: amortized, conv, local"),
        ({"guide": {"hiden": [3]}}, "unknown key guide.'hiden'"),
        ({"decoder": {"activation": "sigmoidal"}}, "decoder.activation='sigmoidal' is not recognised"),
        ({"likelihood": {"kind": "normal", "scale": -1.0}}, "likelihood.scale=-1.0 is invalid"),
        ({"guide": {"covariance": "banded"}}, "guide.covariance='banded'"),
        ({"penalty": [{"kind": "nonsense"}]}, "penalty[0].kind='nonsense' is not a known penalty"),
        ({"training": {"steps": 10}}, ("pass those options to pv.fit(model, x, ...), or train "
                                      "with `ppl-vae train --spec FILE`")),
    ],
)
def test_bad_specs_name_the_key_and_the_valid_values(kwargs, fragment):
    with pytest.raises(ValueError) as err:
        pv.build("vae", **kwargs)
    assert fragment in str(err.value)


def test_unknown_preset_lists_presets():
    with pytest.raises(ValueError, match="presets: .*vae"):
        pv.build("vea")


def test_invalid_toml_is_a_value_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("family = ")
    with pytest.raises(ValueError, match="not valid TOML"):
        pv.build(path)


def test_numpy_values_in_a_spec_mean_what_python_values_do():
    import numpy as np

    a = pv.build("vae", latent_dim=np.int64(2), decoder={"hidden": np.array([8, 8])},
                 objective={"kl": np.float32(0.5)})
    b = pv.build("vae", latent_dim=2, decoder={"hidden": [8, 8]}, objective={"kl": 0.5})
    assert a.spec == b.spec
    assert type(a.spec["latent_dim"]) is int and type(a.spec["decoder"]["hidden"][0]) is int

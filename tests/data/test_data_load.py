"""The load() dispatcher: names, paths and its error messages."""

import numpy as np
import pytest

from ppl_vae import data


def test_every_documented_name_is_registered():
    names = {"digits", "sprites", "gmm_synthetic", "linear_gaussian", "mnist", "dsprites",
             "shapes3d"}
    assert set(data.LOADERS) == names
    for name in names:
        assert name in data.__doc__


def test_load_dispatches_to_the_named_loader():
    ds = data.load("linear_gaussian", n=10)
    assert isinstance(ds, data.Dataset) and ds.name == "linear_gaussian"
    np.testing.assert_array_equal(ds.x_train, data.load_linear_gaussian(n=10).x_train)


@pytest.mark.parametrize("bad", ["mnsit", "Digits", "data/file.csv", 3, None])
def test_unknown_name_lists_valid_names(bad):
    with pytest.raises(ValueError, match="digits, sprites, gmm_synthetic, linear_gaussian, mnist"):
        data.load(bad)


def test_unknown_option_names_option_and_valid_ones():
    with pytest.raises(ValueError, match=r"'latent' for dataset 'linear_gaussian'.*latent_dim"):
        data.load("linear_gaussian", latent=2)

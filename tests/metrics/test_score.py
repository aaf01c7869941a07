"""pv.metrics.score: a tidy frame with factor names, on a Dataset and on a SpriteGrid."""

import numpy as np
import pytest
import torch

import ppl_vae as pv


class FactorEncoder:
    """A stand-in model whose 'encoder mean' is a fixed linear map of the data."""

    def __init__(self, weights):
        self.weights = torch.as_tensor(weights, dtype=torch.float32)

    def encode(self, x):
        return torch.distributions.Normal(x @ self.weights, 1.0)


def test_score_on_a_dataset_carries_factor_names_and_matches_the_metrics():
    f = np.random.default_rng(0).integers(0, 3, size=(900, 3)).astype(float)
    x = f + 0.05 * np.random.default_rng(1).normal(size=f.shape)
    data = pv.data.Dataset(name="toy", x_train=x, x_test=x[:10], factors_train=f,
                           factors_test=f[:10], factor_names=("a", "b", "c"))
    model = FactorEncoder(np.eye(3))
    frame = pv.metrics.score(model, data, ["mig", "sap", "dci", "factorvae"], seed=0,
                             options={"factorvae": {"num_train": 200, "num_eval": 100}})
    assert list(frame.columns) == ["metric", "factor", "value"]
    mig_rows = frame[frame.metric == "mig"]
    assert list(mig_rows.factor) == ["all", "a", "b", "c"]
    value = frame.set_index(["metric", "factor"])["value"]
    assert value["mig", "all"] == pytest.approx(pv.metrics.mig(x.astype(np.float32), f), abs=1e-6)
    assert value["factorvae_score", "all"] == 1.0
    assert value["dci_disentanglement", "all"] > 0.9


def test_score_on_a_sprite_grid_draws_fresh_combinations():
    grid = pv.data.SpriteGrid(size=16, grid="small")
    model = FactorEncoder(np.random.default_rng(0).normal(size=(256, 4)))
    frame = pv.metrics.score(model, grid, ["mig", "betavae"], max_points=300,
                             options={"betavae": {"num_train": 40, "num_eval": 20}})
    assert set(frame.factor) == {"all", "shape", "scale", "orientation", "pos_x", "pos_y"}
    assert frame.value.between(0, 1).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"metrics": ["mig", "nope"]}, "metrics=.*is invalid"),
    ({"metrics": ["mig"], "options": {"sap": {}}}, "options has keys"),
])
def test_bad_arguments_are_refused(kwargs, message):
    data = pv.data.load("digits")
    with pytest.raises(ValueError, match=message):
        pv.metrics.score(FactorEncoder(np.eye(64)[:, :2]), data, **kwargs)


def test_data_without_factors_is_refused():
    with pytest.raises(ValueError, match="has no ground-truth factors"):
        pv.metrics.score(FactorEncoder(np.eye(64)[:, :2]), pv.data.load("digits"), ["mig"])

"""FitConfig: one default and one check per option, a round trip through TOML and JSON."""

import json
import tomllib

import pytest

import ppl_vae as pv
from ppl_vae.training import FitConfig


def _toml(table: dict) -> str:
    """A flat TOML writer for the test (values are str, int, float, bool or flat tables)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return repr(v)
    return "\n".join(f"{k} = {value(v)}" for k, v in table.items() if v is not None)


def test_defaults_are_pv_fits():
    cfg = FitConfig()
    assert (cfg.steps, cfg.batch_size, cfg.lr, cfg.seed, cfg.bound) == (2000, 128, 1e-3, 0, "elbo")
    assert cfg.bound_spec == {"kind": "elbo", "num_samples": 1, "alpha": None}


def test_round_trip_through_json_and_toml():
    cfg = FitConfig(steps=300, bound={"kind": "renyi", "alpha": 0.5, "num_samples": 3},
                    lr_schedule={"kind": "StepLR", "step_size": 10, "gamma": 0.5},
                    early_stopping={"patience": 3, "min_delta": 0.1}, val_iwae=5, clip_norm=10.0)
    assert FitConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert FitConfig.from_dict(tomllib.loads(_toml(cfg.to_dict()))) == cfg


@pytest.mark.parametrize(
    "table, fragment",
    [
        ({"steps": 0}, "steps=0"),
        ({"lr": "abc"}, "lr="),
        ({"stepz": 5}, "unknown training option 'stepz'"),
        ({"bound": "vi"}, "bound='vi' is not recognised"),
        ({"progress": "yes"}, "progress='yes' is invalid"),
        ({"objective": "iwae", "bound": "iwae"}, "keep bound"),
    ],
)
def test_bad_values_are_refused_naming_the_option(table, fragment):
    with pytest.raises(ValueError) as err:
        FitConfig.from_dict(table)
    assert fragment in str(err.value)


def test_a_callable_cannot_be_written_to_a_file():
    cfg = FitConfig(lr_schedule=lambda opt: None)
    with pytest.raises(ValueError, match="lr_schedule=.* cannot be written to a file"):
        cfg.to_dict()


def test_fit_takes_a_config_and_keywords_replace_its_fields(digits):
    small = {"latent_dim": 2, "decoder": {"hidden": [8]}, "guide": {"hidden": [8]}}
    cfg = FitConfig(steps=4, batch_size=64, seed=5, progress=False)
    a = pv.fit(pv.build("vae", **small), digits.x_train, config=cfg)
    b = pv.fit(pv.build("vae", **small), digits.x_train, steps=4, batch_size=64, seed=5,
               progress=False)
    assert a.history.loss.tolist() == b.history.loss.tolist()  # same process, same numbers
    c = pv.fit(pv.build("vae", **small), digits.x_train, config=cfg, steps=2)
    assert len(c.history) == 2
    with pytest.raises(ValueError, match="config=.* is invalid"):
        pv.fit(pv.build("vae", **small), digits.x_train, config={"steps": 2})

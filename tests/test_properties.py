"""Property tests: generated specs, arrays and byte strings get an answer or a
ValueError — never another exception.

Example counts are modest (CI time); the memory budget is lowered so that specs
that would allocate gigabytes are refused (by the size check) instead of built.
"""

from __future__ import annotations

import gzip
import os
import struct
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ppl_vae as pv
from ppl_vae.data import read_idx

PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SMALL_BUDGET = {"PPL_VAE_MEMORY_BUDGET": "64M"}

# -- specs ------------------------------------------------------------------------------

small = st.integers(1, 6)
junk = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
    st.lists(st.integers(-2, 10**9), max_size=3),
)
value = st.one_of(small, small, junk)
widths = st.one_of(st.lists(st.integers(1, 16), max_size=2), junk)
PART_KEYS = {
    "prior": st.fixed_dictionaries(
        {"kind": st.sampled_from(["standard_normal", "class_conditional", "laplace"])},
        optional={"scale": value, "spread": value}),
    "likelihood": st.fixed_dictionaries(
        {"kind": st.sampled_from(["bernoulli", "continuous_bernoulli", "normal", "nope"])},
        optional={"scale": st.one_of(st.just("learned"), value)}),
    "decoder": st.fixed_dictionaries(
        {"kind": st.sampled_from(["mlp", "nope"])},
        optional={"hidden": widths, "activation": st.sampled_from(["relu", "tanh", "bogus"])}),
    "guide": st.fixed_dictionaries(
        {"kind": st.sampled_from(["amortized", "local"])},
        optional={"hidden": widths, "covariance": st.sampled_from(["diagonal", "full", 3]),
                  "init_scale": value}),
    "objective": st.dictionaries(
        st.sampled_from(["kl", "tc", "mi", "dimwise_kl", "estimator"]),
        st.one_of(value, st.sampled_from(["mss", "mws"])), max_size=3),
    "penalty": st.lists(st.fixed_dictionaries(
        {"kind": st.sampled_from(["repulsion", "total_correlation", "kl", "nope"])},
        optional={"weight": value, "rho": value}), max_size=2),
}
specs = st.fixed_dictionaries(
    {"family": st.sampled_from(["vae", "tcvae", "lvm", "rdvae", "gmm", "bogus"])},
    optional={"data_dim": value, "latent_dim": value, "beta": value, "seed": value,
              "num_components": value, "num_classes": value, **PART_KEYS},
)


@PROPERTY
@given(spec=specs)
def test_generated_specs_build_and_round_trip_or_raise_value_error(spec):
    with mock.patch.dict(os.environ, SMALL_BUDGET):
        try:
            model = pv.build(spec)
        except ValueError:
            return
        again = pv.build(model.spec)
    assert again.spec == model.spec
    first, second = model.state_dict(), again.state_dict()
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


# -- arrays in .npz files ---------------------------------------------------------------

dtypes = st.sampled_from([np.float32, np.float64, np.int8, np.uint8, np.int64, np.bool_,
                          np.complex64, np.dtype("U3"), np.dtype("S2"), np.float16])
arrays = hnp.arrays(dtype=dtypes, shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                         max_side=5))


@PROPERTY
@given(x=arrays, y=st.one_of(st.none(), arrays))
def test_npz_loader_on_generated_arrays(x, y):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.npz"
        np.savez(path, x=x, **({} if y is None else {"y": y}))
        try:
            ds = pv.data.load(path)
        except ValueError:
            return
    assert ds.x_train.dtype == np.float32 and np.isfinite(ds.x_train).all()
    assert len(ds.x_train) + len(ds.x_test) == len(x)


# -- byte strings as files --------------------------------------------------------------

idx_header = st.builds(
    lambda code, dims: bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims),
    st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07]),
    st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 4), min_size=0, max_size=3),
)
idx_bytes = st.one_of(st.binary(max_size=300), st.builds(bytes.__add__, idx_header,
                                                         st.binary(max_size=64)))


@PROPERTY
@given(data=idx_bytes, compress=st.booleans())
def test_idx_reader_on_generated_bytes(data, compress):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("f.gz" if compress else "f")
        path.write_bytes(gzip.compress(data) if compress else data)
        try:
            arr = read_idx(path, memory_budget="1M")
        except ValueError:
            return
    assert arr.size * arr.itemsize == len(data) - 4 - 4 * data[3]


@PROPERTY
@given(data=st.binary(max_size=400))
def test_npz_and_checkpoint_loaders_on_generated_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        for name, load in (("d.npz", pv.data.load), ("m.pt", pv.load)):
            path = Path(tmp) / name
            path.write_bytes(data)
            try:
                load(path)
            except ValueError:
                continue


CHECKPOINT = None


def _checkpoint_bytes() -> bytes:
    global CHECKPOINT
    if CHECKPOINT is None:
        with tempfile.TemporaryDirectory() as tmp:
            model = pv.build("vae", latent_dim=2, decoder={"hidden": [4]}, guide={"hidden": [4]})
            pv.save(model, Path(tmp) / "m.pt")
            CHECKPOINT = (Path(tmp) / "m.pt").read_bytes()
    return CHECKPOINT


@PROPERTY
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                      min_size=1, max_size=4),
       cut=st.one_of(st.none(), st.floats(0, 1)))
def test_checkpoint_loader_on_damaged_checkpoints(edits, cut):
    data = bytearray(_checkpoint_bytes())
    for where, byte in edits:
        data[int(where * len(data))] = byte
    if cut is not None:
        data = data[: int(cut * len(data))]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.pt"
        path.write_bytes(bytes(data))
        try:
            model = pv.load(path)
        except ValueError:
            return
    assert isinstance(model, pv.models.Model)

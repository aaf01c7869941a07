"""A Ray address where nothing listens is refused at once, naming the address and the fix.

Only the loopback interface is contacted: port 1 on 127.0.0.1 is closed (nothing
listens on it on a test machine), so the connection is refused immediately.
"""

from __future__ import annotations

import time

import pytest

import ppl_vae.study as ps
from ppl_vae.study import ray_executor
from tests.study.test_study_runner import _study

ray = pytest.importorskip("ray")

CLOSED = "127.0.0.1:1"


@pytest.fixture
def no_ray_instance():
    if ray.is_initialized():
        ray.shutdown()
    yield
    assert not ray.is_initialized()  # nothing was started


@pytest.mark.parametrize("given", ["argument", "environment"])
def test_unreachable_address_fails_fast(tmp_path, monkeypatch, no_ray_instance, given):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    kwargs = {"address": CLOSED}
    if given == "environment":
        monkeypatch.setenv("RAY_ADDRESS", CLOSED)
        kwargs = {}
    start = time.perf_counter()
    with pytest.raises(ValueError) as err:
        ps.run(_study(), seeds=1, out=tmp_path, executor="ray", progress=False, **kwargs)
    assert time.perf_counter() - start < ray_executor.CONNECT_SECONDS + 5
    name = "address" if given == "argument" else "$RAY_ADDRESS"
    message = str(err.value)
    assert message.startswith(f"{name}='127.0.0.1:1': no Ray cluster answers there")
    assert "ray start --head" in message and "unset RAY_ADDRESS" in message
    assert not list((tmp_path / "toy" / "trials").glob("*.claim"))  # nothing claimed


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:http", "ray://:6379"])
def test_malformed_address_is_named(address):
    with pytest.raises(ValueError, match=rf"^address='{address}' is not a Ray address: pass host:port"):
        ray_executor.check_address(address)


def test_ray_client_address_is_probed_on_its_port():
    with pytest.raises(ValueError, match=r"^address='ray://127.0.0.1:1': no Ray cluster answers"):
        ray_executor.check_address("ray://127.0.0.1:1")

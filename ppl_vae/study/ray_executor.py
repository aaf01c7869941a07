"""Trials as Ray tasks: on a local instance (loopback only) or on a cluster.

The same :func:`~ppl_vae.study.executors.execute_trial` as the other executors
runs inside each task; the trial function travels once through the object
store, results come back as they finish (``ray.wait``), and at most ``workers``
trials (and, on CUDA, as many as the cluster's GPUs allow) are in flight.

A local instance is started on the loopback interface only (:func:`start_local_ray`):
nothing listens on other interfaces unless the user names a cluster (``address=``
or ``$RAY_ADDRESS``). Workers stay warm across runs from the same driver on the
same instance.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import sys
import time
from collections.abc import Callable, Mapping

import torch

from .._checks import positive_int
from .executors import (
    POLL_SECONDS,
    _first_line,
    _single_thread_worker,
    _source,
    cpu_count,
    execute_trial,
)


def ray_device(device: str | None, *, cluster_gpus: float) -> str | None:
    """Where a Ray trial runs, given a checked ``device`` and the cluster's GPU count.

    None and ``"cpu"`` stay; ``"auto"`` is ``"cuda"`` when the cluster has GPUs, else
    ``"cpu"``; ``"cuda"`` on a cluster without GPUs is a ValueError (its tasks
    would wait for a GPU forever).
    """
    if device == "auto":
        return "cuda" if cluster_gpus > 0 else "cpu"
    if device == "cuda" and cluster_gpus <= 0:
        raise ValueError(
            "device='cuda' but the Ray cluster has no GPUs: pass device='auto' or 'cpu', "
            "or add GPU nodes to the cluster"
        )
    return device


def ray_task_options(device: str | None, *, gpus_per_trial: float | None = None) -> dict:
    """Ray resources of one trial task: one CPU, plus GPUs when it runs on CUDA.

    ``gpus_per_trial`` (default 1) may be a fraction, so that several small trials
    share a GPU; trials on the CPU ask for none (a GPU request would keep them
    waiting for a GPU they do not use).
    """
    options = {"num_cpus": 1, "max_retries": 1}
    if device is not None and torch.device(device).type == "cuda":
        options["num_gpus"] = 1.0 if gpus_per_trial is None else float(gpus_per_trial)
    return options


def _import_ray():
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            "executor='ray' needs Ray, which is not installed: "
            "pip install 'ppl_vae[ray]' (or use executor='local')"
        ) from err
    return ray


#: Seconds :func:`check_address` waits for a cluster's head to accept a connection.
CONNECT_SECONDS = 5.0

_ADDRESS_FIX = (
    "start the cluster (ray start --head) and pass its head's host:port, "
    "or unset RAY_ADDRESS and drop address= to run on a local instance"
)


def _host_port(address: str, name: str) -> tuple[str, int]:
    """``"host:port"`` or ``"ray://host:port"`` -> (host, port), a ValueError otherwise."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rstrip("/").rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{name}={address!r} is not a Ray address: pass host:port "
                         f"(e.g. 127.0.0.1:6379), or 'auto'; or {_ADDRESS_FIX}")
    return host.strip("[]"), int(port)


def check_address(address: str, *, name: str = "address", timeout: float = CONNECT_SECONDS) -> None:
    """Fail fast when nothing accepts connections at the Ray cluster ``address``.

    ``ray.init(address=...)`` retries an unreachable head for minutes; one TCP
    connection attempt to the head's host and port (the address the user gave, and
    no other), waiting at most ``timeout`` seconds, answers the same question at
    once. ``"auto"`` and ``"local"`` (Ray's own look-ups of an instance on this
    machine) are left to Ray. ``name`` is what the message calls the setting
    (``address`` or ``$RAY_ADDRESS``).
    """
    if address in ("auto", "local"):
        return
    host, port = _host_port(address, name)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        raise ValueError(
            f"{name}={address!r}: no Ray cluster answers there "
            f"({type(err).__name__}: {err} within {timeout:g} s): {_ADDRESS_FIX}"
        ) from None


#: Ray (2.x) reads this to decide whether a node is reachable from other machines;
#: "0" makes a local instance advertise and bind 127.0.0.1 only.
_RAY_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextlib.contextmanager
def _loopback_only(ray):
    """Start Ray's processes on 127.0.0.1: no listener on any other interface.

    Ray binds its servers to the node's address; with clusters disabled (its own
    switch for single-machine use) that address is the loopback one. The switch
    is an environment variable, read by the processes Ray starts, and a constant
    of the already imported driver module; both are restored afterwards.
    """
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    old_env = os.environ.get(_RAY_CLUSTER_ENV)
    old_flag = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    os.environ[_RAY_CLUSTER_ENV] = "0"
    if old_flag is not None:
        constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if old_env is None:
            os.environ.pop(_RAY_CLUSTER_ENV, None)
        else:
            os.environ[_RAY_CLUSTER_ENV] = old_env
        if old_flag is not None:
            constants.ENABLE_RAY_CLUSTER = old_flag


def start_local_ray(*, num_cpus: int) -> None:
    """Start (and connect this process to) a local Ray instance on 127.0.0.1 only.

    What :func:`run_ray` does when there is no instance to join; call it first to
    keep one instance (and its warm workers) for several runs, and ``ray.shutdown()``
    when done.

    Examples
    --------
    Starting Ray takes seconds, so that part is not run here (``num_cpus`` is checked
    before anything starts):

    >>> import pytest
    >>> ray = pytest.importorskip("ray")                 # pip install 'ppl_vae[ray]'
    >>> import ppl_vae as pv
    >>> pv.study.start_local_ray(num_cpus=0)
    Traceback (most recent call last):
        ...
    ValueError: num_cpus=0 is invalid: pass a number of CPUs >= 1
    >>> pv.study.start_local_ray(num_cpus=2)                       # doctest: +SKIP
    >>> df = pv.study.run("gmm_vs_em", executor="ray", size="small")  # doctest: +SKIP
    >>> ray.shutdown()                                              # doctest: +SKIP
    """
    ray = _import_ray()
    num_cpus = positive_int("num_cpus", num_cpus, fix="pass a number of CPUs >= 1")
    with _loopback_only(ray):
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            logging_level="WARNING",
            _node_ip_address="127.0.0.1",
        )


def _execute_on_ray(
    trial_blob: bytes, driver_path: list[str], key: str, config: dict, seed, device=None
):
    # A local Ray worker does not inherit the driver's sys.path; add the driver's
    # entries that exist here so the trial's module (a script folder, a test
    # folder) imports as it did in the driver. Appended, so nothing is shadowed.
    for entry in driver_path:
        if entry and entry not in sys.path and os.path.isdir(entry):
            sys.path.append(entry)
    trial = pickle.loads(trial_blob)
    _single_thread_worker()
    return execute_trial(trial, key, config, seed, device)


def _in_flight_limit(resources: Mapping, options: Mapping) -> int:
    """How many trial tasks the cluster can run at once with these task ``options``."""
    limit = int(resources.get("CPU", 1) // options["num_cpus"])
    if options.get("num_gpus"):
        limit = min(limit, int(resources.get("GPU", 0) // options["num_gpus"]))
    return max(1, limit)


def run_ray(
    trial: Callable,
    jobs,
    on_done: Callable[[dict], None],
    *,
    address: str | None,
    workers: int | None,
    device: str | None = None,
    gpus_per_trial: float | None = None,
) -> None:
    """Run ``jobs`` as Ray tasks (one CPU each), storing results as they complete.

    ``device`` (checked by :func:`check_device`) is settled against the cluster by
    :func:`ray_device` before any task starts; trials on CUDA also ask Ray for
    ``gpus_per_trial`` GPUs (default 1, see :func:`ray_task_options`).

    Uses the Ray instance this process is already connected to if there is one;
    otherwise connects to ``address`` (or ``$RAY_ADDRESS``), or else starts a local
    instance with ``workers`` CPUs (default: the CPU count) that is shut down again
    at the end. The local instance listens on 127.0.0.1 only, without a dashboard;
    to use other machines start a cluster (``ray start --head``) and pass its
    address. The trial is shipped once, through the object store, with Ray's
    cloudpickle; on a remote cluster the modules it imports (ppl_vae, the study)
    must be installed on the workers.

    A Ray worker imports torch and ppl_vae on its first task, once per job (driver
    process): several runs in one process on one instance (see
    :func:`start_local_ray`) reuse warm workers, as process pools reuse the fork
    server.

    Raises
    ------
    RuntimeError
        When a task fails outside the trial (a worker died, or could not import the
        trial); trials finished so far are stored, so running again resumes.
    """
    ray = _import_ray()
    from ray import cloudpickle

    started = False
    if not ray.is_initialized():
        name = "address" if address else "$RAY_ADDRESS"
        address = address or os.environ.get("RAY_ADDRESS")
        if address:
            check_address(address, name=name)
            ray.init(address=address, logging_level="WARNING")
        else:
            start_local_ray(num_cpus=workers or cpu_count())
        started = True
    running: dict = {}
    try:
        resources = ray.cluster_resources()
        device = ray_device(device, cluster_gpus=resources.get("GPU", 0))
        options = ray_task_options(device, gpus_per_trial=gpus_per_trial)
        remote = ray.remote(**options)(_execute_on_ray)
        trial_ref = ray.put(cloudpickle.dumps(trial))
        driver_path = [entry or os.getcwd() for entry in sys.path]  # '' means the cwd
        # Keep at most `workers` tasks in flight (default: as many as the cluster's
        # CPUs and GPUs can run), so trials are claimed only as they can start.
        limit = workers or _in_flight_limit(resources, options)
        source = _source(jobs)

        def submit():
            while len(running) < limit and (job := source.take()) is not None:
                args = (trial_ref, driver_path, job["key"], job["config"], job["seed"], device)
                running[remote.remote(*args)] = job

        while True:
            submit()
            if not running:
                if source.exhausted():
                    break
                time.sleep(POLL_SECONDS)
                continue
            done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS)
            if not done:
                continue
            job = running.pop(done[0])
            try:
                record = ray.get(done[0])
            except ray.exceptions.RayError as err:
                raise RuntimeError(
                    f"Ray task for config {job['config']} seed {job['seed']} failed outside "
                    f"the trial ({type(err).__name__}: {_first_line(err)}). Finished trials are "
                    "saved; fix the cause (e.g. install ppl_vae on the Ray workers) and run "
                    "again to resume"
                ) from err
            on_done(record)
    finally:
        for ref in running:  # interrupted: do not leave orphan tasks on a shared cluster
            ray.cancel(ref)
        if started:
            ray.shutdown()

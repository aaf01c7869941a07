"""Where trials run: in process, on a local process pool, or as Ray tasks.

Every path calls the same :func:`execute_trial`, which seeds the global RNGs,
times the trial, checks what it returned and turns an exception into an error
record instead of letting it escape. The driver receives records one by one, in
completion order, through the ``on_done`` callback, and stores each at once.

Worker processes (pool or Ray) use one torch thread each: with N workers on N
cores, more threads per worker only oversubscribe the machine.

Jobs come from a *source* (:class:`JobSource`): the runner hands out a trial
only once this process has claimed it, so two runs on one study folder share
the work. Executors keep at most ``workers`` trials in flight and ask the
source for more as slots free up.

No leftovers: on Linux the pool's fork server and its workers ask the kernel
(``prctl(PR_SET_PDEATHSIG)``) to be killed when their parent dies, so a driver
killed with SIGKILL takes them with it (and the resource tracker, whose pipe
they held, then exits too). A local Ray instance is started on the loopback
interface only (see :mod:`ppl_vae.study.ray_executor`).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import ctypes
import multiprocessing
import numbers
import os
import pickle
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Protocol

import torch

from .. import _device
from .._checks import _short
from .._seed import seeded
from .context import ContextTrial

EXECUTORS = ("local", "ray")
#: Device names a Ray trial may ask for: Ray gives each task its own GPU(s), which
#: the task sees as cuda:0, so an index would name a GPU it was not given.
RAY_DEVICES = ("auto", "cpu", "cuda", "cuda:0")
#: Seconds between looks at trials another run has claimed.
POLL_SECONDS = 0.2
_PR_SET_PDEATHSIG = 1


class JobSource(Protocol):
    """Where executors get jobs: ``take()`` a job this run owns, or None when none
    is free right now; ``exhausted()`` when none is left to take or wait for."""

    def take(self) -> dict | None: ...

    def exhausted(self) -> bool: ...


class ListSource:
    """Every job of a list, in order (no other run to share with)."""

    def __init__(self, jobs):
        self._jobs = list(jobs)

    def take(self) -> dict | None:
        return self._jobs.pop(0) if self._jobs else None

    def exhausted(self) -> bool:
        return not self._jobs


def _source(jobs) -> JobSource:
    return jobs if hasattr(jobs, "take") else ListSource(jobs)


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request: follow it now
        os._exit(1)


def _in_fork_server() -> bool:
    return any("multiprocessing.forkserver" in arg for arg in getattr(sys, "orig_argv", ()))


if _in_fork_server():  # preloaded by the fork server (see _mp_context): tie it to the driver
    die_with_parent()


def cpu_count() -> int:
    """CPUs this process may use (respects affinity masks where the OS has them)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _check_results(results) -> dict[str, float]:
    if not isinstance(results, Mapping) or not results:
        raise TypeError(
            f"trial returned {type(results).__name__}: it must return a non-empty "
            "dict of metric name -> float"
        )
    clean = {}
    for name, value in results.items():
        if not isinstance(name, str):
            raise TypeError(f"trial returned metric name {name!r}: metric names must be str")
        if torch.is_tensor(value) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"trial returned {name}={value!r} ({type(value).__name__}): "
                "each metric must be a real number (use float(...))"
            )
        clean[name] = float(value)
    return clean


_TRIAL_DEVICE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ppl_vae_trial_device", default=None
)


def trial_device() -> str | None:
    """The device the running trial should compute on, to pass on as ``device=``.

    ``None`` (the default of :func:`ppl_vae.study.run`) means the CPU, exactly as
    before devices existed; otherwise a torch device string (``"cpu"``,
    ``"cuda"``, ``"cuda:1"``), already checked by the runner. Outside a trial: None.

    Examples
    --------
    >>> import tempfile
    >>> import ppl_vae as pv
    >>> seen = []
    >>> def trial(config, seed):
    ...     seen.append(pv.study.trial_device())      # pass it on: model.to(device), ...
    ...     return {"x": 1.0}
    >>> study = pv.study.Study(name="toy", trial=trial, grid=[{"n": 1}])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = pv.study.run(study, seeds=1, out=tmp, workers=1, progress=False, device="cpu")
    >>> seen, pv.study.trial_device()                   # outside a trial: None
    (['cpu'], None)
    """
    return _TRIAL_DEVICE.get()


def execute_trial(
    trial: Callable, key: str, config: dict, seed: int, device: str | None = None
) -> dict:
    """Run one trial and return its record; never raises for errors inside the trial.

    The global torch / numpy / random generators are seeded with ``seed`` while the
    trial runs (and restored afterwards), so trials that draw from them are
    reproducible too. ``device`` is what :func:`trial_device` returns meanwhile; a
    record of a trial given a device names it. A :class:`~ppl_vae.study.context.ContextTrial`
    is called with a :class:`~ppl_vae.study.context.TrialContext` instead of the seed.
    """
    start = time.perf_counter()
    record = {"key": key, "config": config, "seed": int(seed)}
    if device is not None:
        record["device"] = device
    token = _TRIAL_DEVICE.set(device)
    try:
        with seeded(seed):
            if isinstance(trial, ContextTrial):
                results = trial.call(dict(config), int(seed), key, device)
            else:
                results = trial(dict(config), int(seed))
            results = _check_results(results)
        record.update(status="ok", results=results, error=None, traceback=None)
    except Exception as err:  # noqa: BLE001 - a failing trial must not stop the study
        record.update(
            status="error",
            results={},
            error=f"{type(err).__name__}: {err}",
            traceback=traceback.format_exc(),
        )
    finally:
        _TRIAL_DEVICE.reset(token)
    record["seconds"] = time.perf_counter() - start
    return record


def check_device(device, *, executor: str) -> str | None:
    """Validate ``device=`` before any trial runs; return it as a string (None stays).

    In and around this process (``executor="local"``) the device must exist here:
    ``"auto"`` becomes ``"cuda"`` or ``"cpu"``, and a CUDA device on a machine
    without one is a ValueError. With Ray the GPUs are the cluster's, not this
    machine's: only the name is checked here (:data:`RAY_DEVICES`), and
    :func:`~ppl_vae.study.ray_executor.ray_device` decides against the cluster's resources.
    """
    if device is None:
        return None
    if executor != "ray":
        return str(_device.resolve(device))
    name = str(device) if isinstance(device, str | torch.device) else None
    if name not in RAY_DEVICES:
        raise ValueError(
            f"device={_short(device)} is not usable with executor='ray': pass one of "
            f"{', '.join(map(repr, RAY_DEVICES))} (Ray gives each task its own GPU, "
            "which the task sees as cuda:0)"
        )
    return "cuda" if name == "cuda:0" else name


def check_gpus_per_trial(gpus_per_trial) -> float | None:
    """``gpus_per_trial`` as a float in (0, 1] or a whole number of GPUs; None stays."""
    if gpus_per_trial is None:
        return None
    ok = isinstance(gpus_per_trial, numbers.Real) and not isinstance(gpus_per_trial, bool)
    if ok:
        value = float(gpus_per_trial)
        ok = (0 < value <= 1) or (value > 1 and value.is_integer())
    if not ok:
        raise ValueError(
            f"gpus_per_trial={_short(gpus_per_trial)} is invalid: pass a fraction in (0, 1] "
            "(trials share a GPU) or a whole number of GPUs"
        )
    return value


def _single_thread_worker() -> None:
    torch.set_num_threads(1)


def _pool_worker() -> None:
    die_with_parent()
    _single_thread_worker()


def run_in_process(
    trial: Callable, jobs, on_done: Callable[[dict], None], *, device: str | None = None
) -> None:
    """Run ``jobs`` (a list or a :class:`JobSource`) one after the other in this process."""
    source = _source(jobs)
    while not source.exhausted():
        job = source.take()
        if job is None:  # every remaining trial is claimed by another live run
            time.sleep(POLL_SECONDS)
            continue
        on_done(execute_trial(trial, job["key"], job["config"], job["seed"], device))


def _mp_context():
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Only takes effect before the fork server starts; "__main__" keeps the default.
    context.set_forkserver_preload(["__main__", __name__])
    return context


def run_process_pool(
    trial: Callable,
    jobs,
    on_done: Callable[[dict], None],
    *,
    workers: int,
    device: str | None = None,
) -> None:
    """Run ``jobs`` on a pool of ``workers`` processes.

    Workers come from a ``forkserver`` (``spawn`` where the OS has none), never a
    plain ``fork`` of this process: they share no torch thread pools or locks with
    the driver. The fork server imports torch once and is reused by later pools,
    so a worker starts in milliseconds instead of paying the torch import each
    time. The trial must be picklable by reference (a module-level function).
    """
    main = sys.modules.get("__main__")
    try:
        pickle.dumps(trial)
        fn = trial.fn if isinstance(trial, ContextTrial) else trial
        if getattr(fn, "__module__", None) == "__main__" and not hasattr(main, "__file__"):
            raise pickle.PicklingError("it is defined in an interactive session")
    except Exception as err:  # noqa: BLE001 - any pickling error means the same fix
        raise ValueError(
            f"trial={trial!r} cannot be sent to worker processes ({err}): define it as a "
            "module-level function, or run in process with workers=1"
        ) from None
    context = _mp_context()
    source = _source(jobs)
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_pool_worker)
    running: dict = {}
    try:
        while True:
            while len(running) < workers and (job := source.take()) is not None:
                args = (trial, job["key"], job["config"], job["seed"], device)
                running[pool.submit(execute_trial, *args)] = job
            if not running:
                if source.exhausted():
                    break
                time.sleep(POLL_SECONDS)  # the rest is claimed by another live run
                continue
            done, _ = cf.wait(running, timeout=POLL_SECONDS, return_when=cf.FIRST_COMPLETED)
            for future in done:
                running.pop(future)
                try:
                    record = future.result()
                except Exception as err:  # trial errors are caught inside execute_trial
                    raise RuntimeError(
                        f"a worker process could not run a trial ({type(err).__name__}: {err}); "
                        "finished trials are saved. Define the trial in an importable module, "
                        "or use workers=1 to run in process, then run again to resume"
                    ) from err
                on_done(record)
    finally:
        # On Ctrl-C or an error, drop the queued trials instead of waiting for them.
        pool.shutdown(wait=True, cancel_futures=True)


def _first_line(err: BaseException) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[-1].strip() if lines else repr(err)

"""Where trials run: in process, on a local process pool, or as Ray tasks.

Every path calls the same :func:`execute_trial`, which seeds the global RNGs,
times the trial, checks what it returned and turns an exception into an error
record instead of letting it escape. The driver receives records one by one, in
completion order, through the ``on_done`` callback, and stores each at once.

Worker processes (pool or Ray) use one torch thread each: with N workers on N
cores, more threads per worker only oversubscribe the machine.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import numbers
import os
import pickle
import sys
import time
import traceback
from collections.abc import Callable, Mapping

import torch

from .._seed import seeded

EXECUTORS = ("local", "ray")


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


def execute_trial(trial: Callable, key: str, config: dict, seed: int) -> dict:
    """Run one trial and return its record; never raises for errors inside the trial.

    The global torch / numpy / random generators are seeded with ``seed`` while the
    trial runs (and restored afterwards), so trials that draw from them are
    reproducible too.
    """
    start = time.perf_counter()
    record = {"key": key, "config": config, "seed": int(seed)}
    try:
        with seeded(seed):
            results = _check_results(trial(dict(config), int(seed)))
        record.update(status="ok", results=results, error=None, traceback=None)
    except Exception as err:  # noqa: BLE001 - a failing trial must not stop the study
        record.update(
            status="error",
            results={},
            error=f"{type(err).__name__}: {err}",
            traceback=traceback.format_exc(),
        )
    record["seconds"] = time.perf_counter() - start
    return record


def _single_thread_worker() -> None:
    torch.set_num_threads(1)


def run_in_process(trial: Callable, jobs: list[dict], on_done: Callable[[dict], None]) -> None:
    """Run ``jobs`` one after the other in this process."""
    for job in jobs:
        on_done(execute_trial(trial, job["key"], job["config"], job["seed"]))


def _mp_context():
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Only takes effect before the fork server starts; "__main__" keeps the default.
    context.set_forkserver_preload(["__main__", __name__])
    return context


def run_process_pool(
    trial: Callable, jobs: list[dict], on_done: Callable[[dict], None], *, workers: int
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
        if getattr(trial, "__module__", None) == "__main__" and not hasattr(main, "__file__"):
            raise pickle.PicklingError("it is defined in an interactive session")
    except Exception as err:  # noqa: BLE001 - any pickling error means the same fix
        raise ValueError(
            f"trial={trial!r} cannot be sent to worker processes ({err}): define it as a "
            "module-level function, or run in process with workers=1"
        ) from None
    context = _mp_context()
    pool = cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_single_thread_worker
    )
    try:
        futures = [
            pool.submit(execute_trial, trial, job["key"], job["config"], job["seed"])
            for job in jobs
        ]
        for future in cf.as_completed(futures):
            try:
                record = future.result()
            except Exception as err:  # trial errors are caught inside execute_trial
                raise RuntimeError(
                    f"a worker process could not run a trial ({type(err).__name__}: {err}); "
                    "finished trials are saved. Define the trial in an importable module, or "
                    "use workers=1 to run in process, then run again to resume"
                ) from err
            on_done(record)
    finally:
        # On Ctrl-C or an error, drop the queued trials instead of waiting for them.
        pool.shutdown(wait=True, cancel_futures=True)


def _import_ray():
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            "executor='ray' needs Ray, which is not installed: "
            "pip install 'ppl_vae[ray]' (or use executor='local')"
        ) from err
    return ray


def _execute_on_ray(trial_blob: bytes, driver_path: list[str], key: str, config: dict, seed):
    # A local Ray worker does not inherit the driver's sys.path; add the driver's
    # entries that exist here so the trial's module (a script folder, a test
    # folder) imports as it did in the driver. Appended, so nothing is shadowed.
    for entry in driver_path:
        if entry and entry not in sys.path and os.path.isdir(entry):
            sys.path.append(entry)
    trial = pickle.loads(trial_blob)
    _single_thread_worker()
    return execute_trial(trial, key, config, seed)


def run_ray(
    trial: Callable,
    jobs: list[dict],
    on_done: Callable[[dict], None],
    *,
    address: str | None,
    workers: int | None,
) -> None:
    """Run ``jobs`` as Ray tasks (one CPU each), storing results as they complete.

    Uses the Ray instance this process is already connected to if there is one;
    otherwise connects to ``address`` (or ``$RAY_ADDRESS``), or else starts a local
    instance with ``workers`` CPUs (default: one per job, at most the CPU count)
    that is shut down again at the end. The trial is shipped with Ray's
    cloudpickle; on a remote cluster the modules it imports (ppl_vae, the study)
    must be installed on the workers.

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
        address = address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, logging_level="WARNING")
        else:
            ray.init(
                num_cpus=workers or max(1, min(cpu_count(), len(jobs))),
                include_dashboard=False,
                logging_level="WARNING",
            )
        started = True
    running: dict = {}
    try:
        remote = ray.remote(num_cpus=1, max_retries=1)(_execute_on_ray)
        trial_ref = ray.put(cloudpickle.dumps(trial))
        driver_path = [entry or os.getcwd() for entry in sys.path]  # '' means the cwd
        # Keep at most `workers` tasks in flight when a limit is given (remote
        # clusters); otherwise let Ray's scheduler queue them all.
        limit = workers or len(jobs)
        queue = list(jobs)

        def submit():
            while queue and len(running) < limit:
                job = queue.pop(0)
                args = (trial_ref, driver_path, job["key"], job["config"], job["seed"])
                running[remote.remote(*args)] = job

        submit()
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
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
            submit()
    finally:
        for ref in running:  # interrupted: do not leave orphan tasks on a shared cluster
            ray.cancel(ref)
        if started:
            ray.shutdown()


def _first_line(err: BaseException) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[-1].strip() if lines else repr(err)

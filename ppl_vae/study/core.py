"""Studies: a grid of configurations × seeds, one pure trial function, and a runner.

A concrete study lives in ``ppl_vae/studies/<name>.py`` and defines a module-level
``STUDY = Study(...)``; :func:`run` finds it by name. The runner stores every
finished trial at once (see :mod:`ppl_vae.study.store`), so a study that is
interrupted — or extended with more seeds — only runs the trials it is missing.

Example
-------
>>> def trial(config, seed):
...     x = torch.randn(config["n"], generator=torch.Generator().manual_seed(seed))
...     return {"mean": float(x.mean())}
>>> study = Study(name="toy", question="Does the sample mean shrink?", trial=trial,
...               grid=[{"n": 10}, {"n": 1000}])
>>> df = run(study, seeds=5, out="my_results")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import importlib
import math
import pkgutil
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .._checks import (
    flag,
    one_of,
    positive_int,
)
from . import _claims, executors, ray_executor
from ._claims import Claims
from ._inputs import _check_grid, _check_out, _check_placement, _check_seeds
from .context import ContextTrial
from .references import Reference, check_references
from .report import write_outputs
from .store import (
    TrialStore,
    failures_frame,
    tidy_frame,
    trial_key,
)

STUDIES_PACKAGE = "ppl_vae.studies"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: The sizes a study runs at: ``small`` (CI, seconds), ``default`` (hours at most on a
#: 2-core CPU), ``paper`` (the published protocol; a GPU or a cluster).
SIZES = ("small", "default", "paper")


@dataclass(frozen=True, kw_only=True)
class Study:
    """Declaration of a study: what is varied, what one trial measures, and why.

    Parameters
    ----------
    name : str
        Identifier, also the output folder ``<out>/<name>/``.
    trial : callable
        Pure function ``trial(config: dict, seed: int) -> dict[str, float]``. It must
        depend only on its arguments (the runner also seeds the global RNGs with
        ``seed``). For process-pool runs it must be a module-level function.
    grid : list of dict
        Configurations; every one runs with every seed. The first is the reference
        of the paired comparisons, so put the baseline first.
    question : str
        The question and the hypothesis in prose, normally the study module's
        ``__doc__``; paragraphs starting with ``Hypothesis:`` are reported as the
        hypothesis.
    small_grid : list of dict, optional
        Configurations for ``run(..., size="small")`` (smoke tests, CI); default the
        first configuration of ``grid``. Small configs should make trials cheap.
    paper_grid : list of dict, optional
        Configurations for ``run(..., size="paper")``: the published protocol the
        study tests, meant for a GPU or a cluster. None: the study has no paper
        size (asking for it is a ValueError).
    protocol : str, optional
        Prose for the report: what each size runs and how far it is from the
        paper's protocol.
    references : sequence of Reference, optional
        Published figures printed beside the study's results in ``report.md``.
    detail_metrics : sequence of str, optional
        Prefixes of metrics kept in the tables on disk but left out of
        ``summary.png`` and the report's summary table (e.g. histogram bins).
    analyze : callable, optional
        ``analyze(df, out_dir)`` draws study-specific figures from the tidy table
        into ``out_dir``; PNG files it writes are linked from the report, and markdown
        it returns (a str) becomes the report's ``Analysis`` section.
    pair_within : sequence of str, optional
        Configuration keys that decide the data a trial sees (e.g. ``["model"]`` where
        each model gets its own preprocessing): ``paired.csv`` then compares only
        configurations equal in these keys, on the same seeds, each group against its
        first configuration. Default: all configurations share data, compared with
        the first.
    default_seeds : int, list of int, or dict, default 3
        Seeds used when :func:`run` gets ``seeds=None``; a dict gives them per size
        (``{"small": 2, "paper": 50}``), sizes it leaves out get 3.
    takes_context : bool, default False
        The form the trial takes: False, ``trial(config, seed)``; True,
        ``trial(config, context)`` with a :class:`~ppl_vae.study.context.TrialContext`
        (seed, device, size, scratch folder). Declared, never guessed from the signature.
    version : str or int, optional
        Enters every trial's key: bump it when the trial computes something different,
        and stored results of the old code are no longer reused (they stay on disk).

    Notes
    -----
    Stored trials are keyed by (name, config, seed) and ``version``: after changing
    what the trial computes, bump ``version`` (or delete ``<out>/<name>/trials/``) so
    old results are not reused.

    Examples
    --------
    >>> import ppl_vae as pv
    >>> def trial(config, seed):                    # a pure function of (config, seed)
    ...     return {"score": config["n"] + 0.1 * seed}
    >>> study = pv.study.Study(name="toy", question="Does n raise the score?", trial=trial,
    ...                        grid=[{"n": 1}, {"n": 4}], small_grid=[{"n": 1}])
    >>> study.sizes, study.configs("small"), study.configs()
    (('small', 'default'), [{'n': 1}], [{'n': 1}, {'n': 4}])
    >>> pv.study.Study(name="a b", trial=trial, grid=[{"n": 1}])
    Traceback (most recent call last):
        ...
    ValueError: name='a b' is invalid: use letters, digits, '_', '-' or '.', starting with a letter or digit (it names the output folder)
    """

    name: str
    trial: Callable[[dict, int], dict]
    grid: list[dict]
    question: str = ""
    small_grid: list[dict] | None = None
    paper_grid: list[dict] | None = None
    protocol: str = ""
    references: Sequence[Reference] = ()
    detail_metrics: Sequence[str] = ()
    analyze: Callable[[pd.DataFrame, Path], object] | None = None
    default_seeds: int | list[int] | dict = field(default=3)
    version: str | int | None = None
    pair_within: Sequence[str] = ()
    takes_context: bool = False

    def __post_init__(self):
        flag("takes_context", self.takes_context)
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"name={self.name!r} is invalid: use letters, digits, '_', '-' or '.', "
                "starting with a letter or digit (it names the output folder)"
            )
        if not callable(self.trial):
            raise ValueError(
                f"trial={self.trial!r} is not callable: pass a function (config, seed) -> dict"
            )
        if self.analyze is not None and not callable(self.analyze):
            raise ValueError(f"analyze={self.analyze!r} is not callable: pass a function or None")
        object.__setattr__(self, "grid", _check_grid("grid", self.grid))
        for name in ("small_grid", "paper_grid"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _check_grid(name, getattr(self, name)))
        object.__setattr__(self, "references", check_references(
            self.references, (self.grid, self.small_grid, self.paper_grid)))
        if isinstance(self.detail_metrics, str) or not all(
            isinstance(p, str) for p in self.detail_metrics
        ):
            raise ValueError(
                f"detail_metrics={self.detail_metrics!r} is invalid: pass a list of metric "
                "name prefixes"
            )
        object.__setattr__(self, "detail_metrics", tuple(self.detail_metrics))
        if isinstance(self.pair_within, str) or not all(isinstance(k, str) for k in self.pair_within):
            raise ValueError(
                f"pair_within={self.pair_within!r} is invalid: pass a list of configuration keys"
            )
        object.__setattr__(self, "pair_within", tuple(self.pair_within))
        if isinstance(self.default_seeds, dict):
            for size, seeds in self.default_seeds.items():
                one_of("default_seeds key", size, SIZES)
                _check_seeds(f"default_seeds[{size!r}]", seeds)
        else:
            _check_seeds("default_seeds", self.default_seeds)
        if self.version is not None and (
            isinstance(self.version, bool) or not isinstance(self.version, str | int)
        ):
            raise ValueError(
                f"version={self.version!r} is invalid: pass a string or an integer, or None"
            )

    @property
    def sizes(self) -> tuple[str, ...]:
        """The sizes this study runs at (``paper`` only with a ``paper_grid``)."""
        return SIZES if self.paper_grid is not None else SIZES[:2]

    def configs(self, size: str = "default", *, small: bool = False) -> list[dict]:
        """The grid of ``size``: ``small_grid`` (or the first config), ``grid``, ``paper_grid``.

        ``small=True`` is the older spelling of ``size="small"``.
        """
        size = _check_size(self, size, small)
        if size == "paper":
            return self.paper_grid
        if size == "default":
            return self.grid
        return self.small_grid if self.small_grid is not None else self.grid[:1]

    def seeds(self, size: str = "default"):
        """The seeds :func:`run` uses at ``size`` without ``seeds=`` (see ``default_seeds``)."""
        if isinstance(self.default_seeds, dict):
            return self.default_seeds.get(size, 3)
        return self.default_seeds

    def detail(self, metric: str) -> bool:
        """Whether ``metric`` is one of the study's detail metrics (left out of summaries)."""
        return any(metric.startswith(prefix) for prefix in self.detail_metrics)


def _check_size(study: Study, size, small: bool) -> str:
    if flag("small", small):
        if size not in ("default", "small"):
            raise ValueError(
                f"small=True and size={size!r} disagree: pass size={size!r} alone"
            )
        return "small"
    one_of("size", size, SIZES)
    if size not in study.sizes:
        raise ValueError(
            f"size={size!r} is not available for study {study.name!r}: it has no paper_grid "
            f"(sizes: {', '.join(study.sizes)}); run size='default' or add a paper_grid"
        )
    return size


def available_studies() -> list[str]:
    """Names of the studies shipped in :mod:`ppl_vae.studies`, sorted.

    Examples
    --------
    >>> import ppl_vae as pv
    >>> names = pv.study.available_studies()
    >>> "gmm_vs_em" in names, names == sorted(names)
    (True, True)
    """
    package = importlib.import_module(STUDIES_PACKAGE)
    return sorted(
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    )


def get_study(name: str | Study) -> Study:
    """The :class:`Study` named ``name`` (from ``ppl_vae.studies.<name>.STUDY``).

    Examples
    --------
    >>> import ppl_vae as pv
    >>> study = pv.study.get_study("gmm_vs_em")
    >>> type(study).__name__, study.name, pv.study.get_study(study) is study
    ('Study', 'gmm_vs_em', True)
    """
    if isinstance(name, Study):
        return name
    names = available_studies()
    if not isinstance(name, str) or name not in names:
        listing = ", ".join(names) if names else "none are installed yet"
        raise ValueError(
            f"study={name!r} is not a known study; available studies: {listing}. "
            f"Add a module {STUDIES_PACKAGE}.<name> defining STUDY = Study(...), "
            "or pass a Study object"
        )
    module = importlib.import_module(f"{STUDIES_PACKAGE}.{name}")
    study = getattr(module, "STUDY", None)
    if not isinstance(study, Study):
        raise ValueError(
            f"study={name!r}: module {module.__name__} defines no STUDY = Study(...) "
            f"(found {type(study).__name__}); add one at module level"
        )
    return study


def run(
    study: str | Study,
    *,
    executor: str = "local",
    address: str | None = None,
    seeds: int | Sequence[int] | None = None,
    out: str | Path = "ppl_vae_out/study",
    small: bool = False,
    size: str = "default",
    workers: int | None = None,
    progress: bool = True,
    retry_failed: bool = False,
    retry_claimed: bool = False,
    device=None,
    gpus_per_trial: float | None = None,
) -> pd.DataFrame:
    """Run a study's grid × seeds (resuming stored trials) and write its results.

    Parameters
    ----------
    study : str or Study
        A name from :func:`available_studies`, or a :class:`Study`.
    executor : {"local", "ray"}, default "local"
        ``"local"`` runs in this process when ``workers == 1`` and otherwise on a
        process pool (fork server, or ``spawn``); ``"ray"`` runs the same trials as
        Ray tasks.
    address : str, optional
        Ray cluster address (``executor="ray"`` only); default ``$RAY_ADDRESS``, else
        a local Ray instance on 127.0.0.1 only (no dashboard), shut down afterwards.
    seeds : int or list of int, optional
        ``n`` means seeds ``0..n-1``; default the study's ``default_seeds`` for ``size``.
    out : path-like, default "ppl_vae_out/study" (the CLI's default too)
        Results go to ``<out>/<study name>/``.
    small : bool, default False
        Run the study's ``small_grid``: the same as ``size="small"``.
    size : {"default", "small", "paper"}, default "default"
        Which grid to run (see :class:`Study`); the report says which size produced
        it and quotes the study's ``protocol``.
    workers : int, optional
        Parallel trials; default ``min(cpu count, number of trials to run)``.
    progress : bool, default True
        Show a progress bar over completed trials (on a terminal: without a TTY, e.g.
        in a log file, none is written).
    retry_failed : bool, default False
        Run again trials whose stored record is a failure.
    retry_claimed : bool, default False
        Take over trials claimed by a run on another host (a shared folder), whose
        claims cannot be checked from here: pass True once that run is known to be
        dead. Without it such trials are not run; the report's ``trials`` line and
        the returned table's ``attrs["claimed_elsewhere"]`` list them (a warning
        says how many).
    device : {None, "auto", "cpu", "cuda", "cuda:N"}, optional
        Where each trial computes: trials read it with
        :func:`~ppl_vae.study.executors.trial_device` and pass it on as ``device=``
        (the shipped studies do). None (default): the CPU, as before; ``"auto"``:
        CUDA when available. Checked before any trial runs: a CUDA device on a
        machine without one is a ValueError. With Ray the cluster's GPUs count,
        Ray assigns them (``"cuda"`` or ``"auto"``), and a trial on CUDA asks
        for ``gpus_per_trial`` GPUs. The device is not part of a trial's key:
        trials stored from a CPU run are reused on CUDA and vice versa.
    gpus_per_trial : float, optional
        GPUs a Ray trial on CUDA asks for (default 1); a fraction in (0, 1] lets
        trials share a GPU. Only with ``executor="ray"`` and a device that may be
        CUDA.

    Returns
    -------
    pandas.DataFrame
        Tidy table, one row per successful trial and metric: ``study, config_id,
        <config keys...>, seed, metric, value``. ``attrs["claimed_elsewhere"]``:
        the trials left to another host's run (``config_id, seed, key, host, pid,
        since``; empty when none). Also written, with ``summary.csv``,
        ``paired.csv``, ``failures.csv``, ``summary.png`` and ``report.md``.

    Examples
    --------
    Two configurations × two seeds, in this process (``workers=1``); run again with more
    seeds into the same ``out``, only the new seeds' trials would run:

    >>> import tempfile
    >>> from pathlib import Path
    >>> import ppl_vae as pv
    >>> calls = []
    >>> def trial(config, seed):
    ...     calls.append((config["n"], seed))
    ...     return {"score": config["n"] + 0.1 * seed}
    >>> study = pv.study.Study(name="toy", trial=trial, grid=[{"n": 1}, {"n": 4}])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     df = pv.study.run(study, seeds=2, out=tmp, workers=1, progress=False)
    ...     written = sorted(p.name for p in (Path(tmp) / "toy").iterdir())
    >>> calls
    [(1, 0), (1, 1), (4, 0), (4, 1)]
    >>> df.columns.tolist(), df["value"].tolist()
    (['study', 'config_id', 'n', 'seed', 'metric', 'value'], [1.0, 1.1, 4.0, 4.1])
    >>> [name for name in written if name.endswith((".csv", ".md", ".png"))]
    ['failures.csv', 'paired.csv', 'report.md', 'summary.csv', 'summary.png', 'trials.csv']
    """
    study = get_study(study)
    size = _check_size(study, size, small)
    configs = study.configs(size)
    device, gpus_per_trial = _check_placement(executor, address, device, gpus_per_trial)
    seeds = _check_seeds("seeds", study.seeds(size) if seeds is None else seeds,
                         configs=len(configs))
    progress, retry_failed = flag("progress", progress), flag("retry_failed", retry_failed)
    retry_claimed = flag("retry_claimed", retry_claimed)
    if workers is not None:
        workers = positive_int("workers", workers, fix="pass a number of workers >= 1 or None")
    out_dir = _check_out(out, study.name)
    store = TrialStore(out_dir / "trials")

    jobs = [
        {"key": trial_key(study.name, config, seed, study.version), "config_id": i,
         "config": config, "seed": seed}
        for i, config in enumerate(configs)
        for seed in seeds
    ]
    records = store.load()
    pending = [
        job
        for job in jobs
        if job["key"] not in records or (retry_failed and records[job["key"]]["status"] != "ok")
    ]

    claims = Claims(store, pending, records, retry_claimed=retry_claimed)
    bar = tqdm(
        total=len(pending),
        desc=f"study {study.name}",
        unit="trial",
        disable=True if not progress or not pending else None,  # None: off without a TTY
    )
    failed = ran = 0

    def on_done(record: dict) -> None:
        nonlocal failed, ran
        record["study"] = study.name
        record["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        store.save(record)
        claims.release(record["key"])
        records[record["key"]] = record
        failed += record["status"] != "ok"
        ran += 1
        bar.set_postfix(failed=failed, refresh=False)
        bar.update()

    def on_elsewhere(record: dict) -> None:  # finished by another run on this folder
        records[record["key"]] = record
        bar.update()

    claims.on_elsewhere = on_elsewhere
    start = time.perf_counter()
    used_workers = 0
    trial = study.trial
    if study.takes_context:
        trial = ContextTrial(study.trial, size=size, scratch_root=out_dir / "scratch")
    try:
        if pending and executor == "ray":
            used_workers = workers
            ray_executor.run_ray(trial, claims, on_done, address=address, workers=workers,
                              device=device, gpus_per_trial=gpus_per_trial)
        elif pending:
            used_workers = workers or min(executors.cpu_count(), len(pending))
            if used_workers == 1:
                executors.run_in_process(trial, claims, on_done, device=device)
            else:
                executors.run_process_pool(trial, claims, on_done, workers=used_workers,
                                           device=device)
    finally:
        claims.release_all()
        bar.close()
    wall = time.perf_counter() - start

    df = tidy_frame(study.name, jobs, records)
    df.attrs["claimed_elsewhere"] = left = _claims.claimed_elsewhere_frame(jobs, claims.left)
    run_info = {
        "size": size,
        "configurations": str(len(configs)),
        "seeds": ", ".join(map(str, seeds)),
        "trials": _claims.trials_line(len(jobs), len(jobs) - len(pending), ran, left),
        "executor": executor + (f", {used_workers} worker(s)" if pending and used_workers else ""),
        **({"device": device} if device is not None else {}),
        "wall time of this run": f"{wall:.1f} s",
        "compute time of all trials": f"{_compute_seconds(jobs, records):.1f} s",
    }
    write_outputs(study, df, failures_frame(jobs, records), out_dir, run_info,
                  dict(enumerate(configs)))
    if len(left):
        warnings.warn(f"study {study.name!r}: {_claims.claimed_text(left)}", stacklevel=2)
    return df


def _compute_seconds(jobs: list[dict], records: dict[str, dict]) -> float:
    seconds = (records[j["key"]].get("seconds") for j in jobs if j["key"] in records)
    return float(sum(s for s in seconds if isinstance(s, float) and not math.isnan(s)))

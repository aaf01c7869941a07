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
>>> df = run(study, seeds=5, out="results")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import importlib
import math
import numbers
import pkgutil
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .._checks import MAX_SEED, one_of, positive_int
from . import executors, ray_executor
from .analysis import RESERVED_NAMES, paired_comparison, summarize
from .report import plot_summary, write_report
from .store import (
    TrialStore,
    canonical_config,
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
class Reference:
    """A published figure that a study's report prints beside its own result.

    Parameters
    ----------
    metric : str
        The study's metric it compares with.
    value : float
        The published value.
    source : str
        Citation, e.g. ``"Cremer et al. (2018), Table 2"``.
    where : dict, optional
        Configuration keys and values the figure applies to; the report compares
        it with every configuration of the run that matches all of them.
    note : str, optional
        What in the paper's protocol differs, or how the value was read.
    """

    metric: str
    value: float
    source: str
    where: dict = field(default_factory=dict)
    note: str = ""

    def __post_init__(self):
        if not isinstance(self.metric, str) or not self.metric:
            raise ValueError(f"metric={self.metric!r} is invalid: pass the metric's name")
        if not isinstance(self.value, numbers.Real) or isinstance(self.value, bool):
            raise ValueError(f"value={self.value!r} is invalid: pass the published number")
        if not isinstance(self.source, str) or not self.source:
            raise ValueError(
                f"source={self.source!r} is invalid: cite where the value is published"
            )
        if not isinstance(self.where, dict):
            raise ValueError(
                f"where={self.where!r} is invalid: pass a dict of configuration keys and values"
            )


def _check_grid(argument: str, grid) -> list[dict]:
    if not isinstance(grid, Sequence) or isinstance(grid, str) or len(grid) == 0:
        raise ValueError(f"{argument}={grid!r} is invalid: pass a non-empty list of config dicts")
    seen: dict[str, int] = {}
    for i, config in enumerate(grid):
        if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
            raise ValueError(f"{argument}[{i}]={config!r} is invalid: pass a dict with str keys")
        clash = sorted(set(config) & set(RESERVED_NAMES))
        if clash:
            raise ValueError(
                f"{argument}[{i}] uses reserved key(s) {', '.join(clash)}: rename them "
                "(they are column names of the result tables)"
            )
        try:
            text = canonical_config(config)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"{argument}[{i}]={config!r} is not JSON-serialisable ({err}): use plain "
                "str / int / float / bool / list / dict values"
            ) from None
        if text in seen:
            raise ValueError(
                f"{argument}[{i}] repeats {argument}[{seen[text]}] ({text}): "
                "list each configuration once (use seeds for repetitions)"
            )
        seen[text] = i
    return [dict(config) for config in grid]


def _check_seeds(argument: str, seeds) -> list[int]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        return list(range(positive_int(argument, seeds, fix="pass a number of seeds >= 1")))
    ok = isinstance(seeds, Sequence | range) and not isinstance(seeds, str) and len(seeds) > 0
    if ok:
        ok = all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and 0 <= s <= MAX_SEED
            for s in seeds
        )
    if not ok or len(set(seeds)) != len(seeds):
        raise ValueError(
            f"{argument}={seeds!r} is invalid: pass a number of seeds >= 1, or a non-empty "
            "list of distinct integers in [0, 2**63)"
        )
    return [int(s) for s in seeds]


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
        into ``out_dir``; PNG files it writes are linked from the report.
    default_seeds : int or list of int, default 3
        Seeds used when :func:`run` gets ``seeds=None``.
    version : str or int, optional
        Enters every trial's key: bump it when the trial computes something different,
        and stored results of the old code are no longer reused (they stay on disk).

    Notes
    -----
    Stored trials are keyed by (name, config, seed) and ``version``: after changing
    what the trial computes, bump ``version`` (or delete ``<out>/<name>/trials/``) so
    old results are not reused.
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
    default_seeds: int | list[int] = field(default=3)
    version: str | int | None = None

    def __post_init__(self):
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
        references = tuple(self.references)
        for i, ref in enumerate(references):
            if not isinstance(ref, Reference):
                raise ValueError(
                    f"references[{i}]={ref!r} is invalid: pass Reference(metric=..., "
                    "value=..., source=...) objects"
                )
        keys = {k for grid in (self.grid, self.small_grid, self.paper_grid) if grid
                for config in grid for k in config}
        for i, ref in enumerate(references):
            unknown = sorted(set(ref.where) - keys)
            if unknown:
                raise ValueError(
                    f"references[{i}].where names {unknown}, which no configuration has; "
                    f"use configuration keys ({', '.join(sorted(keys))})"
                )
        object.__setattr__(self, "references", references)
        if isinstance(self.detail_metrics, str) or not all(
            isinstance(p, str) for p in self.detail_metrics
        ):
            raise ValueError(
                f"detail_metrics={self.detail_metrics!r} is invalid: pass a list of metric "
                "name prefixes"
            )
        object.__setattr__(self, "detail_metrics", tuple(self.detail_metrics))
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

    def detail(self, metric: str) -> bool:
        """Whether ``metric`` is one of the study's detail metrics (left out of summaries)."""
        return any(metric.startswith(prefix) for prefix in self.detail_metrics)


def _check_size(study: Study, size, small: bool) -> str:
    if small:
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
    """Names of the studies shipped in :mod:`ppl_vae.studies`, sorted."""
    package = importlib.import_module(STUDIES_PACKAGE)
    return sorted(
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    )


def get_study(name: str | Study) -> Study:
    """The :class:`Study` named ``name`` (from ``ppl_vae.studies.<name>.STUDY``)."""
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
    out: str | Path = "results",
    small: bool = False,
    size: str = "default",
    workers: int | None = None,
    progress: bool = True,
    retry_failed: bool = False,
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
        ``n`` means seeds ``0..n-1``; default the study's ``default_seeds``.
    out : path-like, default "results"
        Results go to ``<out>/<study name>/``.
    small : bool, default False
        Run the study's ``small_grid``: the same as ``size="small"``.
    size : {"default", "small", "paper"}, default "default"
        Which grid to run (see :class:`Study`); the report says which size produced
        it and quotes the study's ``protocol``.
    workers : int, optional
        Parallel trials; default ``min(cpu count, number of trials to run)``.
    progress : bool, default True
        Show a progress bar over completed trials.
    retry_failed : bool, default False
        Run again trials whose stored record is a failure.
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
        <config keys...>, seed, metric, value``. Also written, with ``summary.csv``,
        ``paired.csv``, ``failures.csv``, ``summary.png`` and ``report.md``.
    """
    study = get_study(study)
    size = _check_size(study, size, small)
    one_of("executor", executor, executors.EXECUTORS)
    if address is not None and executor != "ray":
        raise ValueError(
            f"address={address!r} is only used with executor='ray': pass executor='ray' "
            "or drop address"
        )
    device = executors.check_device(device, executor=executor)
    gpus_per_trial = executors.check_gpus_per_trial(gpus_per_trial)
    if gpus_per_trial is not None and (executor != "ray" or device in (None, "cpu")):
        raise ValueError(
            f"gpus_per_trial={gpus_per_trial} is only used by Ray trials on CUDA: pass "
            "executor='ray' with device='cuda' or 'auto', or drop gpus_per_trial"
        )
    seeds = _check_seeds("seeds", study.default_seeds if seeds is None else seeds)
    if workers is not None:
        workers = positive_int("workers", workers, fix="pass a number of workers >= 1 or None")
    out_dir = Path(out) / study.name
    for folder in (out_dir / "trials", *(out_dir / "trials").parents):
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(
                    f"out={str(out)!r} is invalid: {str(folder)!r} is a file, not a folder; "
                    "pass a folder for the results"
                )
            break
    store = TrialStore(out_dir / "trials")

    jobs = [
        {"key": trial_key(study.name, config, seed, study.version), "config_id": i,
         "config": config, "seed": seed}
        for i, config in enumerate(study.configs(size))
        for seed in seeds
    ]
    records = store.load()
    pending = [
        job
        for job in jobs
        if job["key"] not in records or (retry_failed and records[job["key"]]["status"] != "ok")
    ]

    claims = _Claims(store, pending, records)
    bar = tqdm(
        total=len(pending),
        desc=f"study {study.name}",
        unit="trial",
        disable=not progress or not pending,
    )
    failed = 0

    def on_done(record: dict) -> None:
        nonlocal failed
        record["study"] = study.name
        record["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        store.save(record)
        claims.release(record["key"])
        records[record["key"]] = record
        failed += record["status"] != "ok"
        bar.set_postfix(failed=failed, refresh=False)
        bar.update()

    def on_elsewhere(record: dict) -> None:  # finished by another run on this folder
        records[record["key"]] = record
        bar.update()

    claims.on_elsewhere = on_elsewhere
    start = time.perf_counter()
    used_workers = 0
    try:
        if pending and executor == "ray":
            used_workers = workers
            ray_executor.run_ray(study.trial, claims, on_done, address=address, workers=workers,
                              device=device, gpus_per_trial=gpus_per_trial)
        elif pending:
            used_workers = workers or min(executors.cpu_count(), len(pending))
            if used_workers == 1:
                executors.run_in_process(study.trial, claims, on_done, device=device)
            else:
                executors.run_process_pool(study.trial, claims, on_done, workers=used_workers,
                                           device=device)
    finally:
        claims.release_all()
        bar.close()
    wall = time.perf_counter() - start

    df = tidy_frame(study.name, jobs, records)
    run_info = {
        "size": size,
        "configurations": str(len(study.configs(size))),
        "seeds": ", ".join(map(str, seeds)),
        "trials": f"{len(jobs)} ({len(jobs) - len(pending)} reused from earlier runs, "
        f"{len(pending)} run now)",
        "executor": executor + (f", {used_workers} worker(s)" if pending and used_workers else ""),
        **({"device": device} if device is not None else {}),
        "wall time of this run": f"{wall:.1f} s",
        "compute time of all trials": f"{_compute_seconds(jobs, records):.1f} s",
    }
    configs = dict(enumerate(study.configs(size)))
    _write_outputs(study, df, failures_frame(jobs, records), out_dir, run_info, configs)
    return df


class _Claims:
    """This run's pending trials, handed to the executor only once claimed.

    A trial claimed by another live process on this machine is skipped and
    waited for (its record is adopted when it appears); a claim whose process is
    gone is taken over; a claim from another host is left to it. See
    :class:`~ppl_vae.study.store.TrialStore` for the claim files.
    """

    def __init__(self, store: TrialStore, jobs: list[dict], records: dict[str, dict]):
        self.store = store
        self.jobs = list(jobs)
        self.seen = {key: record.get("finished") for key, record in records.items()}
        self.held: set[str] = set()
        self.on_elsewhere = lambda record: None

    def _finished_elsewhere(self, key: str) -> dict | None:
        if not self.store.path(key).exists():
            return None
        record = self.store.read(key)
        if record is None or record.get("finished") == self.seen.get(key, object()):
            return None
        return record

    def take(self) -> dict | None:
        for job in list(self.jobs):
            key = job["key"]
            record = self._finished_elsewhere(key)
            if record is None and self.store.claim(key):
                record = self._finished_elsewhere(key)  # finished just before our claim
                if record is None:
                    self.jobs.remove(job)
                    self.held.add(key)
                    return job
                self.store.release(key)
            if record is not None:
                self.jobs.remove(job)
                self.on_elsewhere(record)
            elif self.store.claimed_by_other_host(key):
                self.jobs.remove(job)  # cannot tell if it lives: leave the trial to it
        return None

    def exhausted(self) -> bool:
        return not self.jobs

    def release(self, key: str) -> None:
        self.store.release(key)
        self.held.discard(key)

    def release_all(self) -> None:
        for key in list(self.held):
            self.release(key)


def _compute_seconds(jobs: list[dict], records: dict[str, dict]) -> float:
    seconds = (records[j["key"]].get("seconds") for j in jobs if j["key"] in records)
    return float(sum(s for s in seconds if isinstance(s, float) and not math.isnan(s)))


def _same(a, b) -> bool:
    """Configuration values equal as JSON would have them, numbers compared as numbers
    (``4 == 4.0``; a bool is not a number here)."""
    def number(v):
        return isinstance(v, numbers.Real) and not isinstance(v, bool)

    if number(a) and number(b):
        return float(a) == float(b)
    return canonical_config({"v": a}) == canonical_config({"v": b})


def _matches(config: dict, where: dict) -> bool:
    return all(k in config and _same(config[k], v) for k, v in where.items())


def reference_table(references: Sequence[Reference], configs: dict[int, dict],
                    summary: pd.DataFrame) -> pd.DataFrame:
    """Each published figure beside this run's mean ± s.e. for every configuration it fits.

    Columns: ``source, metric, config_id, published, ours, se, n_seeds, difference``
    (ours − published) and ``z`` (difference / s.e.; NaN with fewer than two seeds).
    A reference that no configuration of the run matches is listed with empty
    results, so the report shows what was not run.
    """
    rows = []
    for ref in references:
        matched = [cid for cid, config in configs.items() if _matches(config, ref.where)]
        for cid in matched or [None]:
            part = summary[(summary["config_id"] == cid) & (summary["metric"] == ref.metric)]
            ours = part.iloc[0] if len(part) else None
            mean = math.nan if ours is None else float(ours["mean"])
            se = math.nan if ours is None else float(ours["se"])
            rows.append({
                "source": ref.source, "metric": ref.metric,
                "config_id": "not run" if cid is None else cid,
                "published": float(ref.value), "ours": mean, "se": se,
                "n_seeds": 0 if ours is None else int(ours["n_seeds"]),
                "difference": mean - ref.value,
                "z": (mean - ref.value) / se if se > 0 else math.nan,
                "note": ref.note,
            })
    columns = ["source", "metric", "config_id", "published", "ours", "se", "n_seeds",
               "difference", "z", "note"]
    return pd.DataFrame(rows, columns=columns)


def _write_outputs(study: Study, df, failures, out_dir: Path, run_info: dict,
                   configs: dict[int, dict]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(df)
    paired = paired_comparison(df)
    df.to_csv(out_dir / "trials.csv", index=False)
    summary.to_csv(out_dir / "summary.csv", index=False)
    paired.to_csv(out_dir / "paired.csv", index=False)
    failures.to_csv(out_dir / "failures.csv", index=False)
    references = reference_table(study.references, configs, summary)
    if len(references):
        references.to_csv(out_dir / "references.csv", index=False)
    shown = ~summary["metric"].map(study.detail).astype(bool)
    summary, paired = summary[shown], paired[~paired["metric"].map(study.detail).astype(bool)]
    figures = []
    default = plot_summary(summary, df[~df["metric"].map(study.detail).astype(bool)],
                           out_dir / "summary.png", title=f"Study {study.name}")
    if default is not None:
        figures.append(default)
    notes = []
    if study.analyze is not None and not df.empty:
        try:
            study.analyze(df.copy(), out_dir)
        except Exception as err:  # noqa: BLE001 - trials are saved; report the hook's failure
            message = f"analyze hook failed: {type(err).__name__}: {err}"
            warnings.warn(message, stacklevel=3)
            notes.append(message)
    if study.detail_metrics:
        notes.append(
            "metrics starting with " + ", ".join(f"`{p}`" for p in study.detail_metrics)
            + " are in trials.csv and summary.csv but not in the table above"
        )
    # Link every figure in the folder: the default one first, then the hook's.
    figures += sorted(p for p in out_dir.rglob("*.png") if p not in figures)
    write_report(
        out_dir / "report.md",
        name=study.name,
        docstring=study.question,
        run_info=run_info,
        summary=summary,
        paired=paired,
        failures=failures,
        figures=figures,
        notes=notes,
        protocol=study.protocol,
        references=references,
    )

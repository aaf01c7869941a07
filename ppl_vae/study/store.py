"""One JSON file per finished trial, so an interrupted study resumes where it stopped.

A trial is identified by a hash of ``(study name, config, seed)``; its record is
written to ``<out>/<study>/trials/<key>.json`` through a temporary file and an
atomic :func:`os.replace`, so a crash never leaves a half-written record behind.
Records of failed trials are kept too (with the error message), so a resumed run
does not silently retry them unless asked to.

Record layout (plain JSON)::

    {"key": "...", "study": "...", "config": {...}, "seed": 0,
     "status": "ok" | "error", "results": {"metric": value, ...},
     "error": null | "ValueError: ...", "traceback": null | "...",
     "seconds": 1.23, "finished": "2026-01-01T12:00:00+00:00"}
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import pandas as pd

#: Columns of the tidy trial table that are not configuration keys.
RESERVED_COLUMNS = ("study", "config_id", "seed", "metric", "value")


def canonical_config(config: dict) -> str:
    """The configuration as canonical JSON (sorted keys), the form that gets hashed."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=True)


def trial_key(study: str, config: dict, seed: int) -> str:
    """Stable 16-hex-digit identifier of one trial: a SHA-256 of (study, config, seed)."""
    payload = json.dumps([study, json.loads(canonical_config(config)), int(seed)], sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


class TrialStore:
    """Directory of per-trial JSON records.

    Parameters
    ----------
    root : path-like
        Directory holding the ``<key>.json`` files; created on first write.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def load(self) -> dict[str, dict]:
        """All readable records, by key. Unreadable files are skipped with a warning."""
        records: dict[str, dict] = {}
        if not self.root.is_dir():
            return records
        for file in sorted(self.root.glob("*.json")):
            try:
                record = json.loads(file.read_text(encoding="utf-8"))
                records[record["key"]] = record
            except (OSError, ValueError, KeyError, TypeError) as err:
                warnings.warn(
                    f"ignoring unreadable trial record {file} ({err}); "
                    "the trial will run again — delete the file to silence this",
                    stacklevel=2,
                )
        return records

    def save(self, record: dict) -> Path:
        """Write ``record`` atomically (temporary file, fsync, rename) and return its path."""
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.path(record["key"])
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=1, allow_nan=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        return target


def tidy_frame(study: str, jobs: list[dict], records: dict[str, dict]) -> pd.DataFrame:
    """Tidy table of successful trials: one row per (trial, metric).

    Rows follow the grid order, then the seed order, then the order in which the
    trial returned its metrics, so the table does not depend on which executor ran
    the trials or in what order they finished.

    Parameters
    ----------
    study : str
        Study name, repeated in the ``study`` column.
    jobs : list of dict
        One entry per trial with ``key``, ``config_id``, ``config`` and ``seed``.
    records : dict
        Stored records by key; jobs without an ``ok`` record contribute no rows.
    """
    config_keys: list[str] = []
    for job in jobs:
        for name in job["config"]:
            if name not in config_keys:
                config_keys.append(name)
    rows = []
    for job in jobs:
        record = records.get(job["key"])
        if record is None or record.get("status") != "ok":
            continue
        for metric, value in record["results"].items():
            row = {"study": study, "config_id": job["config_id"]}
            row.update({name: job["config"].get(name) for name in config_keys})
            row.update(seed=job["seed"], metric=metric, value=float(value))
            rows.append(row)
    columns = ["study", "config_id", *config_keys, "seed", "metric", "value"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({"config_id": "int64", "seed": "int64", "value": "float64"})


def failures_frame(jobs: list[dict], records: dict[str, dict]) -> pd.DataFrame:
    """One row per failed trial of ``jobs``: ``config_id, config, seed, error``."""
    rows = []
    for job in jobs:
        record = records.get(job["key"])
        if record is not None and record.get("status") != "ok":
            rows.append(
                {
                    "config_id": job["config_id"],
                    "config": canonical_config(job["config"]),
                    "seed": job["seed"],
                    "error": record.get("error") or "unknown error",
                }
            )
    return pd.DataFrame(rows, columns=["config_id", "config", "seed", "error"])

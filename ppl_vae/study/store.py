"""One JSON file per finished trial, so an interrupted study resumes where it stopped.

A trial is identified by a hash of ``(study name, config, seed)``; its record is
written to ``<out>/<study>/trials/<key>.json`` through a temporary file and an
atomic :func:`os.replace`, so a crash never leaves a half-written record behind.
Records of failed trials are kept too (with the error message), so a resumed run
does not silently retry them unless asked to.

Two runs on one folder share the work through claim files: before a trial
starts, its run creates ``<key>.claim`` (exclusively, holding its host, pid and
process start time). Another run skips a trial claimed by a live process and
waits for its record; a claim whose process is gone is taken over. Claims by
another host (a shared file system) cannot be checked, so they are skipped —
and listed in the run's report and returned table — unless the run is told
that they are dead (``retry_claimed=True``, ``ppl-vae study --retry-claimed``):
then they are taken over like any stale claim.

A record that is not valid JSON or does not have the layout below is ignored
with a warning naming the file, so its trial runs again.

Record layout (plain JSON)::

    {"key": "...", "study": "...", "config": {...}, "seed": 0,
     "status": "ok" | "error", "results": {"metric": value, ...},
     "error": null | "ValueError: ...", "traceback": null | "...",
     "seconds": 1.23, "finished": "2026-01-01T12:00:00+00:00"}
"""

from __future__ import annotations

import datetime
import hashlib
import json
import numbers
import os
import socket
import time
import warnings
from pathlib import Path

import pandas as pd

#: Columns of the tidy trial table that are not configuration keys.
RESERVED_COLUMNS = ("study", "config_id", "seed", "metric", "value")


def canonical_config(config: dict) -> str:
    """The configuration as canonical JSON (sorted keys), the form that gets hashed."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=True)


def trial_key(study: str, config: dict, seed: int, version=None) -> str:
    """Stable 16-hex-digit identifier of one trial: a SHA-256 of (study, config, seed), and
    of the study's ``version`` when it has one (None keeps the keys of unversioned studies)."""
    parts = [study, json.loads(canonical_config(config)), int(seed)]
    if version is not None:
        parts.append(str(version))
    payload = json.dumps(parts, sort_keys=True)
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
                record = check_record(json.loads(file.read_text(encoding="utf-8")))
                records[record["key"]] = record
            except (OSError, ValueError, KeyError, TypeError) as err:
                warnings.warn(
                    f"ignoring unreadable trial record {file} ({err}); "
                    "the trial will run again — delete the file to silence this",
                    stacklevel=2,
                )
        return records

    def read(self, key: str) -> dict | None:
        """The valid record of ``key``, or None (missing or unreadable)."""
        try:
            return check_record(json.loads(self.path(key).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # -- claims: two runs on one folder share the trials ------------------------------

    def claim_path(self, key: str) -> Path:
        return self.root / f"{key}.claim"

    def claim(self, key: str, *, take_over_other_hosts: bool = False) -> bool:
        """Claim ``key`` for this process; False if a live process holds it.

        A claim left by a process that is gone (killed, crashed) is taken over; so
        is one by another host when ``take_over_other_hosts`` (its run is known dead).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.claim_path(key)
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                other = take_over_other_hosts and self.claimed_by_other_host(key)
                if not other and claim_is_live(path):
                    return False
                # stale: move it aside atomically (only one taker succeeds), then retry
                stale = path.with_name(f".{path.name}.{os.getpid()}.stale")
                try:
                    os.replace(path, stale)
                    stale.unlink(missing_ok=True)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(_owner(os.getpid()), fh)
            return True
        return False

    def claim_owner(self, key: str) -> dict | None:
        """Who claims ``key``: ``{"host", "pid", "since"}`` (``since``: the claim file's
        time, ISO 8601 UTC), or None without a readable claim."""
        path = self.claim_path(key)
        try:
            owner = json.loads(path.read_text(encoding="utf-8"))
            since = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.UTC)
            return {"host": str(owner["host"]), "pid": owner.get("pid"),
                    "since": since.isoformat(timespec="seconds")}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def other_host_claim(self, key: str) -> dict | None:
        """:meth:`claim_owner` of ``key`` when that is another host, else None."""
        owner = self.claim_owner(key)
        return owner if owner is not None and owner["host"] != socket.gethostname() else None

    def claimed_by_other_host(self, key: str) -> bool:
        return self.other_host_claim(key) is not None

    def release(self, key: str) -> None:
        """Remove this process's claim on ``key`` (a claim by another process is left)."""
        path = self.claim_path(key)
        try:
            owner = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if owner == _owner(os.getpid()):
            path.unlink(missing_ok=True)

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


def check_record(record) -> dict:
    """``record`` if it has the stored layout; otherwise a ValueError saying what is wrong."""
    if not isinstance(record, dict):
        raise ValueError(f"it holds a {type(record).__name__}, not a record object")
    if not isinstance(record.get("key"), str):
        raise ValueError("its 'key' is missing or not a string")
    if record.get("status") not in ("ok", "error"):
        raise ValueError(f"its status {record.get('status')!r} is not 'ok' or 'error'")
    if not isinstance(record.get("config"), dict):
        raise ValueError("its 'config' is not an object")
    seed = record.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"its seed {seed!r} is not an integer >= 0")
    results = record.get("results")
    if not isinstance(results, dict):
        raise ValueError(f"its 'results' is {type(results).__name__}, not an object of metrics")
    for name, value in results.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"metric {name!r} has the non-numeric value {value!r}")
    if record["status"] == "ok" and not results:
        raise ValueError("it is 'ok' but holds no metrics")
    return record


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), to tell a reused pid from its claimant."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner(pid: int) -> dict:
    return {"host": socket.gethostname(), "pid": pid, "start": _start_time(pid)}


def claim_is_live(path: Path) -> bool:
    """True when the claim at ``path`` belongs to a process that still runs.

    A claim from another host cannot be checked and counts as live; an
    unreadable claim (being written right now) counts as live too.
    """
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
        host, pid = owner["host"], int(owner["pid"])
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError):
        try:  # a claim still being written is fresh; an old unreadable one is stale
            return os.path.getmtime(path) > time.time() - 10
        except OSError:
            return False
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return owner.get("start") is None or owner.get("start") == _start_time(pid)


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
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                continue  # refused by check_record when read from disk
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

"""Which pending trials this run may take: claim files shared with other runs of the study.

Split from :mod:`ppl_vae.study.core`, whose :func:`~ppl_vae.study.run` drives it; also the
report lines on trials left to other runs.
"""

from __future__ import annotations

import pandas as pd

from .store import TrialStore


class Claims:
    """This run's pending trials, handed to the executor only once claimed.

    A trial claimed by another live process on this machine is skipped and
    waited for (its record is adopted when it appears); a claim whose process is
    gone is taken over; a claim from another host is left to it (listed in
    ``left``, key -> owner) unless ``retry_claimed``. See
    :class:`~ppl_vae.study.store.TrialStore` for the claim files.
    """

    def __init__(self, store: TrialStore, jobs: list[dict], records: dict[str, dict], *,
                 retry_claimed: bool = False):
        self.store = store
        self.retry_claimed = retry_claimed
        self.left: dict[str, dict] = {}
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
            if record is None and self.store.claim(key, take_over_other_hosts=self.retry_claimed):
                record = self._finished_elsewhere(key)  # finished just before our claim
                if record is None:
                    self.jobs.remove(job)
                    self.held.add(key)
                    return job
                self.store.release(key)
            if record is not None:
                self.jobs.remove(job)
                self.on_elsewhere(record)
            elif (owner := self.store.other_host_claim(key)) is not None:
                self.jobs.remove(job)  # cannot tell if it lives: leave the trial to it
                self.left[key] = owner
        return None

    def exhausted(self) -> bool:
        return not self.jobs

    def release(self, key: str) -> None:
        self.store.release(key)
        self.held.discard(key)

    def release_all(self) -> None:
        for key in list(self.held):
            self.release(key)


def claimed_elsewhere_frame(jobs: list[dict], owners: dict[str, dict]) -> pd.DataFrame:
    """The trials left to another host's run: ``config_id, seed, key, host, pid, since``."""
    rows = [{"config_id": j["config_id"], "seed": j["seed"], "key": j["key"], **owners[j["key"]]}
            for j in jobs if j["key"] in owners]
    return pd.DataFrame(rows, columns=["config_id", "seed", "key", "host", "pid", "since"])


def claimed_text(left: pd.DataFrame) -> str:
    hosts = ", ".join(sorted(set(left["host"])))
    return (f"{len(left)} trial(s) claimed by a run on another host ({hosts}) were not run "
            "here; if that run is dead, run again with retry_claimed=True "
            "(ppl-vae study --retry-claimed)")


def trials_line(total: int, reused: int, ran: int, left: pd.DataFrame) -> str:
    """The report's ``trials`` entry: how many were reused, run now, finished by
    another run on this folder, and left to another host's run."""
    others = total - reused - ran - len(left)
    parts = [f"{reused} reused from earlier runs", f"{ran} run now"]
    if others:
        parts.append(f"{others} finished by another run on this folder")
    if len(left):
        parts.append(claimed_text(left))
    return f"{total} ({', '.join(parts)})"

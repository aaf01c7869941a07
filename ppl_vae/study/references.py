"""Published figures a study's report prints beside its own results.

A :class:`Reference` names a metric, the published value, its citation and the
configurations it applies to; :func:`reference_table` puts each beside the run's
mean ± s.e. for every configuration it fits.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from .store import canonical_config


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

    Examples
    --------
    The report prints the published value beside the run's mean for ``n = 4``:

    >>> import tempfile
    >>> from pathlib import Path
    >>> import ppl_vae as pv
    >>> ref = pv.study.Reference(metric="score", value=4.2, source="Doe (2020), Table 1",
    ...                          where={"n": 4})
    >>> study = pv.study.Study(name="toy", trial=lambda config, seed: {"score": config["n"]},
    ...                        grid=[{"n": 1}, {"n": 4}], references=[ref])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = pv.study.run(study, seeds=2, out=tmp, workers=1, progress=False)
    ...     report = (Path(tmp) / "toy" / "report.md").read_text()
    ...     table = (Path(tmp) / "toy" / "references.csv").is_file()
    >>> study.references[0].where, "Doe (2020), Table 1" in report, table
    ({'n': 4}, True, True)
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


def check_references(references, grids) -> tuple[Reference, ...]:
    """``references`` as a tuple of :class:`Reference`, each ``where`` naming only keys that
    some configuration of ``grids`` (lists of dicts, or None) has; else a ValueError."""
    references = tuple(references)
    for i, ref in enumerate(references):
        if not isinstance(ref, Reference):
            raise ValueError(
                f"references[{i}]={ref!r} is invalid: pass Reference(metric=..., "
                "value=..., source=...) objects"
            )
    keys = {k for grid in grids if grid for config in grid for k in config}
    for i, ref in enumerate(references):
        unknown = sorted(set(ref.where) - keys)
        if unknown:
            raise ValueError(
                f"references[{i}].where names {unknown}, which no configuration has; "
                f"use configuration keys ({', '.join(sorted(keys))})"
            )
    return references


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

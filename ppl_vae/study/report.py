"""A study's outputs: tables, the default figure and ``report.md`` (:func:`write_outputs`).

Markdown tables are rendered here rather than with ``DataFrame.to_markdown``,
which needs the optional ``tabulate`` package. Figures are drawn on a bare
:class:`matplotlib.figure.Figure` with the Agg canvas, so no pyplot state or
global backend is touched (safe inside notebooks and worker processes).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .analysis import config_columns, paired_comparison, summarize
from .references import reference_table


def _cell(value, floatfmt: str) -> str:
    if isinstance(value, float | np.floating):
        text = "" if math.isnan(value) else format(float(value), floatfmt)
    elif value is None or (isinstance(value, float) and math.isnan(value)):
        text = ""
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, *, floatfmt: str = ".4g") -> str:
    """Render ``df`` (without its index) as a GitHub-flavoured markdown table."""
    header = [str(c) for c in df.columns]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    lines = [
        "| " + " | ".join(_cell(h, floatfmt) for h in header) + " |",
        "|" + "|".join("---:" if num else ":---" for num in numeric) + "|",
    ]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, floatfmt) for v in row) + " |")
    return "\n".join(lines)


def config_label(row: pd.Series, keys: list[str]) -> str:
    """Short label such as ``"K=10, lr=0.01"`` from the configuration columns ``keys``
    (``k=–`` where the configuration leaves ``k`` out: the trial's default)."""
    parts = [f"{k}={_value_text(row[k])}" for k in keys]
    return ", ".join(parts) if parts else f"config {row['config_id']}"


def _value_text(value) -> str:
    """A configuration value as text: ``–`` for a key the configuration leaves out, an
    integral float (a column made float by such gaps) as an integer."""
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value.is_integer():
            return str(int(value))
    return str(value)


def _varying_keys(summary: pd.DataFrame) -> list[str]:
    keys = config_columns(summary)
    per_config = summary.drop_duplicates("config_id")
    varying = [k for k in keys if per_config[k].astype(str).nunique(dropna=False) > 1]
    return varying or keys


def plot_summary(
    summary: pd.DataFrame, trials: pd.DataFrame, path: str | Path, *, title: str
) -> Path | None:
    """Per-metric panels of configuration means with bootstrap intervals and seed points
    (drawn by :func:`ppl_vae.plots.interval_panels`).

    Returns the PNG path, or None when there is nothing to plot.
    """
    from ppl_vae import plots

    if summary.empty:
        return None
    keys = _varying_keys(summary)
    labels = {
        row["config_id"]: config_label(row, keys)
        for _, row in summary.drop_duplicates("config_id").iterrows()
    }
    if len(set(labels.values())) < len(labels):  # two configurations, one label: number them
        labels = {cid: f"{cid}: {label}" for cid, label in labels.items()}
    order = sorted(labels)
    rows = summary.assign(config=summary["config_id"].map(labels),
                          rank=summary["config_id"].map(order.index)).sort_values("rank", kind="stable")
    points = trials.assign(config=trials["config_id"].map(labels))
    plots.interval_panels(rows, path=path, points=points, title=title, dpi=110)
    return Path(path)


def split_docstring(text: str) -> tuple[str, str]:
    """Split a study docstring into (question, hypothesis).

    Paragraphs starting with ``Hypothesis`` (e.g. ``"Hypothesis: ..."``) form the
    hypothesis; the other paragraphs form the question.
    """
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", (text or "").strip()) if p.strip()]
    hyp = [p for p in paragraphs if re.match(r"hypothes[ie]s\b", p, flags=re.IGNORECASE)]
    question = [p for p in paragraphs if p not in hyp]
    hypothesis = "\n\n".join(
        re.sub(r"^hypothes[ie]s\s*:?\s*", "", p, flags=re.IGNORECASE) for p in hyp
    )
    return "\n\n".join(question), hypothesis


def _paired_section(paired: pd.DataFrame, pair_within) -> list[str]:
    """The report's paired comparisons, saying which pairs are tested and why."""
    within = ", ".join(f"`{k}`" for k in pair_within)
    if paired.empty:
        return ["", "### Paired differences", "",
                f"None tested: no two configurations share {within} (the data they see)."
                if pair_within else "None tested (one configuration)."]
    refs = sorted(int(r) for r in paired["reference_id"].unique())
    pairs = paired.drop_duplicates("config_id")[["config_id", "reference_id"]]
    tested = ", ".join(f"{int(c)} vs {int(r)}" for c, r in pairs.itertuples(index=False))
    title = (f"### Paired differences against config {refs[0]}" if len(refs) == 1
             else "### Paired differences within groups")
    why = (f" Only configurations that share {within} (and so the data they see) are "
           "paired." if pair_within else "")
    out = ["", title, "", (
        f"Per-seed difference (config − reference) on shared seeds; p-value of the paired "
        f"t-test (scipy.stats.ttest_rel). Pairs tested: {tested}.{why}"), ""]
    cols = [c for c in paired.columns if c != "study" and (c != "reference_id" or len(refs) > 1)]
    return out + [markdown_table(paired[cols])]


def write_report(
    path: str | Path,
    *,
    name: str,
    docstring: str,
    run_info: dict,
    summary: pd.DataFrame,
    paired: pd.DataFrame,
    failures: pd.DataFrame,
    figures: list[Path],
    notes: list[str] = (),
    protocol: str = "",
    references: pd.DataFrame | None = None,
    pair_within=(),
    analysis: str = "",
) -> Path:
    """Write the study's ``report.md`` and return its path.

    ``protocol`` (prose: the sizes and their distance from the paper) and
    ``references`` (see :func:`ppl_vae.study.references.reference_table`) get their own
    sections when given, and so does ``analysis`` (markdown from the study's hook).
    """
    path = Path(path)
    question, hypothesis = split_docstring(docstring)
    out = [f"# Study `{name}`", ""]
    out += ["## Question", "", question or "_(no question stated in the study docstring)_", ""]
    out += ["## Hypothesis", "", hypothesis or "_(no hypothesis stated in the study docstring)_"]
    out += ["", "## Run", ""]
    out += [f"- {key}: {value}" for key, value in run_info.items()]
    if protocol:
        out += ["", "## Protocol and sizes", "", protocol.strip()]
    out += ["", "## Results", ""]
    if summary.empty:
        out.append("_No successful trials._")
    else:
        out += [
            (
                "Mean across seeds, standard error (sd/√n) and a 95% percentile bootstrap "
                "interval of the mean, per configuration and metric."
            ),
            "",
        ]
        cols = [c for c in summary.columns if c != "study"]
        out.append(markdown_table(summary[cols]))
    out += _paired_section(paired, pair_within)
    if references is not None and len(references):
        out += ["", "## Beside the published figures", ""]
        out += [
            (
                "Our mean ± s.e. over seeds next to the published value; difference = ours − "
                "published, z = difference / s.e. The protocols differ as described above, "
                "so a difference is a finding to explain, not a failure by itself."
            ),
            "",
        ]
        out.append(markdown_table(references))
    if analysis.strip():
        out += ["", "## Analysis", "", analysis.strip()]
    out += ["", "## Failures", ""]
    if failures.empty:
        out.append("None.")
    else:
        count = len(failures)
        out += [f"{count} trial(s) failed (not retried on resume unless `retry_failed=True`):", ""]
        out.append(markdown_table(failures))
    out += ["", "## Figures", ""]
    links = [Path(os.path.relpath(fig, path.parent)).as_posix() for fig in figures]
    out += [f"![{Path(link).stem}]({link})" for link in links] or ["None."]
    if notes:
        out += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def write_outputs(study, df, failures, out_dir: Path, run_info: dict,
                  configs: dict[int, dict]) -> None:
    """Write a run's tables, figures and ``report.md`` into ``out_dir``: ``study`` is the
    :class:`~ppl_vae.study.core.Study`, ``df`` its tidy table, ``configs`` the run's grid
    by configuration id (for the published references)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(df)
    pair_within = [k for k in study.pair_within if k in df.columns]
    paired = paired_comparison(df, pair_within=pair_within)
    df.to_csv(out_dir / "trials.csv", index=False)
    summary.to_csv(out_dir / "summary.csv", index=False)
    paired.to_csv(out_dir / "paired.csv", index=False)
    failures.to_csv(out_dir / "failures.csv", index=False)
    references = reference_table(study.references, configs, summary)
    if len(references):
        references.to_csv(out_dir / "references.csv", index=False)

    def shown(frame):  # without the study's detail metrics
        return frame[~frame["metric"].map(study.detail).astype(bool)]

    summary, paired = shown(summary), shown(paired)
    figures = []
    default = plot_summary(summary, shown(df), out_dir / "summary.png",
                           title=f"Study {study.name}")
    if default is not None:
        figures.append(default)
    notes, analysis = [], ""
    if study.analyze is not None and not df.empty:
        try:
            returned = study.analyze(df.copy(), out_dir)
            analysis = returned if isinstance(returned, str) else ""
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
        pair_within=pair_within,
        analysis=analysis,
    )

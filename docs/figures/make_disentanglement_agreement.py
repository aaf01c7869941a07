"""Draw docs/figures/disentanglement_agreement.png: the README's disentanglement figure.

The Spearman rank correlations between disentanglement_lib's six scores across every
trial of a run of the ``disentanglement`` study, read from the run's ``agreement.csv``.
Run: ``ppl-vae study disentanglement --out OUT`` (or ``--small``), then
``python docs/figures/make_disentanglement_agreement.py OUT/disentanglement``.
"""

import sys
from pathlib import Path

import pandas as pd

import ppl_vae as pv
from ppl_vae.studies import _disentanglement_analysis as analysis

run = Path(sys.argv[1])
table = pd.read_csv(run / "agreement.csv")
trials = pd.read_csv(run / "trials.csv")[["config_id", "seed"]].drop_duplicates()
size = next(line for line in (run / "report.md").read_text().splitlines()
            if line.startswith("- size:")).split(": ")[1]
matrix = analysis.agreement_matrix(table)
pv.plots.correlation_heatmap(
    matrix, path=Path(__file__).with_name("disentanglement_agreement.png"),
    title=f"Do the metrics agree? Spearman ρ over {len(trials)} trials ({size} size)")
print(matrix.round(2).to_string())

"""Statistical studies: grids of configurations × seeds, run locally or on Ray.

``run(name_or_study, ...)`` executes (or resumes) a study and writes a tidy table,
summaries, figures and a report to ``<out>/<study>/``; see :mod:`ppl_vae.study.core`.
"""

from .analysis import paired_comparison, summarize
from .context import TrialContext
from .core import SIZES, Study, available_studies, get_study, run
from .executors import trial_device
from .ray_executor import start_local_ray
from .references import Reference

__all__ = [
    "SIZES",
    "Reference",
    "Study",
    "TrialContext",
    "available_studies",
    "get_study",
    "paired_comparison",
    "run",
    "start_local_ray",
    "summarize",
    "trial_device",
]

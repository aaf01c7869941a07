"""Figures: arrays (numpy or torch) in, a saved image file and the Figure out.

Every function takes ``path`` (parent folders are created) and an optional
``title`` and returns the :class:`matplotlib.figure.Figure`. Figures are drawn
on an Agg canvas without pyplot, so importing this package never switches the
backend of an interactive session and no figure needs closing.
"""

from ppl_vae.plots.agreement import correlation_heatmap, metric_scatter
from ppl_vae.plots.calibration import rank_histograms
from ppl_vae.plots.curves import ais_vs_steps, bound_vs_k, training_curve
from ppl_vae.plots.grids import image_grid, reconstruction_grid, sample_comparison, tile_images
from ppl_vae.plots.latent import latent_scatter
from ppl_vae.plots.subclasses import subclass_figure
from ppl_vae.plots.summaries import histogram_comparison, interval_panels, metric_bars
from ppl_vae.plots.traversals import resynthesis_grid, traversal_grid

__all__ = [
    "ais_vs_steps",
    "bound_vs_k",
    "correlation_heatmap",
    "histogram_comparison",
    "image_grid",
    "interval_panels",
    "latent_scatter",
    "metric_bars",
    "metric_scatter",
    "rank_histograms",
    "reconstruction_grid",
    "resynthesis_grid",
    "sample_comparison",
    "subclass_figure",
    "tile_images",
    "training_curve",
    "traversal_grid",
]

"""Where ``pv.fit`` and its result types were first defined; they live in
:mod:`ppl_vae.training` now (``training/fit.py``, ``trainer.py``, ``history.py``)."""

from ppl_vae.training.bounds import elbo_loss as _loss_fn
from ppl_vae.training.fit import fit
from ppl_vae.training.history import DivergenceWarning, FitResult
from ppl_vae.training.trainer import TrainingError

__all__ = ["DivergenceWarning", "FitResult", "TrainingError", "_loss_fn", "fit"]

"""Training: :func:`fit` (``pv.fit``) over a :class:`FitConfig` and a :class:`Trainer`;
the bounds it maximises, optimisers and schedules, callbacks and loggers, the
history, and the resume check."""

from ppl_vae.training.bounds import renyi_bound
from ppl_vae.training.callbacks import Callback, CSVLogger, TensorBoardLogger
from ppl_vae.training.config import FitConfig
from ppl_vae.training.fit import fit
from ppl_vae.training.history import DivergenceWarning, FitResult
from ppl_vae.training.optim import NAMED_SCHEDULES, OPTIMIZERS, iwae_paper_boundaries
from ppl_vae.training.trainer import Trainer, TrainingError

__all__ = [
    "NAMED_SCHEDULES",
    "OPTIMIZERS",
    "CSVLogger",
    "Callback",
    "DivergenceWarning",
    "FitConfig",
    "FitResult",
    "TensorBoardLogger",
    "Trainer",
    "TrainingError",
    "fit",
    "iwae_paper_boundaries",
    "renyi_bound",
]

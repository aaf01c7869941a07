"""The parts of :func:`ppl_vae.fit` beyond the loop: objectives, optimisers and
schedules, callbacks and loggers, and the resume check."""

from ppl_vae.training.callbacks import Callback, CSVLogger, TensorBoardLogger
from ppl_vae.training.objectives import renyi_bound
from ppl_vae.training.optim import NAMED_SCHEDULES, OPTIMIZERS, iwae_paper_boundaries

__all__ = [
    "NAMED_SCHEDULES",
    "OPTIMIZERS",
    "CSVLogger",
    "Callback",
    "TensorBoardLogger",
    "iwae_paper_boundaries",
    "renyi_bound",
]

"""Parts with an optimiser of their own inside ``pv.fit`` (``Penalty.auxiliary``).

A model lists them in its ``auxiliary_parts`` (the model contract); the trainer knows
nothing else about them. Here they get: their parameters kept out of the model's
optimiser (:func:`model_parameters`), one optimiser each, one
``auxiliary_step(model, x, y, optimizer)`` per training step on a batch other than the
step's (:meth:`AuxiliarySteps.step`), and their optimisers' state in the checkpoint.
"""

from __future__ import annotations

import torch

from ppl_vae.training import batches


def model_parameters(model) -> list:
    """The model's parameters without those of its auxiliary parts, in model order."""
    own = {id(p) for part in model.auxiliary_parts for p in part.auxiliary_parameters()}
    return [p for p in model.parameters() if id(p) not in own]


class AuxiliarySteps:
    """The optimisers of ``model.auxiliary_parts`` and their once-per-step update.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> from ppl_vae.training.auxiliary import AuxiliarySteps, model_parameters
    >>> model = pv.build("vae", data_dim=6, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> aux = AuxiliarySteps(model)                          # a plain VAE has none
    >>> aux.optimizers, aux.state_dict(), len(model_parameters(model)) == len(list(model.parameters()))
    ([], None, True)
    >>> model = pv.build("factor_vae", data_dim=6, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]},
    ...                  penalty=[{"kind": "factor_tc", "discriminator_hidden": [8]}])
    >>> aux = AuxiliarySteps(model)                          # FactorVAE's discriminator
    >>> len(aux.optimizers), len(model_parameters(model)) < len(list(model.parameters()))
    (1, True)
    >>> x = torch.bernoulli(torch.full((16, 6), 0.5))
    >>> [loss.shape for loss in aux.step(model, x, None, step=0, batch_size=8, seed=0)]
    [torch.Size([])]
    """

    def __init__(self, model):
        self.parts = tuple(model.auxiliary_parts)
        self.optimizers = [part.auxiliary_optimizer() for part in self.parts]

    def parameters(self) -> list[list]:
        """Each part's auxiliary parameters, in its optimiser's order."""
        return [list(part.auxiliary_parameters()) for part in self.parts]

    def step(self, model, x, y, *, step: int, batch_size: int, seed: int, source=False,
             binarize=False, device=None) -> list[torch.Tensor]:
        """One update of every part on the rows of step ``step + 1`` (another batch than
        step ``step``'s, from the same seeded order; all rows when a batch holds them all)."""
        if not self.parts:
            return []
        idx = batches.batch_indices(len(x), batch_size, step + 1, seed, device)
        xb = batches.batch(x, idx, source, binarize, model)
        yb = None if y is None else y[idx]
        return [part.auxiliary_step(model, xb, yb, opt)
                for part, opt in zip(self.parts, self.optimizers)]

    def state_dict(self) -> list[dict] | None:
        """The optimisers' states (None without auxiliary parts), for the checkpoint."""
        return [opt.state_dict() for opt in self.optimizers] if self.parts else None

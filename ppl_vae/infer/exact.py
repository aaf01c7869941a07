"""Closed-form log p(x) where the model has one (GMM, linear-Gaussian LVM)."""

from __future__ import annotations

import torch

from ppl_vae.infer import _program


def exact_log_likelihood(model, x, *, device=None) -> torch.Tensor:
    """log p(x) per datapoint, ``Tensor[N]``, from the model's closed-form marginal.

    Works for any model exposing ``marginal()`` (a torch Distribution over x):
    the Gaussian mixture Σₙ λₙ Norm[μₙ, σₙ²] and the linear-Gaussian LVM
    Norm[b, WWᵀ + σ²I]. Raises NotImplementedError for every other model.
    """
    if not hasattr(model, "marginal"):
        raise NotImplementedError(
            f"{type(model).__name__} has no closed-form log p(x); "
            "estimate it with pv.infer.log_likelihood"
        )
    x, _ = _program.check_data(_program.program(model, require_guide=False), x, device=device)
    with torch.no_grad():
        return model.marginal().log_prob(x)

"""Closed-form log p(x) where the model has one (GMM, linear-Gaussian LVM and model graphs)."""

from __future__ import annotations

import torch

from ppl_vae.infer import _program


def exact_log_likelihood(model, x, y=None, *, device=None) -> torch.Tensor:
    """log p(x) per datapoint, ``Tensor[N]``, in closed form.

    Works for any model exposing ``exact_log_prob(x, y)`` (a linear-Gaussian model
    graph: log p(x | y) given inputs ``y``, log p(x, y) given the labels of a
    categorical latent, the class summed out without them) or ``marginal()`` (a
    torch Distribution over x: the Gaussian mixture Σₙ λₙ Norm[μₙ, σₙ²], the
    linear-Gaussian LVM Norm[b, WWᵀ + σ²I]). Raises NotImplementedError for every
    other model (for a graph, naming what is not linear-Gaussian).
    """
    exact = getattr(model, "exact_log_prob", None)
    if exact is None and not hasattr(model, "marginal"):
        raise NotImplementedError(
            f"{type(model).__name__} has no closed-form log p(x); "
            "estimate it with pv.infer.log_likelihood"
        )
    prog = _program.program(model, require_guide=False)
    x, y = _program.check_data(prog, x, y, device=device)
    with torch.no_grad():
        if exact is not None:
            return exact(x, y)
        if y is not None:
            raise ValueError(
                f"y was given, but {type(model).__name__}'s closed form is of log p(x): drop y"
            )
        return model.marginal().log_prob(x)

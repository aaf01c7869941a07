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

    Examples
    --------
    A Gaussian mixture sums its one discrete latent out, so importance sampling with
    a single sample is exact too:

    >>> import torch
    >>> import ppl_vae as pv
    >>> gmm = pv.build("gmm", data_dim=2, num_components=3)
    >>> x = gmm.sample(5, noise=True, seed=0)
    >>> log_px = pv.infer.exact_log_likelihood(gmm, x)
    >>> log_px.shape
    torch.Size([5])
    >>> bool(torch.allclose(log_px, pv.infer.log_likelihood(gmm, x, num_samples=1).log_px))
    True
    >>> bool(torch.allclose(log_px, gmm.marginal().log_prob(x)))
    True
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

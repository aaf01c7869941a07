"""Closed-form log p(x) of a linear-Gaussian model graph.

When every continuous latent has z = W·pa + b + s·ε (priors ``standard_normal`` or
``normal`` with ``hidden = []`` and a scale independent of the parents), the decoder
is linear and the likelihood Normal with a fixed or learned σ, the latents and x are
jointly Gaussian given the inputs and the classes of a categorical latent. Written
in the noises ε (one standard-normal block per latent, in ancestral order), every
latent is z_i = μ_i + A_i ε with

    μ_i = b_i + Σ_p W_ip μ_p,        A_i = Σ_p W_ip A_p + [0 … diag s_i … 0],

where p runs over the latent's parents (an input or a class enters μ through its
value or one-hot row, and A not at all), and x = μ_x + A_x ε + σ ε_x, so

    p(x | y) = Norm_x[μ_x(y), A_x A_xᵀ + diag σ²].

A categorical latent without labels is summed out: log p(x) = logsumexp_c [log π_c +
log p(x | c)]; with labels it is log p(x, y) = log π_y + log p(x | y), as the
importance-sampled estimate is. A mixture prior (``mixture``, ``vamp`` with a Gaussian
encoder) is summed over its components the same way: each combination of components
is a Gaussian graph with its own weight. Everything is computed in float64.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch.distributions import MultivariateNormal

from ppl_vae.models import graph_spec
from ppl_vae.parts.likelihoods import NormalLikelihood


def _blocks(weight: torch.Tensor, parents, widths: dict) -> dict:
    """Split ``W [out, Σ widths]`` into one column block per parent."""
    out, start = {}, 0
    for name in parents:
        out[name] = weight[:, start : start + widths[name]]
        start += widths[name]
    return out


def _decoder_weights(model):
    decoder, likelihood = model.decoder, model.likelihood
    linear = getattr(decoder, "is_linear", False)
    if not (linear and isinstance(likelihood, NormalLikelihood)
            and decoder.net[0].weight.shape[0] == model.data_dim):
        raise NotImplementedError(
            "no closed-form log p(x) for this model graph: it needs a linear decoder "
            "(decoder.kind = 'mlp' with hidden = []) and likelihood.kind = 'normal' with a fixed "
            "or learned scale; estimate it with pv.infer.log_likelihood"
        )
    layer = decoder.net[0]
    return layer.weight.double(), layer.bias.double(), likelihood.scale.double()


def _fixed_values(model, y, dtype) -> dict:
    """The values of the inputs / categorical latent as parent rows ``[n, width]``."""
    if model.label is None:
        return {}
    node = model.nodes[model.label]
    if node["kind"] == "categorical":
        return {model.label: torch.nn.functional.one_hot(y.long(), node["num_classes"]).to(dtype)}
    return {model.label: y.to(dtype)}


#: Most mixture-component combinations the closed form sums over (one Cholesky each).
MAX_CONFIGURATIONS = 4096


def _configurations(model):
    """``[(log weight, {latent: (W, b, scale)})]``: one Gaussian graph per combination of the
    mixture components of the latents' priors (a single entry without mixtures)."""
    per_latent = [[(name, c) for c in model.priors[name].gaussian_components()]
                  for name in model.latent_sites]
    count = math.prod(len(options) for options in per_latent)
    if count > MAX_CONFIGURATIONS:
        raise NotImplementedError(
            f"the graph's mixture priors have {count} component combinations, more than the "
            f"closed form sums over ({MAX_CONFIGURATIONS}); estimate log p(x) with "
            "pv.infer.log_likelihood"
        )
    out = []
    for combo in itertools.product(*per_latent):
        log_w = sum(float(c[0]) for _, c in combo)
        out.append((log_w, {name: c[1:] for name, c in combo}))
    return out


def _gaussian(model, fixed: dict, terms: dict):
    """``(mean [n or 1, D], covariance [D, D])`` of x given the fixed values, with each
    latent's ``(W, b, scale)`` from ``terms`` (scale a vector, or a Cholesky factor)."""
    widths = {name: graph_spec.width(node) for name, node in model.nodes.items()}
    continuous = model.latent_sites
    sizes = {n: model.latents[n]["dim"] for n in continuous}
    total = sum(sizes.values())
    means, noise, offset = {}, {}, 0
    for name in continuous:
        weight, bias, scale = terms[name]
        dim = sizes[name]
        mean = bias.double().unsqueeze(0)
        a = torch.zeros(dim, total, dtype=torch.float64, device=bias.device)
        scale = scale.double()
        a[:, offset : offset + dim] = torch.diag(scale) if scale.dim() == 1 else scale
        offset += dim
        if weight is not None:
            parents = model.latents[name]["parents"]
            for parent, w in _blocks(weight.double(), parents, widths).items():
                mean, a = _add_parent(mean, a, w, parent, means, noise, fixed)
        means[name], noise[name] = mean, a
    weight, bias, sigma = _decoder_weights(model)
    mean = bias.unsqueeze(0)
    a = torch.zeros(weight.shape[0], total, dtype=torch.float64, device=bias.device)
    for parent, w in _blocks(weight, model.spec["decoder"]["parents"], widths).items():
        mean, a = _add_parent(mean, a, w, parent, means, noise, fixed)
    return mean, a @ a.T + torch.diag(sigma**2)


def _add_parent(mean, a, w, parent, means, noise, fixed):
    if parent in means:
        return mean + means[parent] @ w.T, a + w @ noise[parent]
    return mean + fixed[parent] @ w.T, a


def _label_cases(model, y, x):
    """``[(log weight, fixed values)]`` for the inputs / the categorical latent."""
    node = model.nodes.get(model.label)
    if node is None:
        return [(0.0, {})]
    if model.label in model.inputs:
        if y is None:
            raise ValueError(
                f"the model is conditioned on input {model.label!r}: pass y= (log p(x | y) in "
                "closed form)"
            )
        return [(0.0, _fixed_values(model, y, torch.float64))]
    prior = model.priors[model.label].distribution()
    if y is not None:  # log p(x, y)
        return [(prior.log_prob(y).double(), _fixed_values(model, y, torch.float64))]
    classes = torch.arange(node["num_classes"], device=x.device)
    return [(prior.log_prob(c).double(), _fixed_values(model, c.expand(1), torch.float64))
            for c in classes]


@torch.no_grad()
def log_marginal(model, x: torch.Tensor, y=None) -> torch.Tensor:
    """log p(x) ``[N]`` (log p(x | y) for an input, log p(x, y) for labels) in closed form:
    log Σ over the classes and mixture components of weight · Norm_x[mean, covariance]."""
    x64 = x.double()
    configurations = _configurations(model)
    _decoder_weights(model)  # refuse a nonlinear decoder before any work
    terms = [
        log_label + log_w + MultivariateNormal(*_gaussian(model, fixed, gaussians)).log_prob(x64)
        for log_label, fixed in _label_cases(model, y, x)
        for log_w, gaussians in configurations
    ]
    return torch.logsumexp(torch.stack(terms, 0), 0).to(x.dtype)

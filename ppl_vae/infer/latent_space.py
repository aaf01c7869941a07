"""Using the latent space: aggregated posterior, projection, attribute vectors, resynthesis.

The lecture notes' "Applications of variational autoencoders":

- sample generation from the *aggregated posterior*
  q(z | θ) = (1/I) Σᵢ q(z | xᵢ, θ), decoded by f[z, φ] (plus noise if asked);
- resynthesis: project two sets of images into the latent space (encoder mean,
  or the z maximising Pr(x | z) Pr(z)), take the difference of their means as
  an attribute vector, add multiples of it to a projected image and decode
  (Figure 17.13, after White, 2016, "Sampling generative networks").

Everything here reads a model only through Pyro traces of its ``model`` and
``guide`` (site ``"z"`` is the latent, site ``"x"`` the observation, inside
the ``"data"`` plate), plus ``decode(z)`` when the model offers one, so a raw
Pyro model/guide pair works as well as a ppl_vae model.
"""

from __future__ import annotations

import torch
from pyro import poutine

from ppl_vae import _checks, _runtime, _seed
from ppl_vae.infer import _trace

LATENT_SITE = "z"
OBSERVED_SITE = "x"
PROJECTIONS = ("mean", "map")


# -- reading distributions out of traces ---------------------------------------
def site_distribution(fn, site: str, *args, **kwargs) -> torch.distributions.Distribution:
    """The distribution at ``site`` in one trace of ``fn(*args, **kwargs)`` (penalties off)."""
    with _runtime.no_penalties():
        tr = poutine.trace(fn).get_trace(*args, **kwargs)
    if site not in tr.nodes or tr.nodes[site]["type"] != "sample":
        names = [n for n, s in tr.nodes.items() if s["type"] == "sample"]
        raise ValueError(
            f"the program has no sample site {site!r} (sites: {names}): name the "
            f"per-datapoint latent {LATENT_SITE!r} and the observation {OBSERVED_SITE!r}"
        )
    return tr.nodes[site]["fn"]


def posterior(model, x, *, y=None, guide=None, **model_kwargs):
    """q(z | x) for every row of ``x``: the guide's distribution at site ``"z"``, batch ``[N]``."""
    _, guide_fn, owner = _trace.resolve(model, guide)
    x, y = _trace.check_data(owner, x, y)
    return site_distribution(guide_fn, LATENT_SITE, x, y, **model_kwargs)


def _prior(model_fn, x, y, kwargs):
    """p(z) at site ``"z"`` of the model, batch ``[N]`` (for starting points)."""
    return site_distribution(model_fn, LATENT_SITE, x, y, **kwargs)


def decode(model, z: torch.Tensor, *, data_dim: int | None = None):
    """p(x | z) for latents ``z [M, latent]``: ``model.decode(z)`` when the model has one.

    A raw Pyro model is run with ``z`` conditioned and a placeholder ``x`` of
    ``data_dim`` columns, and the distribution at site ``"x"`` is read off (it
    does not depend on the observed value).
    """
    decoder = getattr(model, "decode", None)
    if callable(decoder):
        return decoder(z)
    model_fn = model.model if callable(getattr(model, "model", None)) else model
    if data_dim is None:
        raise ValueError(
            "data_dim=None with a model that has no decode(z): pass data_dim=<columns of x>"
        )
    placeholder = torch.zeros(z.shape[0], data_dim)
    conditioned = poutine.condition(model_fn, data={LATENT_SITE: z})
    return site_distribution(conditioned, OBSERVED_SITE, placeholder, None)


def _flat_decode_mean(model, z: torch.Tensor, data_dim: int) -> torch.Tensor:
    """Decoder means for ``z [..., latent]`` -> ``[..., D]``."""
    flat = z.reshape(-1, z.shape[-1])
    mean = decode(model, flat, data_dim=data_dim).mean
    return mean.reshape(*z.shape[:-1], mean.shape[-1])


# -- aggregated posterior ------------------------------------------------------
def aggregate_posterior(model, x_ref, *, y=None, guide=None, **model_kwargs):
    """The aggregated posterior q(z) = (1/I) Σᵢ q(z | xᵢ) over the rows of ``x_ref``.

    Parameters
    ----------
    model
        A ppl_vae model, or a raw Pyro model callable (then pass ``guide=``).
    x_ref : array [I, D]
        The datapoints whose posteriors are mixed.
    y : array [I], optional
        Labels, for guides conditioned on them.
    guide : callable, optional
        Another guide (e.g. from :func:`fit_local_guide`).

    Returns
    -------
    torch.distributions.MixtureSameFamily
        Equal weights 1/I over the I components q(z | xᵢ); event shape ``[latent]``.
    """
    with torch.no_grad():
        q = posterior(model, x_ref, y=y, guide=guide, **model_kwargs)
    if len(q.batch_shape) != 1 or len(q.event_shape) != 1:
        raise ValueError(
            f"q(z|x) has batch shape {tuple(q.batch_shape)} and event shape "
            f"{tuple(q.event_shape)}: the guide's site 'z' needs batch [N] and event [latent] "
            "(use .to_event(1) for independent coordinates)"
        )
    weights = torch.distributions.Categorical(logits=torch.zeros(q.batch_shape[0]))
    return torch.distributions.MixtureSameFamily(weights, q)


def sample_aggregate_posterior(
    model, x_ref, n: int, *, noise: bool = False, seed=None, guide=None, **model_kwargs
) -> torch.Tensor:
    """Data generated from the aggregated posterior: z ~ q(z), then p(x | z).

    Returns the decoder mean f[z, φ] (``noise=False``, the smooth images the
    lecture notes show) or a draw from p(x | f[z, φ]) (``noise=True``), ``[n, D]``.
    """
    n = _checks.positive_int("n", n)
    with _seed.seeded(seed), torch.no_grad():
        q = aggregate_posterior(model, x_ref, guide=guide, **model_kwargs)
        z = q.sample((n,))  # [n, latent]
        px = decode(model, z, data_dim=_data_dim(x_ref))
        return px.sample() if noise else px.mean


def _data_dim(x) -> int:
    return _checks.data_tensor("x", x).shape[1]


# -- projection -----------------------------------------------------------------
def project(
    model,
    x,
    *,
    method: str = "mean",
    steps: int = 200,
    lr: float = 1.0,
    seed=None,
    y=None,
    guide=None,
    **model_kwargs,
) -> torch.Tensor:
    """Latent representation of every row of ``x``, ``Tensor[N, latent]``.

    Parameters
    ----------
    method : {"mean", "map"}
        ``"mean"``: the mean of q(z | x) (the encoder's prediction).
        ``"map"``: argmax_z log Pr(x | z) + log Pr(z), per datapoint, by L-BFGS
        from the guide's mean (the prior mean when the guide cannot take ``x``).
    steps : int
        Maximum L-BFGS iterations for ``"map"``.
    lr : float
        L-BFGS step scale (a strong-Wolfe line search picks the step length).
    seed : int, optional
        Seeds any randomness the programs draw while being traced.
    """
    _checks.one_of("method", method, PROJECTIONS)
    steps = _checks.positive_int("steps", steps)
    lr = _checks.positive_float("lr", lr)
    model_fn, guide_fn, owner = _trace.resolve(model, guide)
    x, y = _trace.check_data(owner, x, y)
    with _seed.seeded(seed):
        if method == "mean":
            with torch.no_grad():
                return site_distribution(guide_fn, LATENT_SITE, x, y, **model_kwargs).mean
        return _map(model_fn, guide_fn, x, y, steps=steps, lr=lr, kwargs=model_kwargs)


def _start(model_fn, guide_fn, x, y, kwargs) -> torch.Tensor:
    with torch.no_grad():
        try:
            return site_distribution(guide_fn, LATENT_SITE, x, y, **kwargs).mean
        except (ValueError, NotImplementedError, IndexError, RuntimeError):
            # e.g. a local guide holding parameters for other datapoints
            return _prior(model_fn, x, y, kwargs).mean


def log_joint(model_fn, z, x, y, kwargs) -> torch.Tensor:
    """log Pr(x | z) + log Pr(z) per datapoint ``[N]``, with z conditioned (no β scaling)."""
    with _runtime.no_penalties():
        tr = poutine.trace(poutine.condition(model_fn, data={LATENT_SITE: z})).get_trace(
            x, y, **kwargs
        )
    total = torch.zeros(x.shape[0])
    for name, site in tr.nodes.items():
        if site["type"] != "sample" or name.startswith(_runtime.PENALTY_PREFIX):
            continue
        lp = site["fn"].log_prob(site["value"])
        # [N] inside the data plate; a global site (scalar) counts once per datapoint
        total = total + (lp.reshape(x.shape[0], -1).sum(-1) if lp.dim() else lp)
    return total


def _map(model_fn, guide_fn, x, y, *, steps, lr, kwargs) -> torch.Tensor:
    # The objective is a sum of per-datapoint terms, so one L-BFGS run on the
    # sum optimises every datapoint; gradients go to z only, never to weights.
    z = _start(model_fn, guide_fn, x, y, kwargs).detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [z], lr=lr, max_iter=steps, line_search_fn="strong_wolfe",
        tolerance_grad=1e-9, tolerance_change=1e-12,
    )

    def closure():
        loss = -log_joint(model_fn, z, x, y, kwargs).sum()
        (z.grad,) = torch.autograd.grad(loss, [z])
        return loss

    opt.step(closure)
    return z.detach()


# -- resynthesis -------------------------------------------------------------------
def attribute_vector(model, x_a, x_b, *, method: str = "mean", **project_kwargs) -> torch.Tensor:
    """Direction from set a to set b in latent space, ``Tensor[latent]``.

    The mean projection of ``x_b`` minus the mean projection of ``x_a`` (the
    notes' "difference between the vector means of the two groups").
    """
    z_a = project(model, x_a, method=method, **project_kwargs)
    z_b = project(model, x_b, method=method, **project_kwargs)
    return z_b.mean(0) - z_a.mean(0)


def resynthesize(
    model, x, vector, *, scales=(-2, -1, 0, 1, 2), method: str = "mean", **project_kwargs
) -> torch.Tensor:
    """Decoder means of ``project(x) + s · vector`` for each scale s, ``Tensor[N, S, D]``.

    Scale 0 is the plain reconstruction of the projected datapoint.
    """
    z = project(model, x, method=method, **project_kwargs)  # [N, latent]
    vector = torch.as_tensor(vector, dtype=z.dtype).reshape(-1)
    if vector.shape[0] != z.shape[1]:
        raise ValueError(
            f"vector has {vector.shape[0]} entries but the latent space has {z.shape[1]}: "
            "pass a vector from attribute_vector on the same model"
        )
    s = torch.as_tensor(scales, dtype=z.dtype).reshape(-1)
    if s.numel() == 0:
        raise ValueError("scales=() is empty: pass a few multiples, e.g. (-2, -1, 0, 1, 2)")
    moved = z[:, None, :] + s[None, :, None] * vector  # [N, S, latent]
    with torch.no_grad():
        return _flat_decode_mean(model, moved, _data_dim(x))


def traverse(model, z, dim: int, values, *, data_dim: int | None = None) -> torch.Tensor:
    """Decoder means along one latent coordinate, ``Tensor[len(values), D]``.

    ``z`` (``[latent]``) is copied once per value and coordinate ``dim`` set to it.
    ``data_dim`` is needed only for a raw Pyro model without ``decode``.
    """
    z = torch.as_tensor(z, dtype=torch.float32).reshape(-1)
    dim = _checks.positive_int("dim", dim, minimum=0)
    if dim >= z.shape[0]:
        raise ValueError(f"dim={dim} is out of range: the latent has {z.shape[0]} coordinates")
    v = torch.as_tensor(values, dtype=z.dtype).reshape(-1)
    if v.numel() == 0:
        raise ValueError("values is empty: pass the coordinate values, e.g. [-2, 0, 2]")
    codes = z.repeat(v.shape[0], 1)  # [V, latent]
    codes[:, dim] = v
    with torch.no_grad():
        return decode(model, codes, data_dim=data_dim).mean

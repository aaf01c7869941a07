"""Using the latent space: aggregated posterior, projection, attribute vectors, resynthesis.

The lecture notes' "Applications of variational autoencoders":

- sample generation from the *aggregated posterior*
  q(z | θ) = (1/I) Σᵢ q(z | xᵢ, θ), decoded by f[z, φ] (plus noise if asked);
- resynthesis: project two sets of images into the latent space (encoder mean,
  or the z maximising Pr(x | z) Pr(z)), take the difference of their means as
  an attribute vector, add multiples of it to a projected image and decode
  (Figure 17.13, after White, 2016, "Sampling generative networks").

Everything here reads a program through the trace reader of
:mod:`ppl_vae.infer._trace`: the latent site (the guide's one continuous latent
inside the datapoint plate, or ``latent=``), the observed site (``observed=``
when there are several) and the datapoint plate (``data_plate=``) are found from
a trace, so a Pyro model/guide pair written with any names works as well as a
ppl_vae model; ``decode(z)`` is used when the model offers one.
"""

from __future__ import annotations

import torch

from ppl_vae import _checks, _seed
from ppl_vae.infer import _trace
from ppl_vae.infer._latent_view import (  # noqa: F401 - re-exported: decode, moments, _View
    _MEAN_DRAWS,
    _choose,
    _continuous,
    _decode_mean,
    _decode_options,
    _flat_batch,
    _View,
    _view_of,
    decode,
    moments,
)

PROJECTIONS = ("mean", "map")


def posterior(model, x, *, y=None, guide=None, **options):
    """q(z | x) for every row of ``x``: the guide's distribution at the latent site, batch ``[N]``.

    ``options`` as for :func:`aggregate_posterior`.
    """
    with torch.no_grad():
        return _view_of(model, x, y, guide, dict(options)).posterior()


def posterior_mean(model, x, *, y=None, guide=None, num_samples: int = 16, seed=None,
                   **options) -> torch.Tensor:
    """E_q[z | x] at the latent site for every row of ``x``, ``Tensor[N, latent]``.

    The mean of the guide's distribution at the site, averaged over ``num_samples``
    passes of the guide: where q(z | x) reads latents the guide draws first (the upper
    layer of a bottom-up hierarchy, q(z2 | z1, x)), this integrates them out by Monte
    Carlo, E_{q(z1|x)} E_q[z2 | z1, x]; otherwise every pass gives the same mean.
    ``options`` as for :func:`aggregate_posterior`.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.tensor([[0.0, 0, 1, 1], [1, 1, 0, 0], [1, 0, 1, 0]])
    >>> z = pv.infer.posterior_mean(model, x, seed=0)
    >>> z.shape                                    # one mean per datapoint
    torch.Size([3, 2])
    >>> bool(torch.allclose(z, model.encode(x).mean))   # one Gaussian layer: the encoder's mean
    True
    """
    num_samples = _checks.positive_int("num_samples", num_samples)
    with _seed.seeded(seed), torch.no_grad():
        view = _view_of(model, x, y, guide, dict(options))
        if view.st.has_enumeration:
            raise ValueError(
                "the program enumerates a discrete latent, which the posterior mean of "
                f"{view.latent!r} would have to average over: pass its labels y="
            )
        if view.guide_site is None:
            raise ValueError(f"the guide does not sample {view.latent!r}: pass guide=")
        _, g = _trace.run(view.prog, view.x, view.y, view.st, particles=num_samples)
        fn = g.nodes[view.latent]["fn"]
        mean = moments(fn)[0].reshape(-1, view.st.size, fn.event_shape.numel())
        return mean.mean(0)


def aggregate_posterior(model, x_ref, *, y=None, guide=None, **options):
    """The aggregated posterior q(z) = (1/I) Σᵢ q(z | xᵢ) over the rows of ``x_ref``.

    Parameters
    ----------
    model
        A ppl_vae model, an object with ``model``/``guide`` methods, or a Pyro
        model callable (then pass ``guide=``).
    x_ref : array [I, D]
        The datapoints whose posteriors are mixed.
    y : array, optional
        Labels, for guides conditioned on them.
    guide : callable, optional
        Another guide (e.g. from :func:`fit_local_guide`).
    **options
        ``latent``, ``observed``, ``data_plate``, ``model_kwargs``,
        ``guide_kwargs``, ``device``, and keywords for the side(s) that accept them.

    Returns
    -------
    torch.distributions.MixtureSameFamily
        Equal weights 1/I over the I components q(z | xᵢ); event shape ``[latent]``.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.tensor([[0.0, 0, 1, 1], [1, 1, 0, 0], [1, 0, 1, 0]])
    >>> q = pv.infer.aggregate_posterior(model, x)
    >>> q.event_shape, q.sample((5,)).shape, q.log_prob(torch.zeros(2)).shape
    (torch.Size([2]), torch.Size([5, 2]), torch.Size([]))
    >>> bool(torch.allclose(q.mean, model.encode(x).mean.mean(0)))  # the mean of the means
    True
    """
    with torch.no_grad():
        view = _view_of(model, x_ref, y, guide, dict(options))
        q = view.posterior()
    weights = torch.distributions.Categorical(
        logits=torch.zeros(q.batch_shape[0], device=view.x.device, dtype=view.x.dtype)
    )
    return _Mixture(weights, q)


#: Most elements of the ``[rows, I, latent]`` tensors :class:`_Mixture` builds at once
#: (256 MiB of float32): larger requests are split into rows, so 10,000 draws from the
#: aggregated posterior of MNIST's 60,000 images never need 38 GB.
MIXTURE_CHUNK_ELEMENTS = 2**26


class _Mixture(torch.distributions.MixtureSameFamily):
    """Equal-weight mixture whose components see the value expanded to their own batch.

    A flow conditioned on x inverts each point once per component, so its
    networks need the value at the components' batch shape, not broadcast to it.
    ``sample`` and ``log_prob`` handle every component for every row, so they work
    on at most ``MIXTURE_CHUNK_ELEMENTS // (I * latent)`` rows at a time (a request
    within that is computed in one piece, as by ``MixtureSameFamily``).
    """

    def log_prob(self, x):
        x = self._pad(x)  # [..., 1, latent]
        lead = x.shape[: x.dim() - 1 - self._event_ndims]
        rows = x.reshape(-1, *x.shape[len(lead):])  # [rows, 1, latent]
        log_px = torch.cat([self._log_prob_rows(part) for part in rows.split(self._rows())])
        return log_px.reshape(lead)

    def _log_prob_rows(self, x):
        x = x.expand(x.shape[:1] + self._component_shape())
        log_px = self.component_distribution.log_prob(x)  # [rows, I]
        return torch.logsumexp(log_px + torch.log_softmax(self.mixture_distribution.logits, -1), -1)

    def sample(self, sample_shape=()):
        shape = torch.Size(sample_shape)
        n, rows = shape.numel(), self._rows()
        if n <= rows:
            return super().sample(shape)
        parts = [super(_Mixture, self).sample((min(rows, n - start),))
                 for start in range(0, n, rows)]
        return torch.cat(parts).reshape(shape + self.batch_shape + self.event_shape)

    def _component_shape(self):
        c = self.component_distribution
        return tuple(c.batch_shape[-1:]) + tuple(c.event_shape)

    def _rows(self) -> int:
        per_row = max(1, torch.Size(self._component_shape()).numel())
        return max(1, MIXTURE_CHUNK_ELEMENTS // per_row)


def sample_aggregate_posterior(
    model, x_ref, n: int, *, noise: bool = False, seed=None, guide=None, y=None, **options
) -> torch.Tensor:
    """Data generated from the aggregated posterior: z ~ q(z), then p(x | z).

    Returns the decoder mean f[z, φ] (``noise=False``, the smooth images the
    lecture notes show) or a draw from p(x | f[z, φ]) (``noise=True``), ``[n, D]``.
    With labels ``y`` (one per row of ``x_ref``) a draw picks a row i, z ~ q(z | xᵢ, yᵢ),
    and decodes with yᵢ: a sample of the aggregated posterior of (z, y).

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.tensor([[0.0, 0, 1, 1], [1, 1, 0, 0], [1, 0, 1, 0]])
    >>> means = pv.infer.sample_aggregate_posterior(model, x, 6, seed=0)
    >>> means.shape, bool(((means > 0) & (means < 1)).all())     # Bernoulli means
    (torch.Size([6, 4]), True)
    >>> draws = pv.infer.sample_aggregate_posterior(model, x, 6, noise=True, seed=0)
    >>> sorted(draws.unique().tolist()) in ([0.0], [1.0], [0.0, 1.0])   # binary images
    True
    """
    n = _checks.positive_int("n", n)
    data_dim = _checks.data_tensor("x_ref", x_ref).shape[1]
    _checks.rows_within_budget("n", n, data_dim)
    with _seed.seeded(seed), torch.no_grad():
        labels = None
        if y is None:
            q = aggregate_posterior(model, x_ref, guide=guide, **options)
            z = q.sample((n,)).reshape(n, -1)  # [n, latent]
        else:
            view = _view_of(model, x_ref, y, guide, dict(options))
            q = view.posterior()
            rows = torch.randint(q.batch_shape[0], (n,), device=view.x.device)
            z, labels = _draw_rows(q, rows), view.y[rows]
        px = decode(model, z, data_dim=data_dim, y=labels, **_decode_options(options))
        out = px.sample() if noise else px.mean
        return out.reshape(n, -1)


def _draw_rows(q, rows: torch.Tensor) -> torch.Tensor:
    """One draw from component ``rows[k]`` of q (batch ``[I]``) for each k, ``[n, latent]``,
    drawing every component for at most ``MIXTURE_CHUNK_ELEMENTS`` values at a time."""
    per_draw = max(1, q.batch_shape[0] * q.event_shape.numel())
    step = max(1, MIXTURE_CHUNK_ELEMENTS // per_draw)
    parts = []
    for part in rows.split(step):
        draws = q.sample((part.shape[0],))  # [m, I, latent]
        parts.append(draws[torch.arange(part.shape[0], device=part.device), part])
    return torch.cat(parts).reshape(rows.shape[0], -1)


# -- projection -----------------------------------------------------------------------
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
    latent=None,
    observed=None,
    data_plate=None,
    model_kwargs=None,
    guide_kwargs=None,
    device=None,
    **kwargs,
) -> torch.Tensor:
    """Latent representation of every row of ``x``, ``Tensor[N, latent]``.

    Parameters
    ----------
    method : {"mean", "map"}
        ``"mean"``: the mean of q(z | x) (the encoder's prediction; the average of
        256 seeded draws where q has no closed-form mean, e.g. a flow guide).
        ``"map"``: argmax_z log Pr(x | z) + log Pr(z), per datapoint, by L-BFGS
        from the guide's mean (the prior mean when the guide cannot take ``x``).
        Discrete latents enumerated in the model are summed out; any other
        latent must be given (e.g. labels ``y``), or the objective is refused.
    steps : int
        Maximum L-BFGS iterations for ``"map"``.
    lr : float
        L-BFGS step scale (a strong-Wolfe line search picks the step length).
    seed : int, optional
        Seeds any randomness the programs draw while being traced.
    latent, observed, data_plate, model_kwargs, guide_kwargs, **kwargs
        As for :func:`aggregate_posterior`.

    Examples
    --------
    In a linear-Gaussian model the posterior is Norm[x / 2, 1 / 2]: its mean and its
    mode are both x / 2 (``"map"`` needs no guide):

    >>> import torch, pyro, pyro.distributions as dist
    >>> import ppl_vae as pv
    >>> def model(x):                      # z ~ Norm[0, 1], x | z ~ Norm[z, 1]: p(x) = Norm[0, 2]
    ...     with pyro.plate("data", x.shape[0]):
    ...         z = pyro.sample("z", dist.Normal(torch.zeros(1), 1.0).to_event(1))
    ...         pyro.sample("x", dist.Normal(z, 1.0).to_event(1), obs=x)
    >>> def guide(x):                      # the exact posterior Norm[x / 2, 1 / 2]
    ...     with pyro.plate("data", x.shape[0]):
    ...         pyro.sample("z", dist.Normal(x / 2, 0.5 ** 0.5).to_event(1))
    >>> x = torch.tensor([[-1.0], [0.0], [2.0]])
    >>> pv.infer.project(model, x, guide=guide).flatten().tolist()
    [-0.5, 0.0, 1.0]
    >>> z = pv.infer.project(model, x, method="map")      # L-BFGS from the prior mean
    >>> z.shape, bool(torch.allclose(z, x / 2, atol=1e-4))
    (torch.Size([3, 1]), True)
    """
    _checks.one_of("method", method, PROJECTIONS)
    steps = _checks.positive_int("steps", steps)
    lr = _checks.positive_float("lr", lr)
    with _seed.seeded(seed):
        view = _View(model, x, y, guide=guide, latent=latent, observed=observed,
                     data_plate=data_plate, model_kwargs=model_kwargs, guide_kwargs=guide_kwargs,
                     kwargs=kwargs, require_guide=method == "mean",
                     guide_optional=method == "map", device=device)
        if method == "mean":
            return moments(view.posterior(point_ok=True))[0].reshape(view.st.size, -1).detach()
        return _map(view, steps=steps, lr=lr)


def start_point(view: _View) -> torch.Tensor:
    """Where a per-datapoint search starts, ``[N, latent]``: the guide's mean, else the prior's."""
    with torch.no_grad():
        if view.guide_site is not None:
            return moments(view.posterior(point_ok=True))[0].reshape(view.st.size, -1)
        prior = _flat_batch(view.prior_site["fn"], view.st.size)
        return prior.mean.reshape(view.st.size, -1).expand(view.st.size, -1)


def log_joint(view: _View, z: torch.Tensor) -> torch.Tensor:
    """log Pr(x | z) + log Pr(z) per datapoint ``[N]`` (enumerated sites summed out)."""
    others = view.others()
    if others:
        raise ValueError(
            f"the model samples latent site(s) {others} besides {view.latent!r}: the MAP "
            "projection optimises one latent, so give the others (e.g. the labels y)"
        )
    m, g = _trace.run(view.prog, view.x, view.y, view.st, particles=None, proposal="prior",
                      condition={view.latent: view.shape_latent(z)})
    total, _ = _trace.weigh(m, g, view.st, particles=None, n=view.st.size)
    return total


def _map(view: _View, *, steps, lr) -> torch.Tensor:
    # The objective is a sum of per-datapoint terms, so one L-BFGS run on the
    # sum optimises every datapoint; gradients go to z only, never to weights.
    z = start_point(view).detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [z], lr=lr, max_iter=steps, line_search_fn="strong_wolfe",
        tolerance_grad=1e-9, tolerance_change=1e-12,
    )

    def closure():
        loss = -log_joint(view, z).sum()
        (z.grad,) = torch.autograd.grad(loss, [z])
        return loss

    opt.step(closure)
    return z.detach()


# -- resynthesis ---------------------------------------------------------------------
def attribute_vector(model, x_a, x_b, *, method: str = "mean", **project_kwargs) -> torch.Tensor:
    """Direction from set a to set b in latent space, ``Tensor[latent]``.

    The mean projection of ``x_b`` minus the mean projection of ``x_a`` (the
    notes' "difference between the vector means of the two groups").

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.tensor([[0.0, 0, 1, 1], [1, 1, 0, 0], [1, 0, 1, 0]])
    >>> v = pv.infer.attribute_vector(model, x[:1], x[1:])     # from row 0 to rows 1, 2
    >>> v.shape
    torch.Size([2])
    >>> z = pv.infer.project(model, x)
    >>> bool(torch.allclose(v, z[1:].mean(0) - z[0]))
    True
    """
    z_a = project(model, x_a, method=method, **project_kwargs)
    z_b = project(model, x_b, method=method, **project_kwargs)
    return z_b.mean(0) - z_a.mean(0)


def resynthesize(
    model, x, vector, *, scales=(-2, -1, 0, 1, 2), method: str = "mean", **project_kwargs
) -> torch.Tensor:
    """Decoder means of ``project(x) + s · vector`` for each scale s, ``Tensor[N, S, D]``.

    Scale 0 is the plain reconstruction of the projected datapoint.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.tensor([[0.0, 0, 1, 1], [1, 1, 0, 0], [1, 0, 1, 0]])
    >>> v = pv.infer.attribute_vector(model, x[:1], x[1:])
    >>> out = pv.infer.resynthesize(model, x, v, scales=(-1, 0, 1))
    >>> out.shape                                   # [N, scales, D]
    torch.Size([3, 3, 4])
    >>> bool(torch.allclose(out[:, 1], model.decode(pv.infer.project(model, x)).mean))
    True
    """
    z = project(model, x, method=method, **project_kwargs)  # [N, latent]
    vector = torch.as_tensor(vector, dtype=z.dtype, device=z.device).reshape(-1)
    if vector.shape[0] != z.shape[1]:
        raise ValueError(
            f"vector has {vector.shape[0]} entries but the latent space has {z.shape[1]}: "
            "pass a vector from attribute_vector on the same model"
        )
    s = torch.as_tensor(scales, dtype=z.dtype, device=z.device).reshape(-1)
    if s.numel() == 0:
        raise ValueError("scales=() is empty: pass a few multiples, e.g. (-2, -1, 0, 1, 2)")
    moved = z[:, None, :] + s[None, :, None] * vector  # [N, S, latent]
    data_dim = _checks.data_tensor("x", x).shape[1]
    with torch.no_grad():
        return _decode_mean(model, moved, data_dim, **_decode_options(project_kwargs))


def traverse(model, z, dim: int, values, *, data_dim: int | None = None, **options) -> torch.Tensor:
    """Decoder means along one latent coordinate, ``Tensor[len(values), D]``.

    ``z`` (``[latent]``) is copied once per value and coordinate ``dim`` set to it.
    ``data_dim`` (and ``latent=``/``observed=`` where ambiguous) are needed only
    for a Pyro model without ``decode``.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> images = pv.infer.traverse(model, torch.zeros(2), 1, [-2.0, 0.0, 2.0])
    >>> images.shape                                # one decoded mean per value of z_1
    torch.Size([3, 4])
    >>> bool(torch.allclose(images[1], model.decode(torch.zeros(1, 2)).mean[0]))
    True
    """
    z = torch.as_tensor(z)
    z = (z if z.is_floating_point() else z.float()).reshape(-1)
    dim = _checks.positive_int("dim", dim, minimum=0)
    if dim >= z.shape[0]:
        raise ValueError(f"dim={dim} is out of range: the latent has {z.shape[0]} coordinates")
    v = torch.as_tensor(values, dtype=z.dtype, device=z.device).reshape(-1)
    if v.numel() == 0:
        raise ValueError("values is empty: pass the coordinate values, e.g. [-2, 0, 2]")
    codes = z.repeat(v.shape[0], 1)  # [V, latent]
    codes[:, dim] = v
    with torch.no_grad():
        return decode(model, codes, data_dim=data_dim, **_decode_options(options)).mean.reshape(
            v.shape[0], -1
        )

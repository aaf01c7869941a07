"""The latent-space view of a program: its latent, observed and plate sites found from a
trace, the guide's moments, and decoding a latent (split from
:mod:`ppl_vae.infer.latent_space`, which re-exports ``decode`` and ``moments``).
"""

from __future__ import annotations

import torch
from torch.distributions import biject_to

from ppl_vae import _device
from ppl_vae.infer import _program, _trace


# -- sites -------------------------------------------------------------------------
def _choose(kind: str, requested, candidates, option: str) -> str:
    if requested is not None:
        if requested not in candidates:
            raise ValueError(f"{option}={requested!r} is not a {kind} site of the program "
                             f"(candidates: {list(candidates)})")
        return requested
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ValueError(f"the program has no {kind} site inside the datapoint plate")
    raise ValueError(f"the program has several {kind} sites {list(candidates)}: pass "
                     f"{option}=<one of them>")


def _continuous(trace, name) -> bool:
    site = trace.nodes[name]
    return not site["fn"].support.is_discrete and site["infer"].get("enumerate") is None


class _View:
    """A program with its datapoint plate, latent site and observed site resolved."""

    def __init__(self, model, x, y=None, *, guide=None, latent=None, observed=None,
                 data_plate=None, model_kwargs=None, guide_kwargs=None, kwargs=None,
                 require_guide=True, guide_optional=False, device=None, local_fit=False):
        self.prog = _program.program(model, guide, model_kwargs=model_kwargs,
                                     guide_kwargs=guide_kwargs, kwargs=kwargs,
                                     require_guide=require_guide)
        self.x, self.y = _program.check_data(self.prog, x, y, device=device)
        proposal = "guide" if self.prog.guide is not None else "prior"
        try:
            self.st, m, g = _program.structure(self.prog, self.x, self.y, data_plate=data_plate,
                                               proposal=proposal, traces=True)
        except ValueError:
            # a guide that cannot take this x (a local guide fitted to other data) says so
            # with a ValueError; where the guide is optional, the prior takes its place
            if not guide_optional or proposal == "prior":
                raise
            self.st, m, g = _program.structure(self.prog, self.x, self.y, data_plate=data_plate,
                                               proposal="prior", traces=True)
        source = g if g is not None else m
        names = [n for n in self.st.latents if n in source.nodes and _continuous(source, n)]
        if local_fit:  # a local guide replaces the guide: the model's latents are the choice
            names = [n for n in self.st.latents if n in m.nodes and _continuous(m, n)]
            latent = names[0] if latent is None and names else latent
        self.continuous_latents = names  # every candidate; ``latent`` is the one viewed
        self.latent = _choose("continuous latent", latent, names, "latent")
        self.observed = _choose("observed", observed, list(self.st.observed), "observed")
        self.prior_site = m.nodes[self.latent]
        self.guide_trace = g
        self.guide_site = g.nodes[self.latent] if g is not None and self.latent in g.nodes else None

    def posterior(self, *, point_ok: bool = False):
        """q(z | x) at the latent site, batch ``[N]`` (size-1 plate dims folded into the event).

        A point-mass guide site has no density and is refused unless ``point_ok``
        (its mean, the point, is still exact); an AutoNormal-style site is the pushforward
        of its auxiliary draw.
        """
        if self.guide_site is None:
            raise ValueError(f"the guide does not sample {self.latent!r}: pass guide=")
        if self.latent in self.st.local_point_masses and not point_ok:
            raise ValueError(
                f"q(z|x) at guide site {self.latent!r} is a point mass (a Delta, e.g. AutoDelta): "
                "it has no density, so the aggregated posterior and its decomposition are not "
                "defined. Use a guide with a density (a Gaussian guide, e.g. AutoNormal); "
                "project(method='mean') returns the point itself"
            )
        fn = self.guide_site["fn"]
        if self.latent in self.st.drivers:
            fn = self._pushforward()
        return _flat_batch(fn, self.st.size)

    def _pushforward(self):
        """biject_to(support) of the auxiliary draw, checked against the traced value."""
        drivers = self.st.drivers[self.latent]
        aux = self.guide_trace.nodes[drivers[0]] if len(drivers) == 1 else None
        transform = biject_to(self.prior_site["fn"].support)
        if aux is None or not torch.allclose(transform(aux["value"]), self.guide_site["value"]):
            raise ValueError(
                f"guide site {self.latent!r} is computed from auxiliary site(s) {list(drivers)} "
                "other than as biject_to(support) of one draw (as AutoNormal does): its q(z|x) "
                "has no known form here; use AutoNormal or a guide that samples it directly"
            )
        if torch.equal(aux["value"], self.guide_site["value"]):
            return aux["fn"]  # an unconstrained latent: the auxiliary Normal itself
        return torch.distributions.TransformedDistribution(aux["fn"], [transform])

    def shape_latent(self, z: torch.Tensor) -> torch.Tensor:
        """``z [M, latent]`` reshaped to the model's value shape at the latent site."""
        fn = self.prior_site["fn"]
        lead = (1,) * (len(fn.batch_shape) - 1)
        return z.reshape((z.shape[0],) + lead + tuple(fn.event_shape))

    def others(self):
        """Latent sites besides the chosen one that are neither enumerated nor point masses."""
        return [n for n in self.st.latents if n != self.latent]


_MEAN_DRAWS = 256


def moments(q, *, draws: int = _MEAN_DRAWS) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, standard deviation) of q: closed form where it exists, else from ``draws`` samples.

    A flow guide (a ``TransformedDistribution``) has no closed-form moments.
    """
    try:
        return q.mean, q.stddev
    except NotImplementedError:
        z = q.sample((draws,))
        return z.mean(0), z.std(0)


def _flat_batch(fn, n: int):
    """``fn`` with batch ``[n]`` and event ``[latent]``: size-1 plate dims dropped.

    A latent in a datapoint plate at dim -2 has batch ``[n, 1]``; Normal and
    multivariate-normal guides are rebuilt without the extra dims, any other
    family keeps them as event dims.
    """
    extra = len(fn.batch_shape) - 1
    if extra < 0 or fn.batch_shape[0] != n or any(s != 1 for s in fn.batch_shape[1:]):
        raise ValueError(
            f"q(z|x) has batch shape {tuple(fn.batch_shape)}: expected one batch entry per "
            f"datapoint ({n}); declare the latent's coordinates with .to_event(1)"
        )
    if not extra:
        return fn
    base = fn.base_dist if isinstance(fn, torch.distributions.Independent) else fn
    if isinstance(base, torch.distributions.Normal) and len(fn.event_shape) == 1:
        return torch.distributions.Independent(
            torch.distributions.Normal(base.loc.reshape(n, -1), base.scale.reshape(n, -1)), 1)
    if isinstance(fn, torch.distributions.MultivariateNormal):
        size = fn.event_shape[0]
        return torch.distributions.MultivariateNormal(
            fn.loc.reshape(n, size), scale_tril=fn.scale_tril.reshape(n, size, size))
    return torch.distributions.Independent(fn, extra)


# -- decoding ------------------------------------------------------------------------
def decode(model, z: torch.Tensor, *, data_dim: int | None = None, latent=None, observed=None,
           data_plate=None, y=None, model_kwargs=None, device=None):
    """p(x | z) for latents ``z [M, latent]``: ``model.decode(z)`` when the model has one.

    A raw Pyro model is run with the latent site conditioned on ``z`` and a
    placeholder ``x`` of ``data_dim`` columns; the distribution at the observed
    site is read off (it does not depend on the observed value).
    """
    decoder = getattr(model, "decode", None)
    if callable(decoder):
        dev, dtype = _device.of(model)
        z = _device.move(torch.as_tensor(z), dev, dtype)
        if latent is not None and _program.Signature.of(decoder).takes("latent"):
            return decoder(z, latent=latent)  # a model graph decodes any of its latents
        return decoder(z)
    if data_dim is None:
        raise ValueError(
            "data_dim=None with a model that has no decode(z): pass data_dim=<columns of x>"
        )
    z = torch.as_tensor(z)
    z = z if z.is_floating_point() else z.float()
    placeholder = torch.zeros(z.shape[0], data_dim, device=z.device, dtype=z.dtype)
    view = _View(model, placeholder, y, latent=latent, observed=observed, data_plate=data_plate,
                 model_kwargs=model_kwargs, require_guide=False, device=device)
    z = _device.move(z, view.x.device, view.x.dtype)
    with torch.no_grad():
        m, _ = _trace.run(view.prog, placeholder, view.y, view.st, particles=None,
                          proposal="prior", condition={view.latent: view.shape_latent(z)})
    return m.nodes[view.observed]["fn"]


def _decode_mean(model, z: torch.Tensor, data_dim: int, **options) -> torch.Tensor:
    """Decoder means for ``z [..., latent]`` -> ``[..., D]``."""
    flat = z.reshape(-1, z.shape[-1])
    mean = decode(model, flat, data_dim=data_dim, **options).mean
    return mean.reshape(*z.shape[:-1], -1)


def _decode_options(options: dict) -> dict:
    return {k: options[k] for k in ("latent", "observed", "data_plate", "model_kwargs", "device")
            if options.get(k) is not None}


# -- aggregated posterior -------------------------------------------------------------
def _view_of(model, x, y, guide, options) -> _View:
    keys = ("latent", "observed", "data_plate", "model_kwargs", "guide_kwargs", "device")
    named = {k: options.pop(k) for k in keys if k in options}
    return _View(model, x, y, guide=guide, kwargs=options, **named)

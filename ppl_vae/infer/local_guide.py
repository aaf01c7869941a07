"""Per-datapoint guides fitted to a trained model with its weights held fixed.

The best Gaussian q(z | θᵢ) for each datapoint separately, found by
maximising that datapoint's ELBO over (μᵢ, σᵢ) alone — or, with ``flow=``, the
best Gaussian pushed through a per-datapoint planar or radial flow
(:mod:`ppl_vae.infer.local_flow`), the local counterpart of a flow guide. Comparing its ELBO with
the amortized encoder's measures the *amortization gap* (Cremer, Li &
Duvenaud, 2018, "Inference suboptimality in variational autoencoders",
section 3): log p(x) − ELBO[q*] is the approximation gap and
ELBO[q*] − ELBO[q_encoder] the amortization gap.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import Trace_ELBO

from ppl_vae import _checks, _runtime, _seed
from ppl_vae.infer import _program, local_flow
from ppl_vae.infer.importance import check_budget
from ppl_vae.infer.latent_space import _View, moments, start_point
from ppl_vae.math import MIN_SCALE, inverse_softplus, softplus_scale

INITS = ("encoder", "prior")


class LocalGaussianGuide:
    """q(z | θᵢ) = Norm[μᵢ, diag σᵢ²] for the N datapoints it was fitted to.

    Call it like any guide: ``guide(x, y=None, **kwargs)`` with the same ``x``
    (N rows); it samples the model's latent site (``latent``) inside its
    datapoint plate (``data_plate`` at ``dim``). Attributes ``loc`` and
    ``scale`` are ``[N, latent]``; ``history`` lists the mean negative ELBO per
    optimisation step.

    Examples
    --------
    Set by hand to the exact posterior Norm[x / 2, 1 / 2], its ELBO is log p(x):

    >>> import torch, pyro, pyro.distributions as dist
    >>> import ppl_vae as pv
    >>> def model(x):                      # z ~ Norm[0, 1], x | z ~ Norm[z, 1]: p(x) = Norm[0, 2]
    ...     with pyro.plate("data", x.shape[0]):
    ...         z = pyro.sample("z", dist.Normal(torch.zeros(1), 1.0).to_event(1))
    ...         pyro.sample("x", dist.Normal(z, 1.0).to_event(1), obs=x)
    >>> x = torch.tensor([[-1.0], [0.0], [2.0]])
    >>> exact = dist.Normal(0.0, 2 ** 0.5).log_prob(x[:, 0])
    >>> local = pv.infer.LocalGaussianGuide(x / 2, torch.full((3, 1), 0.5 ** 0.5))
    >>> local.num_data, local.loc.shape, local.scale.shape
    (3, torch.Size([3, 1]), torch.Size([3, 1]))
    >>> bool(torch.allclose(pv.infer.elbo(model, x, guide=local, seed=0), exact, atol=1e-5))
    True
    """

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, *, latent: str = "z",
                 data_plate: str = "data", dim: int = -1):
        self.loc = loc.detach().clone().requires_grad_(True)
        self.raw = inverse_softplus(scale - MIN_SCALE).detach().clone().requires_grad_(True)
        self.latent, self.data_plate, self.dim = latent, data_plate, dim
        self.history: list[float] = []

    @property
    def num_data(self) -> int:
        return self.loc.shape[0]

    @property
    def scale(self) -> torch.Tensor:
        return softplus_scale(self.raw)

    def parameters(self) -> list[torch.Tensor]:
        """The free tensors fitted by :func:`fit_local_guide`."""
        return [self.loc, self.raw]

    @property
    def lead(self) -> tuple[int, ...]:
        """Size-1 dims of the plates nested inside the data plate."""
        return (1,) * (-1 - self.dim)

    def distribution(self):
        shape = (self.num_data,) + self.lead + (self.loc.shape[1],)
        return dist.Normal(self.loc.reshape(shape), self.scale.reshape(shape)).to_event(1)

    def check_rows(self, x) -> None:
        if x.shape[0] != self.num_data:
            raise ValueError(
                f"x has {x.shape[0]} rows but this local guide was fitted to {self.num_data}: "
                "pass the data given to fit_local_guide, or fit a new guide"
            )

    def __call__(self, x, y=None, **kwargs):
        self.check_rows(x)
        with pyro.plate(self.data_plate, x.shape[0], dim=self.dim):
            return pyro.sample(self.latent, self.distribution())


class LocalFlowGuide(LocalGaussianGuide):
    """q(z | θᵢ): the local Gaussian pushed through a flow of its own for every datapoint.

    ``kind`` ("planar" or "radial") and one list of per-datapoint parameter
    tensors ``[N, k]`` per layer (Pyro's parameter tuple of the transform);
    :attr:`transforms` are Pyro's conditional transforms whose network is a
    :class:`~ppl_vae.infer.local_flow.ParameterTable`, conditioned on the
    datapoint indices. Called like :class:`LocalGaussianGuide`.

    Examples
    --------
    :func:`fit_local_guide` with ``flow=`` makes one; with ``steps=0`` it starts at the
    guide's Gaussian with every flow at the identity, so the ELBO is the guide's:

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
    >>> exact = dist.Normal(0.0, 2 ** 0.5).log_prob(x[:, 0])
    >>> local = pv.infer.fit_local_guide(model, x, guide=guide, steps=0,
    ...                                  flow={"kind": "planar", "layers": 2})
    >>> type(local).__name__, local.kind, len(local.transforms)
    ('LocalFlowGuide', 'planar', 2)
    >>> bool(torch.allclose(pv.infer.elbo(model, x, guide=local, seed=0), exact, atol=1e-5))
    True
    """

    def __init__(self, loc, scale, flow_params, *, kind: str, **sites):
        super().__init__(loc, scale, **sites)
        self.kind = kind
        self.tables = [local_flow.ParameterTable(p, self.lead) for p in flow_params]
        self.transforms = [local_flow.KINDS[kind][0](table) for table in self.tables]

    def parameters(self) -> list[torch.Tensor]:
        return super().parameters() + [p for table in self.tables for p in table.params]

    def distribution(self):
        index = torch.arange(self.num_data, device=self.loc.device)
        return dist.TransformedDistribution(super().distribution(),
                                            [t.condition(index) for t in self.transforms])


class LocalJointGuide:
    """Local guides of several latents of one program, fitted together: q(z₁ | θᵢ) q(z₂ | θᵢ) …

    What :func:`fit_local_guide` returns for a program with several continuous latents
    (a model graph): one :class:`LocalGaussianGuide` (or :class:`LocalFlowGuide`) per
    latent in :attr:`parts` (name → guide), called together like any guide, with one
    ``history`` for the joint fit.

    Examples
    --------
    >>> import torch, pyro, pyro.distributions as dist
    >>> import ppl_vae as pv
    >>> def model(x):                      # z2 -> z1 -> x, all Normal
    ...     with pyro.plate("data", x.shape[0]):
    ...         z2 = pyro.sample("z2", dist.Normal(torch.zeros(1), 1.0).to_event(1))
    ...         z1 = pyro.sample("z1", dist.Normal(z2, 1.0).to_event(1))
    ...         pyro.sample("x", dist.Normal(z1, 1.0).to_event(1), obs=x)
    >>> x = torch.tensor([[-1.0], [0.0], [2.0]])
    >>> local = pv.infer.fit_local_guide(model, x, init="prior", steps=300, lr=0.05, seed=0)
    >>> type(local).__name__, sorted(local.parts), local.num_data
    ('LocalJointGuide', ['z1', 'z2'], 3)
    >>> exact = dist.Normal(0.0, 3 ** 0.5).log_prob(x[:, 0])   # p(x) = Norm[0, 3]
    >>> gap = exact - pv.infer.elbo(model, x, guide=local, num_particles=2000, seed=0)
    >>> bool((gap > -0.05).all() and (gap < 0.5).all())
    True
    """

    def __init__(self, parts: dict):
        self.parts = dict(parts)
        plates = {(part.data_plate, part.dim) for part in self.parts.values()}
        if len(plates) != 1:
            raise ValueError(f"the latents {list(self.parts)} sit in different datapoint plates "
                             f"{sorted(plates)}: a joint local guide needs them in one")
        self.history: list[float] = []

    @property
    def num_data(self) -> int:
        return next(iter(self.parts.values())).num_data

    def parameters(self) -> list[torch.Tensor]:
        """The free tensors of every latent's local guide."""
        return [p for part in self.parts.values() for p in part.parameters()]

    def __call__(self, x, y=None, **kwargs):
        first = next(iter(self.parts.values()))
        first.check_rows(x)
        with pyro.plate(first.data_plate, x.shape[0], dim=first.dim):
            return {name: pyro.sample(name, part.distribution())
                    for name, part in self.parts.items()}


def fit_local_guide(
    model,
    x,
    y=None,
    *,
    steps: int = 500,
    lr: float = 0.05,
    seed=None,
    init: str = "encoder",
    num_particles: int = 1,
    guide=None,
    flow=None,
    **options,
) -> LocalGaussianGuide:
    """Optimise a free Gaussian q(z | θᵢ) — optionally with a flow — per datapoint, model fixed.

    Parameters
    ----------
    model
        A trained ppl_vae model, or a raw Pyro model callable (then pass ``guide=``
        when ``init="encoder"``; otherwise any ``guide`` may be None).
    x : array [N, D]
    y : array [N], optional
    steps : int
        Adam steps on the sum of the N per-datapoint negative ELBOs (each
        datapoint's parameters only receive its own gradient); 0 returns the
        starting point.
    lr : float
        Initial Adam learning rate, decayed linearly to ``lr / 10``.
    seed : int, optional
        Seeds the reparameterised draws.
    init : {"encoder", "prior"}
        Start from the guide's q(z | x) (the local optimum nearest the encoder),
        or from the prior. With a flow: when the guide is itself a diagonal
        Gaussian pushed through ``layers`` transforms of the same ``kind``, every
        datapoint's Gaussian and flow parameters start at the guide's outputs for
        it (q* starts exactly at q(z | xᵢ)); otherwise the Gaussian starts as
        without a flow and the flow at the identity. Fitting several latents, each
        starts at the mean and variance of its start over :data:`START_DRAWS` runs
        of the program (a structured guide q(z₂ | z₁, x), or a prior p(z₁ | z₂),
        gives another start per run: the mean-field q* starts at their
        moment-matched marginal), flows at the identity.
    num_particles : int
        Draws per step of the ELBO gradient estimate.
    flow : dict, optional
        ``{"kind": "planar" | "radial", "layers": K}``: q(z | θᵢ) is the Gaussian
        pushed through K transforms with free parameters per datapoint
        (:mod:`ppl_vae.infer.local_flow`; ``hidden`` is ignored). IAF is refused.
    **options
        ``latent`` (a name or a list of names; default every continuous latent of the
        program — all of a model graph's), ``observed``, ``data_plate``,
        ``model_kwargs``, ``guide_kwargs``, and keywords for the side(s) that accept
        them. A ``latent`` list that leaves out a continuous latent is refused: the
        model would draw it from its prior, so it would not be a local fit.

    Returns
    -------
    LocalGaussianGuide
        A guide callable to pass as ``guide=`` to ``elbo``, ``log_likelihood``, …
        (a :class:`LocalFlowGuide` with ``flow``; a :class:`LocalJointGuide` of one
        of them per latent where the program has several).

    Examples
    --------
    Starting from a guide whose scale is too wide, the fitted local Gaussians close
    most of the gap between the ELBO and log p(x) (the posterior is Norm[x / 2, 1 / 2]):

    >>> import torch, pyro, pyro.distributions as dist
    >>> import ppl_vae as pv
    >>> def model(x):                      # z ~ Norm[0, 1], x | z ~ Norm[z, 1]: p(x) = Norm[0, 2]
    ...     with pyro.plate("data", x.shape[0]):
    ...         z = pyro.sample("z", dist.Normal(torch.zeros(1), 1.0).to_event(1))
    ...         pyro.sample("x", dist.Normal(z, 1.0).to_event(1), obs=x)
    >>> def wide(x):                       # the posterior mean, too wide a scale
    ...     with pyro.plate("data", x.shape[0]):
    ...         pyro.sample("z", dist.Normal(x / 2, 1.0).to_event(1))
    >>> x = torch.tensor([[-1.0], [0.0], [2.0]])
    >>> exact = dist.Normal(0.0, 2 ** 0.5).log_prob(x[:, 0])
    >>> local = pv.infer.fit_local_guide(model, x, guide=wide, steps=50, lr=0.1, seed=0)
    >>> type(local).__name__, local.loc.shape, len(local.history)
    ('LocalGaussianGuide', torch.Size([3, 1]), 50)
    >>> before = exact - pv.infer.elbo(model, x, guide=wide, num_particles=1000, seed=0)
    >>> after = exact - pv.infer.elbo(model, x, guide=local, num_particles=1000, seed=0)
    >>> bool((before > 0.1).all()), bool((after.abs() < 0.02).all())
    (True, True)
    """
    steps = _checks.positive_int("steps", steps, minimum=0)
    lr = _checks.positive_float("lr", lr)
    num_particles = _checks.positive_int("num_particles", num_particles)
    _checks.one_of("init", init, INITS)
    kind = local_flow.check(flow)
    latent = options.pop("latent", None)
    with _seed.seeded(seed):
        views, make_view = _views(model, x, y, guide, latent, options)
        view = views[0]
        check_budget("num_particles", num_particles * len(views), view.x,  # every row, step
                     fix="pass fewer rows (fit the local guide in parts) or num_particles")
        if len(views) == 1:
            if init == "prior":
                view.guide_site = None
            local = _start(view, kind)
        else:
            local = LocalJointGuide({v.latent: _joint_start(v, make_view, kind, init == "prior")
                                     for v in views})
        loss_fn = Trace_ELBO(num_particles=num_particles, vectorize_particles=num_particles > 1,
                             max_plate_nesting=view.st.nesting)
        prog = _program.Program(view.prog.model, local, view.prog.owner,
                                view.prog.model_kwargs, {})
        params = local.parameters()
        opt = torch.optim.Adam(params, lr=lr)
        # Decay to lr/10: the gradient is stochastic, so a constant step keeps jittering.
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 - 0.9 * t / max(steps, 1))
        with _runtime.no_penalties():
            for _ in range(steps):
                loss = loss_fn.differentiable_loss(prog.run_model, prog.run_guide, view.x, view.y)
                grads = torch.autograd.grad(loss, params)  # model weights stay untouched
                for p, g in zip(params, grads):
                    p.grad = g
                opt.step()
                sched.step()
                local.history.append(float(loss.detach()) / view.x.shape[0])
    for p in params:
        p.requires_grad_(False)
    return local


def _views(model, x, y, guide, latent, options) -> tuple[list[_View], object]:
    """One view per latent to fit — ``latent`` (a name or a list), else every continuous
    latent the model samples — and the function that makes a view of a latent; refused
    where the chosen ones leave one of the model's continuous latents out."""
    def view(name):
        return _View(model, x, y, guide=guide, latent=name, require_guide=False,
                     guide_optional=True, local_fit=True, **options)

    if latent is None:
        first = view(None)
        return [first, *(view(name) for name in first.continuous_latents[1:])], view
    names = [latent] if isinstance(latent, str) else latent
    if not isinstance(names, (list, tuple)) or not names or not all(
            isinstance(n, str) for n in names):
        raise ValueError(f"latent={latent!r} is invalid: pass a latent site name, a list of "
                         "them, or None (every continuous latent)")
    views = [view(name) for name in dict.fromkeys(names)]
    left = [n for n in views[0].continuous_latents if n not in names]
    if left:
        raise ValueError(
            f"latent={latent!r} leaves the continuous latent(s) {left} without a local "
            "guide (the model would draw them from their prior, so the fit would not be "
            f"local): pass latent=None to fit every latent, or add {left}")
    return views, view


#: Program runs whose start points are pooled for each latent of a joint fit.
START_DRAWS = 16


def _joint_start(view: _View, make_view, kind, prior: bool) -> LocalGaussianGuide:
    """A latent's start in a joint fit: the Gaussian with the mean and variance of its
    start points over :data:`START_DRAWS` runs of the program (a latent whose guide or
    prior reads another latent's draw has a different start in each run: this is the
    moment-matched marginal), any flow at the identity."""
    locs, variances = [], []
    # each run its own stream, drawn from the caller's seeded one (a view's probe forks
    # the random state, so two views made in a row would see the same draws)
    seeds = torch.randint(0, 2**62, (START_DRAWS,)).tolist()
    for i in range(START_DRAWS):
        if i:
            with _seed.seeded(seeds[i]):
                v = make_view(view.latent)
        else:
            v = view
        if prior:
            v.guide_site = None
        with torch.no_grad():
            loc, scale = _start_moments(v)
        locs.append(loc)
        variances.append(scale**2)
    locs = torch.stack(locs)
    scale = (torch.stack(variances).mean(0) + locs.var(0, unbiased=False)).sqrt()
    return _gaussian_start(view, locs.mean(0), scale, kind)


def _start(view: _View, kind) -> LocalGaussianGuide:
    """The local guide before optimisation (see ``init`` and ``flow`` of fit_local_guide)."""
    with torch.no_grad():
        if kind is not None and view.guide_site is not None:
            start = local_flow.from_guide(view.posterior(), *kind, view.st.size)
            if start is not None:
                return LocalFlowGuide(*start, kind=kind[0], **_sites(view))
        return _gaussian_start(view, *_start_moments(view), kind)


def _start_moments(view: _View) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loc, scale)`` ``[N, latent]`` where a local Gaussian starts: the guide's
    moments at the latent, else the prior's."""
    loc = start_point(view)
    if view.guide_site is not None:
        return loc, moments(view.posterior())[1].reshape(loc.shape)
    return loc, view.prior_site["fn"].stddev.reshape(-1)[-loc.shape[1]:].expand_as(loc)


def _gaussian_start(view: _View, loc, scale, kind) -> LocalGaussianGuide:
    """The local Gaussian at ``(loc, scale)``, with a flow of ``kind`` at the identity."""
    if kind is None:
        return LocalGaussianGuide(loc, scale, **_sites(view))
    return LocalFlowGuide(loc, scale, local_flow.identity(*kind, loc), kind=kind[0],
                          **_sites(view))


def _sites(view: _View) -> dict:
    return {"latent": view.latent, "data_plate": view.st.data_plate, "dim": view.st.plate_dim}

"""The continuous latent variable model composed of parts.

    z ~ p(z)                       (prior part; p(z | y) for class-structured priors)
    x ~ p(x | f[z, φ])             (decoder + likelihood parts)
    q(z | x)                       (guide part: amortized encoder or local parameters)
    loss = −E log p(x|z) + kl·KL + mi·MI + tc·TC + dimwise_kl·DWKL + Σ wᵢ rᵢ
                                   (the objective part: weights and penalties)

The VAE, β-VAE, TC-VAE, RD-VAE and the lecture notes' nonlinear LVM are all
this class with different parts (see the presets).
"""

from __future__ import annotations

import pyro
import torch
from pyro import poutine
from torch import nn

from ppl_vae import _checks, _device, _runtime, _seed
from ppl_vae.parts.base import Context, PenaltyInputs
from ppl_vae.parts.objective import Objective


class LatentVariableModel(nn.Module):
    """A Pyro model/guide pair built from a resolved spec (use ``pv.build``).

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> isinstance(model, pv.models.LatentVariableModel), model.data_dim, model.latent_dim
    (True, 4, 2)
    >>> x = torch.bernoulli(torch.full((5, 4), 0.5))
    >>> q = model.encode(x)                                 # q(z | x)
    >>> q.batch_shape, q.event_shape, model.decode(q.mean).batch_shape
    (torch.Size([5]), torch.Size([2]), torch.Size([5]))
    """

    max_plate_nesting = 1
    enumerate = False
    requires_labels = False

    def __init__(self, spec: dict, parts: dict):
        super().__init__()
        self.spec = spec
        self.ctx: Context = parts["context"]
        self.prior = parts["prior"]
        self.likelihood = parts["likelihood"]
        self.decoder = parts["decoder"]
        self.q = parts["guide"]
        self.objective: Objective = parts["objective"]

    @property
    def penalties(self) -> nn.ModuleList:
        """The penalty parts of the objective (``[[penalty]]`` tables)."""
        return self.objective.penalties

    latent_sites = ("z",)
    partial_labels = False
    data_plate = "data"

    @property
    def amortized(self) -> bool:
        """The guide scores new data (an encoder, not per-datapoint parameters)."""
        return self.q.amortized

    @property
    def streamable(self) -> bool:
        """Batches can be fetched one by one: no per-datapoint guide parameters."""
        return self.q.amortized

    @property
    def class_structured(self) -> bool:
        """The prior holds one Gaussian per class (``prior.kind='class_conditional'``)."""
        return self.prior.class_structured

    @property
    def penalized(self) -> bool:
        """The loss adds objective terms or penalties to the ELBO."""
        return self.objective.active

    @property
    def auxiliary_parts(self) -> tuple:
        """Penalties that train parameters of their own inside ``pv.fit`` (``factor_tc``)."""
        return self.objective.auxiliary_parts

    @property
    def kl_weight(self) -> float:
        """``objective.kl``: the weight of KL(q(z|x) ‖ p(z)) in the training loss."""
        return self.objective.kl

    # -- sizes -------------------------------------------------------------
    @property
    def data_dim(self) -> int:
        return self.ctx.data_dim

    @property
    def latent_dim(self) -> int:
        return self.ctx.latent_dim

    @property
    def num_classes(self) -> int | None:
        return self.ctx.num_classes

    # -- the Pyro program ----------------------------------------------------
    def _plate(self, x, idx, num_data):
        size = num_data if num_data is not None else x.shape[0]
        return pyro.plate("data", size, subsample=idx, dim=-1)

    def model(self, x, y=None, *, idx=None, num_data=None):
        """p(x, z) for a batch: ``x`` is ``[B, D]``; ``idx`` are its rows in a dataset
        of ``num_data`` points (log-densities are scaled by num_data / B)."""
        with self._plate(x, idx, num_data):
            self.prior.label_site(y)  # log p(y) is not a KL term: outside the weight
            with poutine.scale(scale=self._kl_scale()):
                z = self.prior.sample_site(y)
            pyro.sample("x", self.likelihood.distribution(self.decoder(z)), obs=x)
            if self.objective.active and _runtime.penalties_enabled():
                self._objective_sites(x, y, z, idx, num_data)
        return z

    def _objective_sites(self, x, y, z, idx, num_data):
        inputs = PenaltyInputs(
            x=x,
            y=y,
            z=z,
            posterior=self.q.distribution(x, idx) if self.objective.needs_posterior else None,
            prior=self.prior,
            num_data=num_data if num_data is not None else x.shape[0],
        )
        self.objective.factor_sites(inputs)

    def guide(self, x, y=None, *, idx=None, num_data=None):
        """q(z | x) for a batch, with the same plate as :meth:`model`."""
        with self._plate(x, idx, num_data), poutine.scale(scale=self._kl_scale()):
            return pyro.sample("z", self.q.distribution(x, idx))

    def _kl_scale(self) -> float:
        """β on the latent's terms while training; 1 when log p(x) itself is evaluated."""
        return self.kl_weight if _runtime.penalties_enabled() else 1.0

    # -- using the model -----------------------------------------------------
    def decode(self, z: torch.Tensor) -> torch.distributions.Distribution:
        """p(x | z) as a Distribution with event shape ``[D]`` (z moved to the model's device/dtype)."""
        z = _device.move(torch.as_tensor(z), *_device.of(self))
        return self.likelihood.distribution(self.decoder(z))

    def encode(self, x) -> torch.distributions.Distribution:
        """q(z | x) for an amortized guide."""
        if not self.q.amortized:
            raise NotImplementedError(
                f"guide.kind={self.spec['guide']['kind']!r} has no encoder; project data "
                "with pv.infer.project(model, x, method='map') instead"
            )
        return self.q.distribution(
            _device.move(_checks.data_tensor("x", x, dim=self.data_dim), *_device.of(self))
        )

    @torch.no_grad()
    def sample(self, n: int, *, noise: bool = False, seed: int | None = None, y=None):
        """Ancestral sampling: z* ~ p(z), then the decoder mean (plus likelihood noise)."""
        n = _checks.positive_int("n", n)
        _checks.rows_within_budget("n", n, self.data_dim * self.ctx.params_per_dim)
        with _seed.seeded(seed):
            prior = self.prior.distribution(y)
            z = prior.sample() if prior.batch_shape else prior.sample((n,))
            px = self.decode(z)
            return px.sample() if noise else px.mean

    # -- hooks used by pv.fit and pv.infer -------------------------------------
    def check_data(self, x, y=None, *, name="x"):
        """Validated ``x`` on the model's device and dtype (and labels ``y``); ValueError on bad input."""
        x = _checks.data_tensor(name, x, dim=self.data_dim)
        self.likelihood.check_data(x, name)
        device, dtype = _device.of(self)
        if y is not None:
            y = _device.move(
                _checks.label_tensor("y", y, n=x.shape[0], num_classes=self.num_classes), device
            )
        return _device.move(x, device, dtype), y

    def initialize(self, x, y=None, *, seed=None):
        """Prepare data-sized state before training (local guide parameters)."""
        self.q.initialize(x)

    def guide_fits(self, x) -> bool:
        """True when the guide can be evaluated on ``x`` (see :meth:`Guide.fits`)."""
        return self.q.fits(x)

    def marginal(self) -> torch.distributions.Distribution:
        """p(x) in closed form: the linear-Gaussian LVM x ~ Norm[b, WWᵀ + diag σ²].

        Exists only with a standard-normal prior, a linear decoder and a normal
        likelihood; otherwise NotImplementedError.
        """
        from ppl_vae.parts.likelihoods import NormalLikelihood
        from ppl_vae.parts.priors import StandardNormal

        linear = self.decoder.is_linear
        if not (
            linear
            and isinstance(self.likelihood, NormalLikelihood)
            and self.likelihood.params_per_dim == 1  # σ fixed or learned, not a function of z
            and type(self.prior) is StandardNormal
        ):
            raise NotImplementedError(
                "no closed-form log p(x) for this model: it needs a linear decoder "
                "(decoder.hidden = []), a normal likelihood whose scale is a number or "
                "'learned', and the standard-normal prior"
            )
        layer = self.decoder.net[0]
        w, b = layer.weight, layer.bias  # [D, L], [D]
        cov = w @ w.T + torch.diag(self.likelihood.scale**2)
        return torch.distributions.MultivariateNormal(b, covariance_matrix=cov)

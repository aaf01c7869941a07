"""Base classes of the parts a spec composes.

Every part is a ``torch.nn.Module`` whose spec keys are its keyword-only
constructor arguments (see :mod:`ppl_vae.registry`). The first positional
argument is a :class:`Context` with the sizes the part needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ppl_vae import _checks


@dataclass(frozen=True)
class Context:
    """Sizes shared by the parts of one model.

    ``params_per_dim`` is how many values the decoder outputs per data dimension:
    the likelihood's :attr:`Likelihood.params_per_dim` (1 for Bernoulli logits, 2 for
    a Normal whose scale the decoder outputs, ``levels`` for a categorical, ...).

    Examples
    --------
    >>> from ppl_vae.parts import Context
    >>> ctx = Context(data_dim=4, latent_dim=2)
    >>> ctx.num_classes, ctx.params_per_dim
    (None, 1)
    """

    data_dim: int
    latent_dim: int
    num_classes: int | None = None
    params_per_dim: int = 1


@dataclass
class PenaltyInputs:
    """What a penalty sees inside the model for one minibatch.

    ``z`` is ``[B, latent]``; ``posterior`` is q(z|x) for the batch (a
    Distribution with batch shape ``[B]``) when the penalty asks for it.

    Examples
    --------
    >>> import torch
    >>> from ppl_vae.parts import Context, Penalty, PenaltyInputs
    >>> class SquaredNorm(Penalty):                          # ||z||^2 per datapoint
    ...     def forward(self, inputs):
    ...         return inputs.z.pow(2).sum(-1)
    >>> inputs = PenaltyInputs(x=torch.zeros(3, 4), y=None, z=torch.ones(3, 2),
    ...                        posterior=None, prior=None, num_data=100)
    >>> SquaredNorm(Context(data_dim=4, latent_dim=2))(inputs)
    tensor([2., 2., 2.])
    """

    x: torch.Tensor
    y: torch.Tensor | None
    z: torch.Tensor
    posterior: torch.distributions.Distribution | None
    prior: nn.Module
    num_data: int


class Decoder(nn.Module):
    """f[z, φ]: from a latent ``[..., L]`` to the likelihood's parameters ``[..., P·D]``
    (``P = ctx.params_per_dim`` blocks of ``D`` values). Subclasses implement ``forward``.

    ``is_linear`` (declared): the map is one affine layer, so a normal likelihood on a
    standard-normal latent has a closed-form marginal (``LatentVariableModel.marginal``).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from ppl_vae.parts import Context, Decoder
    >>> class Affine(Decoder):                               # f(z) = W z + b
    ...     is_linear = True
    ...     def __init__(self, ctx):
    ...         super().__init__()
    ...         self.layer = nn.Linear(ctx.latent_dim, ctx.params_per_dim * ctx.data_dim)
    ...     def forward(self, z):
    ...         return self.layer(z)
    >>> Affine(Context(data_dim=4, latent_dim=2))(torch.zeros(3, 2)).shape
    torch.Size([3, 4])
    """

    is_linear = False


class Prior(nn.Module):
    """p(z) (optionally p(z | y)). Subclasses implement :meth:`distribution`.

    ``class_structured`` (class attribute): one Gaussian Norm_z[μ_c, s_c² I] per class,
    with ``class_means``, ``log_scale`` and ``class_log_posterior`` (classification and
    the latent out-of-domain scores of :mod:`ppl_vae.analysis.ood` use them).

    Examples
    --------
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> p = model.prior.distribution()                       # p(z), standard normal
    >>> isinstance(model.prior, pv.parts.Prior), p.event_shape, model.prior.class_structured
    (True, torch.Size([2]), False)
    """

    class_structured = False

    def __init__(self, ctx: Context):
        super().__init__()
        self.latent_dim = ctx.latent_dim

    def distribution(self, y: torch.Tensor | None = None) -> torch.distributions.Distribution:
        """p(z) with event shape ``[latent]`` (batch ``[B]`` when ``y`` is given)."""
        raise NotImplementedError

    def factors(self, *, needed_by: str) -> torch.distributions.Distribution:
        """The per-dimension factors p(z_l) of a prior ``Independent`` over dimensions.

        Raises a ValueError naming ``needed_by`` when p(z) does not factorise (a
        mixture, a class-conditional prior without labels).
        """
        p = self.distribution()
        base = getattr(p, "base_dist", None)
        if base is None or p.batch_shape != torch.Size():
            raise ValueError(
                f"{needed_by} needs a prior p(z) that factorises over dimensions, got "
                f"{type(p).__name__}: the dimension-wise KL is defined only for such priors "
                "(e.g. prior.kind = 'standard_normal')"
            )
        return base

    def label_site(self, y: torch.Tensor | None = None) -> None:
        """Pyro statements for the labels, inside the data plate but outside the KL weight
        (a class-conditional prior observes y here); none by default."""

    def sample_site(self, y: torch.Tensor | None = None) -> torch.Tensor:
        """Pyro sample statement of the latent inside the data plate (and inside the KL
        weight while training); returns z."""
        import pyro

        return pyro.sample("z", self.distribution(y))


class Likelihood(nn.Module):
    """p(x | decoder output). Subclasses implement :meth:`distribution`.

    ``binary_data`` (class attribute): True when the support is {0, 1}, so data
    must be binarized before use (the CLI asks this, never the kind's name).
    ``params_per_dim`` (set per instance from the spec keys): the decoder outputs
    this many blocks of ``data_dim`` values, block-major (``out[..., k·D:(k+1)·D]``
    is block k); :meth:`blocks` splits them.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> lik = model.likelihood                               # Bernoulli: one logit per dim
    >>> isinstance(lik, pv.parts.Likelihood), lik.binary_data, lik.params_per_dim
    (True, True, 1)
    >>> lik.distribution(torch.zeros(3, 4)).batch_shape
    torch.Size([3])
    """

    binary_data = False
    params_per_dim = 1

    def __init__(self, ctx: Context):
        super().__init__()
        self.data_dim = ctx.data_dim

    def distribution(self, out: torch.Tensor) -> torch.distributions.Distribution:
        raise NotImplementedError

    def blocks(self, out: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The decoder output ``[..., P·D]`` as P blocks ``[..., D]`` (P = params_per_dim)."""
        p, d = self.params_per_dim, self.data_dim
        if out.shape[-1] != p * d:
            raise ValueError(
                f"the decoder outputs {out.shape[-1]} values per row, but the likelihood "
                f"{type(self).__name__} needs {p}·data_dim = {p * d}: a decoder must output "
                "ctx.params_per_dim · ctx.data_dim values"
            )
        return out.unflatten(-1, (p, d)).unbind(-2)

    def check_data(self, x: torch.Tensor, name: str = "x") -> None:
        """Raise a ValueError if ``x`` lies outside the likelihood's support."""


class Guide(nn.Module):
    """q(z | x). Subclasses implement :meth:`distribution`.

    ``amortized`` (class attribute): True for an encoder that maps any x to q(z|x);
    False for parameters held per training datapoint (see :meth:`fits`).

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> q = model.q                                          # the encoder q(z | x)
    >>> isinstance(q, pv.parts.Guide), q.amortized
    (True, True)
    >>> q.distribution(torch.zeros(3, 4)).event_shape
    torch.Size([2])
    """

    amortized = False

    def __init__(self, ctx: Context):
        super().__init__()
        self.data_dim = ctx.data_dim
        self.latent_dim = ctx.latent_dim

    def distribution(self, x: torch.Tensor, idx: torch.Tensor | None = None):
        """q(z | x) with batch shape ``[B]`` and event shape ``[latent]``."""
        raise NotImplementedError

    def initialize(self, x: torch.Tensor) -> None:
        """Hook run by ``pv.fit`` before training (e.g. to size local parameters)."""

    def fits(self, x) -> bool:
        """True when q(z|x) can be evaluated for these rows as the guide stands."""
        return self.amortized


class Penalty(nn.Module):
    """A term subtracted from the ELBO: the model adds ``pyro.factor(-weight * value)``.

    ``forward`` returns the penalty per datapoint ``[B]`` (or a scalar, counted
    once per datapoint), in nats, so weights are comparable across datasets.

    Examples
    --------
    >>> import torch
    >>> from ppl_vae.parts import Context, Penalty, PenaltyInputs
    >>> class SquaredNorm(Penalty):                          # ||z||^2 per datapoint
    ...     def forward(self, inputs):
    ...         return inputs.z.pow(2).sum(-1)
    >>> penalty = SquaredNorm(Context(data_dim=4, latent_dim=2), weight=0.5)
    >>> inputs = PenaltyInputs(x=torch.zeros(3, 4), y=None, z=torch.ones(3, 2),
    ...                        posterior=None, prior=None, num_data=100)
    >>> penalty.weight, penalty(inputs).tolist()
    (0.5, [2.0, 2.0, 2.0])
    """

    needs_posterior = False
    #: Declared capability: the part trains parameters of its own with an optimiser of
    #: its own (an adversary, e.g. ``factor_tc``'s discriminator). ``pv.fit`` then leaves
    #: :meth:`auxiliary_parameters` out of the model's optimiser, builds
    #: :meth:`auxiliary_optimizer` and calls :meth:`auxiliary_step` once after every
    #: step, on another batch; the optimiser's state is saved in training checkpoints.
    auxiliary = False

    def __init__(self, ctx: Context, *, weight: float = 1.0):
        super().__init__()
        self.weight = _checks.finite_number(
            "penalty.weight", weight, minimum=0, fix="pass a finite number >= 0"
        )

    def forward(self, inputs: PenaltyInputs) -> torch.Tensor:
        raise NotImplementedError

    def auxiliary_parameters(self) -> list:
        """The parameters that only :meth:`auxiliary_step` updates (none by default)."""
        return []

    def auxiliary_optimizer(self) -> torch.optim.Optimizer:
        """A fresh optimiser over :meth:`auxiliary_parameters` (parts with ``auxiliary``)."""
        raise NotImplementedError

    def auxiliary_step(self, model, x, y, optimizer) -> torch.Tensor:
        """One update of the auxiliary parameters on the batch ``x`` (labels ``y``) with
        ``optimizer``; returns that update's loss, detached (parts with ``auxiliary``)."""
        raise NotImplementedError

    def check_compatible(self, model) -> None:
        """Raise a ValueError if this penalty cannot work with ``model``'s parts."""

    def require_amortized_guide(self, model, needs: str) -> None:
        """Refuse a model whose guide is not an encoder; ``needs`` says what the part does."""
        if not model.q.amortized:
            raise ValueError(
                f"penalty.kind={self.part_name!r} {needs}, but guide.kind="
                f"{model.spec['guide']['kind']!r}: set guide.kind = 'amortized'"
            )

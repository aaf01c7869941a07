"""The capacity-annealed VAE's penalty (Burgess et al. 2018, "Understanding
Disentangling in β-VAE", arXiv:1804.03599, Eq. 8):

    γ · | KL − C(t) |,   C(t) = c_min + (c_max − c_min) · min(t / iterations, 1),

with KL the minibatch mean of KL(q(z|x) ‖ p(z)) in closed form (nats) and t the
training step. disentanglement_lib's settings: γ = 1000, c_min = 0, c_max ∈
{5, 10, 25, 50, 75, 100}, ``iterations = 100000``.

The step. Penalties see one minibatch (:class:`~ppl_vae.parts.base.PenaltyInputs`),
not the trainer's step, so this part keeps its own counter ``step`` (a buffer: it is
saved with the model and a resumed run continues the schedule). It counts the times
the penalty is evaluated with gradients on while the model is in training mode, i.e.
once per ``pv.fit`` step when the model runs once per step (one particle, or
vectorised particles); with ``num_particles = K`` not vectorised it advances K times a
step, so set ``iterations`` K times larger. Evaluations without gradients (validation,
``pv.infer``) do not advance it.

The loss here is −ELBO + γ |KL − C(t)|: the ELBO keeps its own KL (weight
``objective.kl``), where Burgess et al. replace the KL by the penalty. With γ ≫ 1 the
difference is a KL term of relative weight 1/γ.
"""

from __future__ import annotations

import torch

from ppl_vae import _checks
from ppl_vae.parts.base import Penalty
from ppl_vae.registry import register


def capacity(step, *, c_min: float, c_max: float, iterations: int):
    """C(t) of the module docstring (nats)."""
    return c_min + (c_max - c_min) * min(float(step) / iterations, 1.0)


@register("penalty", "capacity")
class Capacity(Penalty):
    """γ · |KL − C(t)| with a linearly rising capacity C (module docstring).

    Parameters
    ----------
    weight : float, default 1000
        γ (disentanglement_lib's value).
    c_min, c_max : float, default 0, 25
        The capacity (nats) at step 0 and from step ``iterations`` on.
    iterations : int, default 100000
        Steps over which C rises.
    """

    needs_posterior = True

    def __init__(self, ctx, *, weight=1000.0, c_min=0.0, c_max=25.0, iterations=100000):
        super().__init__(ctx, weight=weight)
        self.c_min = _checks.finite_number("penalty.c_min", c_min, minimum=0)
        self.c_max = _checks.finite_number("penalty.c_max", c_max, minimum=0)
        if self.c_max < self.c_min:
            raise ValueError(f"penalty.c_max={c_max!r} is below penalty.c_min={c_min!r}: "
                             "pass c_max >= c_min")
        self.iterations = _checks.positive_int("penalty.iterations", iterations)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    @property
    def current_capacity(self) -> float:
        return capacity(int(self.step), c_min=self.c_min, c_max=self.c_max,
                        iterations=self.iterations)

    def forward(self, inputs):
        prior = inputs.prior.distribution()
        try:
            kl = torch.distributions.kl_divergence(inputs.posterior, prior)  # [B]
        except NotImplementedError:
            raise ValueError(
                f"penalty.kind='capacity' needs KL(q(z|x) ‖ p(z)) in closed form, but there is "
                f"none for {type(inputs.posterior).__name__} and {type(prior).__name__}: use "
                "prior.kind = 'standard_normal' with a diagonal Gaussian guide"
            ) from None
        value = (kl.mean() - self.current_capacity).abs()
        if self.training and torch.is_grad_enabled():
            self.step += 1
        return value

    def check_compatible(self, model) -> None:
        if model.prior.distribution().batch_shape != torch.Size():
            raise ValueError(
                f"penalty.kind='capacity' needs one prior p(z) for every datapoint, but "
                f"prior.kind={model.spec['prior']['kind']!r} depends on the label: use "
                "prior.kind = 'standard_normal'"
            )

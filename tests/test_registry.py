"""A user registers a new part with a decorator and uses it from a spec."""

import pyro.distributions as dist
import torch

import ppl_vae as pv
from ppl_vae import registry
from ppl_vae.parts import Prior


def test_user_registered_prior_is_used_by_a_spec():
    @pv.register("prior", "test_laplace")
    class LaplacePrior(Prior):
        def __init__(self, ctx, *, scale=1.0):
            super().__init__(ctx)
            self.scale = scale

        def distribution(self, y=None):
            zeros = torch.zeros(self.latent_dim)
            return dist.Laplace(zeros, torch.full_like(zeros, self.scale)).to_event(1)

    try:
        model = pv.build("vae", data_dim=6, latent_dim=2, prior={"kind": "test_laplace", "scale": 0.5})
        assert model.spec["prior"] == {"kind": "test_laplace", "scale": 0.5}
        # The model really uses it: log p(z) in the model trace is the Laplace density.
        z = torch.tensor([[0.3, -1.0]])
        expected = dist.Laplace(0.0, 0.5).log_prob(z).sum()
        assert torch.allclose(model.prior.distribution().log_prob(z), expected)
        x = torch.ones(1, 6)
        elbo = pv.infer.elbo(model, x, num_particles=4, seed=0)
        assert elbo.shape == (1,) and torch.isfinite(elbo).all()
    finally:
        registry._REGISTRY["prior"].pop("test_laplace")


def test_spec_keys_come_from_keyword_only_arguments():
    from ppl_vae.parts.guides import AmortizedGuide

    assert registry.spec_keys(AmortizedGuide) == {
        "hidden": (256,), "activation": "relu", "covariance": "diagonal", "flow": None,
    }

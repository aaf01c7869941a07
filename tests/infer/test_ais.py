"""Annealed importance sampling and BDMC against closed forms and quadrature.

AIS from the prior has log-weight variance of order L·log(β ratio)²/T per chain
even with perfect mixing, so accuracy is checked on the mean over many datapoints
(which costs nothing extra: datapoints × chains move in one batch).
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

import ppl_vae as pv
from ppl_vae.infer import hmc
from ppl_vae.infer.ais import temperatures


def _err(res, truth):
    return res.log_px.double() - truth


def test_linear_gaussian_prior_init_converges_and_error_decreases(ppca_factory):
    ppca = ppca_factory(4, 1, 0.5)
    x = ppca.sample(60, seed=1)
    truth = ppca.log_marginal(x)
    errors = []
    for steps in (5, 40, 400):
        res = pv.infer.ais(ppca.model, x, num_steps=steps, num_chains=64, num_leapfrog=3, seed=0)
        errors.append(float(_err(res, truth).abs().mean()))
    assert errors[0] > 1.2 * errors[1] and errors[1] > 2 * errors[2]
    assert abs(float(_err(res, truth).mean())) < 0.02
    assert res.log_weights.shape == (64, 60) and res.acceptance.shape[1] == 60
    # the step size was adapted towards the target rate
    assert 0.5 < float(res.acceptance[-1].mean()) < 0.8


def test_guide_init_with_the_exact_posterior_is_exact(ppca):
    x = ppca.sample(8, seed=2)
    res = pv.infer.ais(ppca.model, x, guide=ppca.guide, init="guide", num_steps=5,
                       num_chains=4, seed=0)
    # f_β ∝ q for every β: every increment is log p(x)·Δβ, every chain weighs log p(x)
    assert torch.allclose(res.log_px.double(), ppca.log_marginal(x), atol=1e-4)
    assert torch.allclose(res.ess, torch.full_like(res.ess, 4.0), atol=1e-3)


def test_guide_init_with_a_poor_guide_beats_importance_sampling(ppca):
    x = ppca.sample(40, seed=3)
    truth = ppca.log_marginal(x)
    kw = {"guide": ppca.guide, "guide_kwargs": {"inflate": 3.0, "shift": 1.0}}
    res = pv.infer.ais(ppca.model, x, init="guide", num_steps=100, num_chains=64, seed=0, **kw)
    iwae = pv.infer.log_likelihood(ppca.model, x, num_samples=8, seed=0, **kw)
    assert float(_err(res, truth).abs().mean()) < 0.5 * float((iwae.log_px.double() - truth).abs().mean())
    assert abs(float(_err(res, truth).mean())) < 0.03


def test_positive_latent_against_quadrature():
    """z ~ Gamma(2, 1) (moved through exp), x_d | z ~ Normal(log z, 0.3): a skewed posterior."""
    def model(x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Gamma(2.0, 1.0))
            pyro.sample("x", dist.Normal(z.log().unsqueeze(-1), 0.3).to_event(1), obs=x)

    x = torch.tensor([[0.1, 0.3], [1.2, 0.9], [-1.0, -1.4], [0.5, 0.6]])
    grid = torch.linspace(1e-4, 30.0, 200_001, dtype=torch.float64)
    lik = dist.Normal(grid.log()[None, :, None], 0.3).log_prob(x.double()[:, None, :]).sum(-1)
    log_joint = dist.Gamma(torch.tensor(2.0, dtype=torch.float64), 1.0).log_prob(grid) + lik
    truth = torch.logsumexp(log_joint, 1) + math.log(float(grid[1] - grid[0]))
    res = pv.infer.ais(model, x.repeat(10, 1), num_steps=300, num_chains=64, num_leapfrog=3, seed=1)
    err = res.log_px.double().reshape(10, 4) - truth
    assert float(err.mean(0).abs().max()) < 0.03


def test_enumerated_mixture_against_closed_form(ppca_factory):
    """x = Wz + μ_k + ε with k summed out at every β: a mixture of three pPCAs."""
    ppca = ppca_factory(3, 1, 0.5)
    locs = torch.tensor([[-2.0, 0.0, 1.0], [2.0, 1.0, 0.0], [0.0, -2.0, -1.0]])
    weights = torch.tensor([0.5, 0.3, 0.2])

    def model(x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(1), 1.0).to_event(1))
            k = pyro.sample("k", dist.Categorical(weights), infer={"enumerate": "parallel"})
            pyro.sample("x", dist.Normal(z @ ppca.w.T + locs[k], 0.5).to_event(1), obs=x)

    g = torch.Generator().manual_seed(4)
    k = torch.multinomial(weights, 60, replacement=True, generator=g)
    x = ppca.sample(60, seed=5) - ppca.b + locs[k]
    w = ppca.w.double()
    cov = w @ w.T + 0.25 * torch.eye(3, dtype=torch.float64)
    comp = torch.distributions.MultivariateNormal(locs.double(), cov).log_prob(x.double()[:, None])
    truth = torch.logsumexp(comp + weights.double().log(), 1)
    res = pv.infer.ais(model, x, num_steps=200, num_chains=64, num_leapfrog=3, seed=0)
    assert abs(float(_err(res, truth).mean())) < 0.03
    assert float(_err(res, truth).abs().max()) < 0.3


def test_same_seed_same_numbers_and_chunking_changes_nothing(ppca):
    x = ppca.sample(7, seed=6)
    kw = {"num_steps": 20, "num_chains": 5, "seed": 3}
    a = pv.infer.ais(ppca.model, x, **kw)
    b = pv.infer.ais(ppca.model, x, **kw)
    c = pv.infer.ais(ppca.model, x, chunk_size=2, **kw)
    d = pv.infer.ais(ppca.model, x, num_steps=20, num_chains=5, seed=4)
    assert torch.equal(a.log_weights, b.log_weights)
    assert torch.allclose(a.log_weights, c.log_weights, atol=1e-5)
    assert torch.allclose(a.step_size, c.step_size, atol=1e-5)
    assert not torch.allclose(a.log_weights, d.log_weights)
    # and a datapoint's numbers do not depend on the others in its pass
    e = pv.infer.ais(ppca.model, x[3:5], **kw)
    assert not torch.allclose(a.log_weights[:, 3:5], e.log_weights)  # global index enters


def test_schedules():
    for kind in ("sigmoid", "geometric", "linear"):
        b = temperatures(kind, 50)
        assert len(b) == 51 and b[0] == 0 and b[-1] == 1 and bool((b[1:] > b[:-1]).all())
    assert torch.allclose(temperatures("linear", 4), torch.tensor([0, 0.25, 0.5, 0.75, 1.0],
                                                                   dtype=torch.float64))
    assert float(temperatures("geometric", 5)[1]) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="increasing sequence"):
        temperatures([0.0, 0.5, 0.4, 1.0], 3)


def test_counter_based_normals_are_standard_normal():
    ids = torch.arange(200_000)
    z = hmc.normal(7, 3, 0, ids, torch.float64)
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01
    assert abs(float((z > 1.96).double().mean()) - 0.025) < 0.002
    assert not torch.equal(z, hmc.normal(7, 4, 0, ids, torch.float64))


def test_refusals(ppca):
    x = ppca.sample(5, seed=7)

    def discrete(x):
        with pyro.plate("data", x.shape[0]):
            c = pyro.sample("coin", dist.Bernoulli(0.5))
            z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z.sum(-1, keepdim=True) + c[..., None], 1.0)
                        .expand([x.shape[0], x.shape[1]]).to_event(1), obs=x)

    with pytest.raises(ValueError, match="'coin' is discrete and sampled"):
        pv.infer.ais(discrete, x, num_steps=3, num_chains=2)
    with pytest.raises(ValueError, match="pass guide="):
        pv.infer.ais(ppca.model, x, init="guide", num_steps=3, num_chains=2)
    with pytest.raises(ValueError, match="target_accept"):
        pv.infer.ais(ppca.model, x, target_accept=1.0, num_steps=3, num_chains=2)
    with pytest.raises(ValueError, match="schedule"):
        pv.infer.ais(ppca.model, x, schedule="cosine", num_steps=3, num_chains=2)
    with pytest.raises(ValueError, match="transition='nuts'"):
        pv.infer.ais(ppca.model, x, transition="nuts", num_steps=3, num_chains=2)


def test_bdmc_sandwiches_the_exact_log_px_and_the_gap_shrinks(ppca_factory):
    ppca = ppca_factory(4, 1, 0.5)
    kw = {"x_like": torch.zeros(1, 4), "num_chains": 32, "num_leapfrog": 3, "seed": 0}
    short = pv.infer.bdmc(ppca.model, 60, num_steps=5, **kw)
    longer = pv.infer.bdmc(ppca.model, 60, num_steps=40, **kw)
    assert torch.equal(short.x, longer.x)  # the same simulated data for the same seed
    truth = ppca.log_marginal(short.x)
    for res in (short, longer):
        assert float(res.upper.mean()) >= float(truth.mean()) >= float(res.lower.mean())
    assert float(short.gap.mean()) > 0.1
    assert float(longer.gap.mean()) < 0.5 * float(short.gap.mean())
    assert short.summary()["gap"] == pytest.approx(float(short.gap.mean()))
    # the simulated x follow the model: the exact log p(x) of simulated data averages
    # −H[p(x)] = −½ log det(2πe Σ)
    w = ppca.w.double()
    cov = w @ w.T + 0.25 * torch.eye(4, dtype=torch.float64)
    entropy = 0.5 * torch.logdet(2 * math.pi * math.e * cov)
    assert abs(float(truth.mean()) + float(entropy)) < 0.5


def test_bdmc_on_a_ppl_vae_model_and_refusals():
    model = pv.build("lvm", data_dim=3, latent_dim=1, likelihood={"scale": 0.5},
                     decoder={"hidden": []}, guide={"kind": "amortized", "hidden": []})
    res = pv.infer.bdmc(model, 20, num_steps=30, num_chains=16, num_leapfrog=3, seed=0)
    exact = pv.infer.exact_log_likelihood(model, res.x).double()
    assert float(res.lower.mean()) - 0.1 < float(exact.mean()) < float(res.upper.mean()) + 0.1
    assert res.x.shape == (20, 3) and res.z["z"].shape == (20, 1)

    def raw(x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z, 1.0), obs=x)

    with pytest.raises(ValueError, match="x_like="):
        pv.infer.bdmc(raw, 5, num_steps=3, num_chains=2)


def _pairs():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("pyro_pairs", Path(__file__).with_name("pyro_pairs.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_foreign_pairs_nested_plates_masks_and_scales_with_the_exact_posterior():
    """Started at each pair's exact posterior, every chain weighs log p(x) exactly: the
    target has IS's semantics for foreign names, nested plates, masks and scales."""
    pp = _pairs()
    lg = pp.LinearGaussian()
    x = lg.sample(7, seed=8)
    mask = torch.rand(7, pp.D, generator=torch.Generator().manual_seed(9)) > 0.3
    kw = {"init": "guide", "num_steps": 4, "num_chains": 3, "seed": 0}
    cases = [
        (lg.model_named, lg.guide_named, {}, lg.exact(x)),
        (lg.model_nested, lg.guide_nested, {"mask": mask}, lg.exact(x, mask)),
        (lg.model_scaled, lg.guide_tempered, {"s": 0.6}, lg.exact_scaled(x, 0.6)),
    ]
    for model, guide, extra, truth in cases:
        res = pv.infer.ais(model, x, guide=guide, **kw, **extra)
        assert torch.allclose(res.log_px.double(), truth, atol=1e-3), model.__name__


def test_nested_masked_pair_from_the_prior():
    pp = _pairs()
    lg = pp.LinearGaussian()
    x = lg.sample(30, seed=10)
    mask = torch.rand(30, pp.D, generator=torch.Generator().manual_seed(11)) > 0.3
    res = pv.infer.ais(lg.model_nested, x, mask=mask, num_steps=150, num_chains=64,
                       num_leapfrog=3, seed=0)
    err = res.log_px.double() - lg.exact(x, mask)
    assert abs(float(err.mean())) < 0.03 and float(err.abs().max()) < 0.2


def test_a_discrete_latent_enumerated_only_in_the_guide_is_refused():
    pp = _pairs()
    mix = pp.GuideEnumMixture()
    with pytest.raises(ValueError, match="'y' is discrete and sampled"):
        pv.infer.ais(mix.model, mix.sample(4), num_steps=3, num_chains=2)


def test_a_run_over_the_memory_budget_is_refused_before_it_starts(ppca, monkeypatch):
    x = ppca.sample(50, seed=7)
    monkeypatch.setenv("PPL_VAE_MEMORY_BUDGET", "2000")
    with pytest.raises(ValueError, match="num_chains=16"):
        pv.infer.ais(ppca.model, x, num_steps=3, num_chains=16)
    monkeypatch.setenv("PPL_VAE_MEMORY_BUDGET", "1G")
    assert pv.infer.ais(ppca.model, x, num_steps=3, num_chains=16, seed=0).log_px.shape == (50,)

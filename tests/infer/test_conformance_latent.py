"""Conformance of the latent-space tools, and of Pyro's example-shaped VAEs end to end.

Raw pairs from ``pyro_pairs.py`` (pPCA with sites ``latent``/``obs`` in plate ``batch``,
a nested-plate pPCA, a two-latent hierarchy, an M2-style linear model) have closed forms:

- aggregate posterior  — the equal-weight mixture of the exact posteriors N(μ(xᵢ), Σ);
- project "mean"/"map" — μ(x), which for a Gaussian posterior is also the mode;
- traverse/resynthesize — decoder mean W z + b at the moved codes;
- attribute_vector     — mean μ(x_b) − mean μ(x_a);
- an ambiguous latent  — ValueError listing the candidates; ``latent=`` picks one.

Pairs shaped like Pyro's ``examples/vae/vae.py`` (``VAE``: sites ``latent``/``obs``,
plate ``data``) and ``examples/vae/ss_vae_M2.py`` (``SSVAE``: one-hot ``y``, plate
``"data"`` *without a size*, as in the example) are trained briefly with plain
``SVI(Trace_ELBO)`` and run through every tool unchanged; the checks are bounds that
must hold (ELBO ≤ IWAE_K, IWAE_K increasing in K on average, log p(x) ≤ 0 for Bernoulli
pixels), shapes, MAP improving log p(x|z) + log p(z) over the mean, and for M2
log p(x) ≈ logsumexp_c log p(x, c).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO, config_enumerate
from pyro.optim import Adam

import ppl_vae as pv

_spec = importlib.util.spec_from_file_location(
    "pyro_pairs", Path(__file__).with_name("pyro_pairs.py")
)
pp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pp)


def close(actual, expected, atol=2e-4):
    torch.testing.assert_close(
        torch.as_tensor(actual).double(), torch.as_tensor(expected).double(), atol=atol, rtol=0
    )


@pytest.fixture
def lg():
    return pp.LinearGaussian()


@pytest.fixture
def x(lg):
    return lg.sample(9)


# ---------------------------------------------------------------------------
# raw pairs with closed forms
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("pair", ["named", "nested"])
def test_aggregate_posterior_is_the_mixture_of_exact_posteriors(lg, x, pair):
    model, guide = {
        "named": (lg.model_named, lg.guide_named),
        "nested": (lg.model_nested, lg.guide_nested),
    }[pair]
    q = pv.infer.aggregate_posterior(model, x, guide=guide)
    assert isinstance(q, torch.distributions.MixtureSameFamily)
    assert q.event_shape == (lg.l,)
    mean, cov = pp.gauss_posterior(x, lg.w, lg.b, lg.sigma)
    z = torch.randn(11, lg.l, generator=torch.Generator().manual_seed(0))
    comp = torch.distributions.MultivariateNormal(mean, cov).log_prob(z.double()[:, None, :])
    close(q.log_prob(z), torch.logsumexp(comp, 1) - math.log(x.shape[0]), atol=1e-4)
    s = pv.infer.sample_aggregate_posterior(model, x, 6, guide=guide, seed=1)
    assert s.shape == (6, lg.d)
    assert torch.equal(s, pv.infer.sample_aggregate_posterior(model, x, 6, guide=guide, seed=1))


@pytest.mark.parametrize("method", ["mean", "map"])
def test_project_named_pair_is_the_posterior_mean(lg, x, method):
    def shifted(data):  # start MAP away from the answer; "mean" then reads the guide
        loc, cov = lg.post(data)
        with pyro.plate("batch", data.shape[0]):
            pyro.sample("latent", dist.MultivariateNormal(loc + 1.5, covariance_matrix=cov))

    guide = shifted if method == "map" else lg.guide_named
    z = pv.infer.project(lg.model_named, x, guide=guide, method=method, seed=0)
    assert z.shape == (x.shape[0], lg.l)
    close(z, pp.gauss_posterior(x, lg.w, lg.b, lg.sigma)[0], atol=1e-3)


def test_project_nested_plate_pair(lg, x):
    z = pv.infer.project(lg.model_nested, x, guide=lg.guide_nested, method="map", seed=0)
    assert z.shape == (x.shape[0], lg.l)
    close(z, pp.gauss_posterior(x, lg.w, lg.b, lg.sigma)[0], atol=1e-3)


def test_traverse_raw_pair_is_the_decoder_mean(lg):
    z = torch.tensor([0.3, -0.7])
    values = torch.tensor([-2.0, 0.0, 1.0, 2.5])
    out = pv.infer.traverse(lg.model_named, z, 1, values, data_dim=lg.d)
    codes = z.repeat(4, 1)
    codes[:, 1] = values
    assert out.shape == (4, lg.d)
    close(out, codes @ lg.w.T + lg.b, atol=1e-5)
    forced = pv.infer.traverse(
        lg.model_named, z, 1, values, data_dim=lg.d, latent="latent", observed="obs"
    )
    close(forced, out, atol=1e-6)


def test_attribute_vector_and_resynthesis_raw_pair(lg, x):
    x_a, x_b = x[:4], x[4:]
    v = pv.infer.attribute_vector(lg.model_named, x_a, x_b, guide=lg.guide_named)
    mu_a = pp.gauss_posterior(x_a, lg.w, lg.b, lg.sigma)[0]
    mu_b = pp.gauss_posterior(x_b, lg.w, lg.b, lg.sigma)[0]
    close(v, mu_b.mean(0) - mu_a.mean(0), atol=1e-4)
    scales = (-1.0, 0.0, 2.0)
    out = pv.infer.resynthesize(lg.model_named, x_a, v, scales=scales, guide=lg.guide_named)
    assert out.shape == (4, 3, lg.d)
    s = torch.tensor(scales, dtype=torch.float64)
    moved = mu_a[:, None, :] + s[None, :, None] * v.double()
    close(out, moved @ lg.w.double().T + lg.b.double(), atol=1e-4)


def test_ambiguous_latent_lists_candidates_and_latent_picks_one():
    h = pp.Hierarchical()
    xh = h.sample()
    with pytest.raises(ValueError, match="z1") as err:
        pv.infer.project(h.model, xh, guide=h.guide)
    assert "z2" in str(err.value)
    z1 = pv.infer.project(h.model, xh, guide=h.guide, latent="z1")
    close(z1, h.post_z1(xh)[0], atol=1e-4)
    q = pv.infer.aggregate_posterior(h.model, xh, guide=h.guide, latent="z1")
    assert q.event_shape == (h.l1,)
    z2 = torch.tensor([0.1, -0.4, 0.8])
    out = pv.infer.traverse(h.model, z2, 0, [-1.0, 1.0], data_dim=pp.D, latent="z2")
    codes = z2.repeat(2, 1)
    codes[:, 0] = torch.tensor([-1.0, 1.0])
    close(out, codes @ h.w.T + h.b, atol=1e-5)


def test_project_with_one_hot_labels():
    m2 = pp.LinearM2()
    x2, y2 = m2.sample(8)
    for method in ("mean", "map"):
        z = pv.infer.project(m2.model, x2, y=y2, guide=m2.guide, method=method, seed=0)
        close(z, m2.post_mean(x2, y2), atol=1e-3)


def test_model_kwargs_reach_the_latent_tools(lg, x):
    z = pv.infer.project(
        lg.model_kw,
        x,
        guide=lg.guide_kw,
        model_kwargs={"noise": lg.sigma},
        guide_kwargs={"shift": 0.0, "temperature": 1.0},
    )
    close(z, pp.gauss_posterior(x, lg.w, lg.b, lg.sigma)[0], atol=1e-4)


# ---------------------------------------------------------------------------
# Pyro's examples/vae/vae.py shape
# ---------------------------------------------------------------------------


def _train(model, guide, batches, steps, lr=3e-3):
    pyro.clear_param_store()
    svi = SVI(model, guide, Adam({"lr": lr}), loss=Trace_ELBO())
    for i in range(steps):
        svi.step(*batches[i % len(batches)])


@pytest.fixture(scope="module")
def trained_example_vae(digits):
    pyro.set_rng_seed(0)
    vae = pp.VAE(z_dim=4, hidden_dim=32)
    x = torch.as_tensor(digits.x_train[:300])
    _train(vae.model, vae.guide, [(x[i : i + 100],) for i in range(0, 300, 100)], 60)
    return vae


def _log_joint(model, site, z, *args):
    """log p(x | z) + log p(z) per datapoint for the example models (z conditioned)."""
    tr = poutine.trace(poutine.condition(model, data={site: z})).get_trace(*args)
    total = 0.0
    for s in tr.nodes.values():
        if s["type"] == "sample":
            total = total + s["fn"].log_prob(s["value"])
    return total


def test_example_vae_bounds(trained_example_vae, digits):
    vae = trained_example_vae
    xb = torch.as_tensor(digits.x_test[:40])
    iwae = {k: pv.infer.log_likelihood(vae, xb, num_samples=k, seed=k).log_px for k in (10, 200)}
    elbo = pv.infer.elbo(vae, xb, num_particles=50, seed=0)
    assert elbo.shape == iwae[200].shape == (40,)
    assert (iwae[200] <= 0).all()
    # expected gaps here are ~0.1 nat (ELBO→IWAE_10) and ~0 (IWAE_10→IWAE_200); the
    # Monte Carlo s.e. of these means is ~0.02-0.03 nat
    assert elbo.mean() <= iwae[10].mean() + 0.05
    assert iwae[10].mean() <= iwae[200].mean() + 0.1
    assert elbo.mean() <= iwae[200].mean()
    # the bound method pair and the module give the same estimator
    bound = pv.infer.log_likelihood(vae.model, xb, guide=vae.guide, num_samples=200, seed=200)
    close(bound.log_px, iwae[200], atol=1e-4)


def test_example_vae_latent_tools(trained_example_vae, digits):
    vae = trained_example_vae
    xa, xb = torch.as_tensor(digits.x_test[:10]), torch.as_tensor(digits.x_test[10:25])
    q = pv.infer.aggregate_posterior(vae, xa)
    assert q.event_shape == (4,)
    s = pv.infer.sample_aggregate_posterior(vae, xa, 5, seed=0)
    assert s.shape == (5, 64) and ((s >= 0) & (s <= 1)).all()
    z_mean = pv.infer.project(vae, xa, method="mean")
    with torch.no_grad():
        close(z_mean, vae.encoder(xa)[0], atol=1e-5)
    z_map = pv.infer.project(vae, xa, method="map", steps=50, seed=0)
    assert z_map.shape == (10, 4)
    with torch.no_grad():
        before = _log_joint(vae.model, "latent", z_mean, xa)
        after = _log_joint(vae.model, "latent", z_map, xa)
    assert (after >= before - 1e-4).all() and (after > before + 1e-3).any()
    v = pv.infer.attribute_vector(vae, xa, xb)
    assert v.shape == (4,)
    out = pv.infer.resynthesize(vae, xa, v, scales=(-1, 0, 1))
    assert out.shape == (10, 3, 64)
    with torch.no_grad():
        close(out[:, 1], vae.decoder(z_mean), atol=1e-5)
    trav = pv.infer.traverse(vae, z_mean[0], 2, [-1.0, 0.0, 1.0], data_dim=64)
    assert trav.shape == (3, 64)


# ---------------------------------------------------------------------------
# Pyro's examples/vae/ss_vae_M2.py shape
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_example_m2(digits):
    pyro.set_rng_seed(0)
    ss = pp.SSVAE()
    x = torch.as_tensor(digits.x_train[:300])
    y = torch.nn.functional.one_hot(torch.as_tensor(digits.y_train[:300]).long(), 10).float()
    _train(ss.model, ss.guide, [(x[i : i + 100], y[i : i + 100]) for i in range(0, 300, 100)], 60)
    return ss


def _one_hot(digits, sl):
    return torch.nn.functional.one_hot(torch.as_tensor(digits.y_test[sl]).long(), 10).float()


def test_example_m2_labelled(trained_example_m2, digits):
    ss = trained_example_m2
    xs, ys = torch.as_tensor(digits.x_test[:12]), _one_hot(digits, slice(0, 12))
    res = pv.infer.log_likelihood(ss, xs, ys, num_samples=100, seed=0)
    assert res.log_px.shape == (12,) and (res.log_px <= 0).all()
    elbo = pv.infer.elbo(ss, xs, ys, num_particles=20, seed=0)
    assert elbo.mean() <= res.log_px.mean()
    z = pv.infer.project(ss, xs, y=ys, method="map", steps=30, seed=0)
    z0 = pv.infer.project(ss, xs, y=ys, method="mean")
    assert z.shape == z0.shape == (12, 4)
    with torch.no_grad():
        before = _log_joint(ss.model, "z", z0, xs, ys)
        after = _log_joint(ss.model, "z", z, xs, ys)
    assert (after >= before - 1e-4).all()
    q = pv.infer.aggregate_posterior(ss, xs, y=ys)
    assert q.event_shape == (4,)


def test_example_m2_unlabelled_is_the_class_mixture(trained_example_m2, digits):
    """log p(x) (guide's y enumerated) ≈ logsumexp_c log p(x, c): a statistical check
    (different draws); the exact version is test_one_hot_labels_m2_style."""
    ss = trained_example_m2
    xs = torch.as_tensor(digits.x_test[:5])
    k = 300
    guide = config_enumerate(ss.guide, "parallel", expand=True)
    marg = pv.infer.log_likelihood(ss.model, xs, guide=guide, num_samples=k, seed=0).log_px
    per_class = torch.stack(
        [
            pv.infer.log_likelihood(
                ss.model,
                xs,
                torch.eye(10)[c].expand(5, 10),
                guide=ss.guide,
                num_samples=k,
                seed=c,
            ).log_px
            for c in range(10)
        ],
        1,
    )
    assert marg.shape == (5,) and (marg <= 0).all()
    close(marg, torch.logsumexp(per_class, 1), atol=0.3)
    elbo = pv.infer.elbo(ss.model, xs, guide=guide, num_particles=20, seed=0)
    assert (elbo <= marg + 0.1).all()

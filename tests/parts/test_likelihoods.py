"""Likelihood parts against closed forms: torch's and scipy's densities, formulas by hand."""

import numpy as np
import pyro.distributions as dist
import pytest
import torch
from scipy import stats
from torch.nn.functional import softplus

import ppl_vae as pv
from ppl_vae import registry
from ppl_vae.parts.base import Context
from ppl_vae.parts.likelihoods import MIN_SCALE, IndependentBernoulli


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_fused_bernoulli_log_density_equals_the_generic_one(scale):
    torch.manual_seed(0)
    logits = torch.randn(4, 6, 50, dtype=torch.float64) * scale  # extreme logits included
    x = (torch.rand(6, 50) > 0.5).double()
    fused = IndependentBernoulli(dist.Bernoulli(logits=logits), 1)
    generic = dist.Bernoulli(logits=logits).to_event(1)
    # softplus is linear above 20, dropping log1p(e^-20) < 2.1e-9 per pixel: <= 1.1e-7 over 50.
    assert torch.allclose(fused.log_prob(x), generic.log_prob(x), rtol=0, atol=2e-7)
    assert fused.expand([2, 4, 6]).log_prob(x).shape == (2, 4, 6)
    assert torch.equal(fused.mean, generic.mean)


def test_normal_likelihood_fixed_and_learned_scale():
    model = pv.build("lvm", data_dim=3, likelihood={"scale": 0.5})
    out = torch.zeros(2, 3)
    x = torch.ones(2, 3)
    want = torch.distributions.Normal(0.0, 0.5).log_prob(x).sum(-1)
    assert torch.allclose(model.likelihood.distribution(out).log_prob(x), want)
    assert not list(model.likelihood.parameters())
    learned = pv.build("lvm", data_dim=3, likelihood={"scale": "learned"})
    assert [p.shape for p in learned.likelihood.parameters()] == [torch.Size([3])]


def test_continuous_bernoulli_is_normalised_on_the_unit_interval():
    model = pv.build("vae", data_dim=1, latent_dim=1, likelihood={"kind": "continuous_bernoulli"})
    grid = torch.linspace(0, 1, 20001).unsqueeze(-1)
    for logit in (-3.0, 0.5, 4.0):
        density = model.likelihood.distribution(torch.full((1,), logit)).log_prob(grid).exp()
        assert abs(float(torch.trapezoid(density, grid[:, 0])) - 1.0) < 1e-3


# --- the kinds beyond Bernoulli and Normal -----------------------------------------------

D = 5


def _part(kind, data_dim=D, **options):
    torch.manual_seed(0)
    return registry.get("likelihood", kind)(Context(data_dim=data_dim, latent_dim=2), **options)


def _scale_and_out(part, loc, raw, scale):
    """The decoder output for ``loc`` (and ``raw`` when the scale is 'net') and the σ it means."""
    if scale == "net":
        return torch.cat([loc, raw], -1), softplus(raw) + MIN_SCALE
    if scale == "learned":
        with torch.no_grad():
            part.log_scale.copy_(raw[0, 0])
        return loc, raw[0, 0].exp().expand_as(loc)
    return loc, torch.full_like(loc, scale)


@pytest.mark.parametrize("scale", [0.3, "learned", "net"])
@pytest.mark.parametrize("kind", ["normal", "laplace", "student_t"])
def test_location_scale_log_density_is_scipys(kind, scale):
    part = _part(kind, scale=scale, **({"df": 2.5} if kind == "student_t" else {}))
    g = torch.Generator().manual_seed(1)
    loc, raw = torch.randn(3, 4, D, generator=g), torch.randn(3, 4, D, generator=g)
    x = torch.randn(4, D, generator=g) * 2
    out, sigma = _scale_and_out(part, loc, raw, scale)
    assert part.params_per_dim == (2 if scale == "net" else 1)
    got = part.distribution(out).log_prob(x)  # [3, 4]
    xs, mu, s = x.numpy(), loc.detach().numpy(), sigma.detach().numpy()
    ref = {
        "normal": lambda: stats.norm.logpdf(xs, mu, s),
        "laplace": lambda: stats.laplace.logpdf(xs, mu, s),
        "student_t": lambda: stats.t.logpdf(xs, 2.5, mu, s),
    }[kind]().sum(-1)
    np.testing.assert_allclose(got.detach().numpy(), ref, rtol=1e-5, atol=1e-4)
    learned = [p.shape for p in part.parameters()]
    assert learned == ([torch.Size([D])] if scale == "learned" else [])


def test_student_t_df_learned_and_its_mean():
    part = _part("student_t", df="learned")
    assert [p.shape for p in part.parameters()] == [torch.Size([D])]
    torch.testing.assert_close(part.df, torch.full((D,), 5.0))
    loc = torch.randn(2, D)
    torch.testing.assert_close(part.distribution(loc).mean, loc)
    cauchy = _part("student_t", df=1.0)
    with pytest.raises(ValueError, match=r"df=1 <= 1 has no mean.*noise=True"):
        cauchy.distribution(loc).mean  # noqa: B018
    with pytest.raises(ValueError, match=r"likelihood.df=-1"):
        _part("student_t", df=-1)
    with pytest.raises(ValueError, match=r"likelihood.scale=0 is invalid.*'learned' or 'net'"):
        _part("laplace", scale=0)


def test_poisson_log_mass_is_scipys_with_a_softplus_rate():
    part = _part("poisson")
    out = torch.randn(3, 4, D) * 3
    k = torch.randint(0, 12, (4, D)).float()
    rate = softplus(out).numpy()
    ref = stats.poisson.logpmf(k.numpy(), rate).sum(-1)
    np.testing.assert_allclose(part.distribution(out).log_prob(k).numpy(), ref, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(part.distribution(out).mean, softplus(out))


def test_categorical_log_mass_indexes_the_log_softmax():
    part = _part("categorical", levels=4)
    assert part.params_per_dim == 4
    g = torch.Generator().manual_seed(2)
    out = torch.randn(3, 2, 4 * D, generator=g)
    k = torch.randint(0, 4, (2, D), generator=g)
    logits = out.reshape(3, 2, 4, D)  # block-major: block j holds level j's logits
    logp = torch.log_softmax(logits, dim=-2)
    want = torch.stack(
        [sum(logp[s, n, k[n, d], d] for d in range(D)) for s in range(3) for n in range(2)]
    ).reshape(3, 2)
    px = part.distribution(out)
    torch.testing.assert_close(px.log_prob(k / 3.0), want)
    # the mean is E[x] = Σ_j p_j · j/3, in [0, 1] (noise=False)
    torch.testing.assert_close(px.mean, (logp.exp() * torch.arange(4.0).view(4, 1) / 3).sum(-2))


def test_two_level_categorical_is_a_bernoulli():
    part = _part("categorical", levels=2)
    out = torch.randn(6, 2 * D)
    x = (torch.rand(6, D) > 0.5).float()
    l0, l1 = out[:, :D], out[:, D:]
    want = dist.Bernoulli(logits=l1 - l0).to_event(1).log_prob(x)
    torch.testing.assert_close(part.distribution(out).log_prob(x), want)


def _logistic_bins(loc, scale, levels):
    """P(bin k) for every k, by CDF differences written out: ``[..., levels]``, float64."""
    h = 0.5 / (levels - 1)
    edges = torch.linspace(0, 1, levels, dtype=torch.float64)[1:] - h  # interior bin edges
    cdf = torch.sigmoid((edges - loc.unsqueeze(-1)) / scale.unsqueeze(-1))  # F at each edge
    zero, one = torch.zeros_like(cdf[..., :1]), torch.ones_like(cdf[..., :1])
    full = torch.cat([zero, cdf, one], -1)  # F(−∞) = 0 … F(∞) = 1: the edge bins take the tails
    return full[..., 1:] - full[..., :-1]


def _logistic_out(logits, loc, raw):
    """The decoder output of a K-component discretized logistic with a net scale: 3K blocks."""
    return torch.cat([logits, loc, raw], -2).flatten(-2)  # [..., 3K·D] from [..., K, D] each


@pytest.mark.parametrize("levels", [2, 5, 256])
def test_discretized_logistic_is_the_cdf_difference_and_normalises(levels):
    k_comp = 3
    part = _part("discretized_logistic", components=k_comp, levels=levels).double()
    assert part.params_per_dim == 3 * k_comp
    g = torch.Generator().manual_seed(levels)
    logits, raw = torch.randn(4, k_comp, D, generator=g), torch.randn(4, k_comp, D, generator=g) * 3
    loc = torch.rand(4, k_comp, D, generator=g) * 1.6 - 0.3  # some beyond the edges
    px = part.distribution(_logistic_out(logits, loc, raw).double())
    scale = softplus(raw.double()) + MIN_SCALE
    bins = _logistic_bins(loc.double(), scale, levels)  # [4, K, D, L]
    pi = torch.softmax(logits.double(), dim=1).unsqueeze(-1)
    mix = (pi * bins).sum(1)  # [4, D, L]
    torch.testing.assert_close(mix.sum(-1), torch.ones(4, D, dtype=torch.float64))
    grid = torch.linspace(0, 1, levels, dtype=torch.float64)
    for j in {0, 1, levels // 2, levels - 2, levels - 1}:  # both edges and the interior
        x = grid[j].expand(4, D)
        want = mix[..., j].log().sum(-1)
        torch.testing.assert_close(px.log_prob(x), want, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(px.mean, (mix * grid).sum(-1))


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_discretized_logistic_sums_to_one_over_the_bins(levels):
    part = _part("discretized_logistic", data_dim=1, components=4, levels=levels).double()
    g = torch.Generator().manual_seed(levels)
    logits = torch.randn(50, 4, 1, generator=g) * 3
    loc = torch.randn(50, 4, 1, generator=g) * 2  # far outside [0, 1] too
    raw = torch.randn(50, 4, 1, generator=g) * 6  # scales from MIN_SCALE to ~20
    px = part.distribution(_logistic_out(logits, loc, raw).double())
    grid = torch.linspace(0, 1, levels, dtype=torch.float64).view(levels, 1, 1)
    total = torch.logsumexp(px.log_prob(grid.expand(levels, 50, 1)), 0)  # over every bin
    torch.testing.assert_close(total, torch.zeros(50, dtype=torch.float64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["categorical", "discretized_logistic"])
def test_quantized_samples_follow_the_bin_probabilities(kind):
    levels, n = 5, 40_000
    part = _part(kind, data_dim=2, levels=levels, **({"components": 2} if kind != "categorical" else {}))
    out = torch.randn(part.params_per_dim * 2, generator=torch.Generator().manual_seed(3))
    px = part.distribution(out)
    torch.manual_seed(4)
    draws = px.sample((n,))  # [n, 2]
    grid = torch.linspace(0, 1, levels)
    freq = (draws.unsqueeze(-1) == grid).float().mean(0)  # [2, L]: every draw is on the grid
    torch.testing.assert_close(freq.sum(-1), torch.ones(2))
    # exact bin probabilities from log_prob (two dimensions scored jointly: use equal levels)
    one_dim = torch.stack([
        torch.stack([px.log_prob(torch.stack([g, h])) for h in grid]).logsumexp(0) for g in grid
    ]).exp()  # marginal of dimension 0, [L]
    se = (one_dim * (1 - one_dim) / n).sqrt()
    assert torch.all((freq[0] - one_dim).abs() <= 5 * se + 1e-4)
    torch.testing.assert_close(draws.mean(0), px.mean, atol=0.01, rtol=0)


def test_data_checks_name_the_value_and_the_fix():
    def model(kind, **kw):
        return pv.build("vae", data_dim=3, likelihood={"kind": kind, **kw})

    with pytest.raises(ValueError, match=r"x contains 2\.5, but likelihood.kind='poisson' needs counts"):
        model("poisson").check_data([[0.0, 1.0, 2.5]])
    with pytest.raises(ValueError, match=r"x contains -1, but likelihood.kind='poisson'"):
        model("poisson").check_data([[0.0, -1.0, 2.0]])
    model("poisson").check_data([[0.0, 7.0, 300.0]])
    with pytest.raises(ValueError, match=r"x contains 0\.53125, which is not one of the 17 levels k/16 "
                       r"of \[0, 1\] that likelihood.kind='categorical' \(levels=17\).*torch.round\(x \* 16\) / 16"):
        model("categorical", levels=17).check_data([[0.0, 0.53125, 1.0]])
    with pytest.raises(ValueError, match=r"x contains 1\.2, which is not one of the 17 levels"):
        model("categorical", levels=17).check_data([[0.0, 1.2, 1.0]])
    model("categorical", levels=17).check_data([[0.0, 0.5625, 1.0]])
    # the digits' 17 grey levels are not on the default 8-bit grid of 256
    with pytest.raises(ValueError, match=r"x contains 0\.0625, .* 256 levels k/255 .*"
                       r"likelihood.kind='discretized_logistic' \(levels=256\)"):
        model("discretized_logistic").check_data([[0.0, 0.0625, 1.0]])
    with pytest.raises(ValueError, match=r"likelihood.levels=1 is invalid"):
        model("categorical", levels=1)
    with pytest.raises(ValueError, match=r"likelihood.components=0 is invalid"):
        model("discretized_logistic", components=0)
    part = _part("categorical", levels=4)  # Pyro's validation refuses off-grid values too
    with pytest.raises(ValueError, match="support"):
        part.distribution(torch.zeros(4 * D)).log_prob(torch.full((D,), 0.3))


def test_decoders_output_the_likelihoods_blocks():
    model = pv.build("vae", data_dim=64, likelihood={"kind": "normal", "scale": "net"},
                     decoder={"kind": "conv", "image_shape": [8, 8], "channels": [4]})
    dec = model.decoder
    z = torch.randn(3, 8)
    images = dec.deconvs(dec.head(z).reshape(-1, *dec.start))  # [3, 2, 8, 8]: one image per block
    torch.testing.assert_close(dec(z).reshape(3, 2, 64), images.flatten(2))
    assert pv.build("vae", data_dim=6, likelihood={"kind": "categorical", "levels": 3}) \
        .decoder(z).shape == (3, 18)
    with pytest.raises(ValueError, match=r"outputs 5 values per row, but the likelihood "
                       r"NormalLikelihood needs 2·data_dim = 10"):
        _part("normal", scale="net").distribution(torch.zeros(2, D))
    # a scale that is a function of z has no linear-Gaussian marginal
    lvm = pv.build("lvm", data_dim=4, latent_dim=1, decoder={"hidden": []},
                   likelihood={"scale": "net"})
    with pytest.raises(NotImplementedError, match="scale is a number or 'learned'"):
        lvm.marginal()
    with pytest.raises(ValueError, match="scale='net'"):
        lvm.likelihood.scale  # noqa: B018


@pytest.fixture(scope="module")
def grey():
    return torch.as_tensor(pv.data.load("digits").x_train[:256])


KINDS = [
    ("laplace", {"scale": "learned"}, None),
    ("student_t", {"df": "learned", "scale": "net"}, None),
    ("poisson", {}, "counts"),
    ("categorical", {"levels": 17}, None),
    ("discretized_logistic", {"levels": 17, "components": 3}, None),
    ("normal", {"scale": "net"}, None),
]


@pytest.mark.parametrize(("kind", "options", "data"), KINDS, ids=[k[0] for k in KINDS])
def test_each_kind_builds_fits_samples_and_scores(kind, options, data, grey, tmp_path):
    x = (grey * 16).round() if data == "counts" else grey  # the digits' 0..16 as counts
    model = pv.build("vae", data_dim=64, latent_dim=4, likelihood={"kind": kind, **options},
                     decoder={"hidden": [32]}, guide={"hidden": [32]})
    pv.build(model.spec)  # the spec round-trips
    result = pv.fit(model, x, steps=20, batch_size=64, lr=3e-3, seed=0, progress=False)
    assert np.isfinite(result.history["loss"]).all()
    noisy, mean = model.sample(200, noise=True, seed=0), model.sample(200, seed=0)
    assert noisy.shape == mean.shape == (200, 64)
    model.check_data(noisy)  # draws lie in the support the data check accepts
    if kind in ("poisson",):
        assert (mean > 0).all()
    if kind in ("categorical", "discretized_logistic"):
        assert (mean >= 0).all() and (mean <= 1).all()  # E[x | z]: between the levels
    held_out = x[:40]
    est = pv.infer.log_likelihood(model, held_out, num_samples=64, seed=0)
    elbo = pv.infer.elbo(model, held_out, num_particles=16, seed=1)
    assert torch.isfinite(est.log_px).all() and torch.isfinite(elbo).all()
    assert float(elbo.mean()) <= float(est.log_px.mean())
    again = pv.load(pv.save(model, tmp_path / "m.pt"))  # learned scales and df travel too
    torch.testing.assert_close(again.sample(5, noise=True, seed=2), model.sample(5, noise=True, seed=2))

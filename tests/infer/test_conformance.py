"""Conformance of ``pv.infer.log_likelihood`` / ``pv.infer.elbo`` with Pyro's semantics.

Every model/guide pair is ordinary Pyro code from ``pyro_pairs.py`` (no ppl_vae
conventions). Idioms, and how each reference is produced:

 1. one-argument ``model(x)``/``guide(x)``      — pPCA closed form; exact-posterior guide,
                                                    so every weight equals log p(x) (any K, seed)
 2. arbitrary names (``latent``/``obs``/``batch``) and ``data_plate=`` — same closed form
 3. nested plates (data dim=-2, pixels dim=-1, no ``to_event``) — pPCA closed form; a
    Bernoulli VAE written that way: log p(x) ≤ 0 and equal (in distribution) to its
    ``to_event`` twin
 4. ``poutine.mask`` on pixels                   — marginal of the unmasked coordinates
 5. ``Distribution.mask``                         — same
 6. ``poutine.scale(s)`` on the likelihood       — log ∫p(x|z)^s p(z)dz in closed form (the
    tempered posterior as guide gives constant weights); with the untempered posterior as
    guide the ELBO E_q[s log p(x|z) + log p(z) − log q(z)] in closed form
 7. ``subsample_size`` 1 and 3 with ``x[ind]``  — evaluated whole: pPCA closed form, all N rows
 8. a global latent outside the data plate       — ValueError naming the site
 9. ``pyro.param`` / ``AutoDelta`` globals (GMM) — exact mixture log-density at the point
    values; cross-checked with −TraceEnum_ELBO loss (minus log p(globals) for AutoDelta)
10. model enumeration + nested plates (Bernoulli mixture) — exact logsumexp; −TraceEnum_ELBO
11. guide enumeration (q(y|x) ≠ posterior)       — IS: exact log p(x); ELBO: closed form
    Σ_y q(y|x)[log p(x,y) − log q(y|x)] and −TraceEnum_ELBO per datapoint
12. two latent sites z1 → z2 → x                 — joint-Gaussian closed form
13. non-reparameterizable Bernoulli latent       — exact sum over the 8 states, within a few
    standard errors; ELBO exact by summing the 8 states under q
14. one-hot labels (M2-style, linear-Gaussian)   — log p(x, y) closed form; y=None with the
    guide's y enumerated → logsumexp_c log p(x, c)
15. code that does not broadcast over particles  — one UserWarning, exact value;
    ``vectorize=True`` → ValueError; ``vectorize=False`` → same exact value
16. keyword arguments for one side only          — exact only if routed correctly
17. PSIS k̂                                       — perfect proposal: K=16 "cannot tell", K≥21
    "ok"; prior proposal on a peaked posterior flagged; generic weights: ArviZ ``psislw``

The ``test_reference_*`` tests check the references themselves against Pyro's own
estimators (``vectorized_importance_weights``, ``TraceEnum_ELBO``) and pass on any ppl_vae.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from pathlib import Path

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceEnum_ELBO
from pyro.infer.autoguide import AutoDelta
from pyro.infer.importance import vectorized_importance_weights

import ppl_vae as pv

_spec = importlib.util.spec_from_file_location(
    "pyro_pairs", Path(__file__).with_name("pyro_pairs.py")
)
pp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pp)

ATOL = 2e-4


def close(actual, expected, atol=ATOL):
    torch.testing.assert_close(
        torch.as_tensor(actual).double(), torch.as_tensor(expected).double(), atol=atol, rtol=0
    )


def pyro_log_weights(model, guide, *args, k=8, nesting=1, **kwargs):
    """Pyro's own vectorised importance weights ``[K]`` (summed over datapoints)."""
    with torch.no_grad():
        lw, _, _ = vectorized_importance_weights(
            model,
            guide,
            *args,
            num_samples=k,
            max_plate_nesting=nesting,
            normalized=False,
            **kwargs,
        )
    return lw


def pyro_single_weight(model, guide, *args):
    """One importance weight log p(x, z) − log q(z|x) from plain Pyro traces (no particle dim)."""
    with torch.no_grad():
        g = poutine.trace(guide).get_trace(*args)
        m = poutine.trace(poutine.replay(model, trace=g)).get_trace(*args)
        return m.log_prob_sum() - g.log_prob_sum()


@pytest.fixture
def lg():
    return pp.LinearGaussian()


@pytest.fixture
def x(lg):
    return lg.sample()


def pixel_mask(n=pp.N, d=pp.D):
    g = torch.Generator().manual_seed(5)
    m = torch.rand(n, d, generator=g) > 0.4
    m[:, 0] = True  # every row keeps at least one pixel
    return m


# ---------------------------------------------------------------------------
# the references themselves, against Pyro
# ---------------------------------------------------------------------------


def _reference_cases():
    lg = pp.LinearGaussian()
    x = lg.sample()
    m = pixel_mask()
    h = pp.Hierarchical()
    xh = h.sample()
    m2 = pp.LinearM2()
    x2, y2 = m2.sample()
    return {
        "one_arg": (lg.model1, lg.guide1, (x,), 1, lg.exact(x)),
        "named": (lg.model_named, lg.guide_named, (x,), 1, lg.exact(x)),
        "nested": (lg.model_nested, lg.guide_nested, (x,), 2, lg.exact(x)),
        "poutine_mask": (lg.model_nested, lg.guide_nested, (x, m), 2, lg.exact(x, m)),
        "dist_mask": (lg.model_dmask, lg.guide_dmask, (x, m), 1, lg.exact(x, m)),
        "scale": (lg.model_scaled, lg.guide_tempered, (x, 0.4), 1, lg.exact_scaled(x, 0.4)),
        "two_latents": (h.model, h.guide, (xh,), 1, h.exact(xh)),
        "two_latents_mm": (h.model, h.guide_mm, (xh,), 1, h.exact(xh)),
        "one_hot": (m2.model, m2.guide, (x2, y2), 1, m2.exact_xy(x2, y2)),
    }


@pytest.mark.parametrize("case", list(_reference_cases()))
def test_reference_exact_posterior_pairs_give_constant_pyro_weights(case):
    model, guide, args, nesting, exact = _reference_cases()[case]
    if case == "two_latents_mm":  # torch.mm cannot take Pyro's particle dim either
        lw = torch.stack([pyro_single_weight(model, guide, *args) for _ in range(4)])
    else:
        lw = pyro_log_weights(model, guide, *args, k=8, nesting=nesting)
    close(lw, exact.sum().expand(lw.shape), atol=2e-3)


def test_reference_mixtures_match_traceenum():
    bm = pp.BernoulliMixture()
    xb = bm.sample()
    loss = TraceEnum_ELBO(max_plate_nesting=2).loss(bm.model, bm.guide, xb)
    close(-loss, bm.exact(xb).sum(), atol=1e-3)
    xg = pp.gmm_sample()
    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(pp.gmm_param_model, pp.gmm_param_guide, xg)
    close(-loss, pp.gmm_exact(xg, pp.GMM_LOCS, pp.GMM_WEIGHTS, pp.GMM_SCALE).sum(), atol=1e-3)


def test_reference_guide_enumeration_elbo_matches_traceenum():
    ge = pp.GuideEnumMixture()
    xe = ge.sample()
    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(ge.model, ge.guide, xe)
    close(-loss, ge.exact_elbo(xe).sum(), atol=1e-3)
    assert (ge.exact_elbo(xe) < ge.exact(xe)).all()  # q(y|x) is not the posterior
    m2 = pp.LinearM2()  # the one-hot version, y enumerated in the guide when not given
    x2, _ = m2.sample()
    q = torch.softmax(x2 @ m2.a, -1).double()
    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(m2.model, m2.guide, x2)
    close(-loss, (q * (m2.log_joint_y(x2) - q.log())).sum(), atol=1e-3)


def test_reference_binary_latent_closed_forms():
    bl = pp.BinaryLatent()
    xb = bl.sample()
    # log p(x) by brute-force Pyro: condition z on each state, sum the joint densities
    states = []
    for s in bl.states:
        cond = poutine.condition(bl.model, data={"z": s.expand(xb.shape[0], 3)})
        tr = poutine.trace(cond).get_trace(xb)
        tr.compute_log_prob()
        states.append(tr.nodes["z"]["log_prob"] + tr.nodes["x"]["log_prob"])
    close(torch.logsumexp(torch.stack(states, 1), 1), bl.exact(xb), atol=1e-4)
    assert (bl.exact_elbo(xb) < bl.exact(xb)).all()


# ---------------------------------------------------------------------------
# 1-2. signatures and names
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 7, 64])
def test_one_argument_signature(lg, x, k):
    res = pv.infer.log_likelihood(lg.model1, x, guide=lg.guide1, num_samples=k, seed=k)
    close(res.log_px, lg.exact(x))
    assert res.log_px.shape == res.ess.shape == res.khat.shape == (x.shape[0],)
    close(res.ess, torch.full((x.shape[0],), float(k)), atol=1e-2)
    elbo = pv.infer.elbo(lg.model1, x, guide=lg.guide1, num_particles=3, seed=0)
    assert elbo.shape == (x.shape[0],)
    close(elbo, lg.exact(x))


def test_arbitrary_site_and_plate_names(lg, x):
    res = pv.infer.log_likelihood(lg.model_named, x, guide=lg.guide_named, num_samples=32, seed=0)
    close(res.log_px, lg.exact(x))
    close(pv.infer.elbo(lg.model_named, x, guide=lg.guide_named, seed=0), lg.exact(x))
    forced = pv.infer.log_likelihood(
        lg.model_named, x, guide=lg.guide_named, num_samples=8, seed=0, data_plate="batch"
    )
    close(forced.log_px, lg.exact(x))


def test_unknown_data_plate_is_a_value_error(lg, x):
    with pytest.raises(ValueError, match="nope"):
        pv.infer.log_likelihood(
            lg.model_named, x, guide=lg.guide_named, num_samples=4, data_plate="nope"
        )


# ---------------------------------------------------------------------------
# 3. nested plates
# ---------------------------------------------------------------------------


def test_nested_plates_sum_pixels(lg, x):
    exact = lg.exact(x)
    assert (exact > -30).all()  # the −12.8-type value, not N×D broadcast (−270-type)
    res = pv.infer.log_likelihood(lg.model_nested, x, guide=lg.guide_nested, num_samples=16, seed=0)
    assert res.log_px.shape == (x.shape[0],)
    close(res.log_px, exact)
    close(pv.infer.elbo(lg.model_nested, x, guide=lg.guide_nested, num_particles=2, seed=0), exact)


def test_nested_plate_bernoulli_vae(digits):
    vae = pp.NestedBernoulliVAE()
    xb = torch.as_tensor(digits.x_train[:6])
    nested = pv.infer.log_likelihood(vae.model, xb, guide=vae.guide, num_samples=500, seed=0)
    flat = pv.infer.log_likelihood(
        vae.flat_model, xb, guide=vae.flat_guide, num_samples=500, seed=1
    )
    assert nested.log_px.shape == (6,)
    assert (nested.log_px <= 0).all()
    # same estimator of the same quantity (different draws): agree to Monte Carlo error
    se = (1.0 / nested.ess + 1.0 / flat.ess).sqrt()
    assert ((nested.log_px - flat.log_px).abs() < 5 * se + 0.05).all()
    e_nested = pv.infer.elbo(vae.model, xb, guide=vae.guide, num_particles=200, seed=0)
    assert (e_nested <= nested.log_px + 0.05).all()


# ---------------------------------------------------------------------------
# 4-6. masks and scales
# ---------------------------------------------------------------------------


def test_poutine_mask_drops_pixels(lg, x):
    m = pixel_mask()
    exact = lg.exact(x, m)
    assert not torch.allclose(exact, lg.exact(x))
    res = pv.infer.log_likelihood(
        lg.model_nested, x, guide=lg.guide_nested, num_samples=16, seed=0, mask=m
    )
    close(res.log_px, exact)
    close(pv.infer.elbo(lg.model_nested, x, guide=lg.guide_nested, seed=0, mask=m), exact)


def test_distribution_mask_drops_pixels(lg, x):
    m = pixel_mask()
    res = pv.infer.log_likelihood(
        lg.model_dmask, x, guide=lg.guide_dmask, num_samples=16, seed=0, mask=m
    )
    close(res.log_px, lg.exact(x, m))
    close(pv.infer.elbo(lg.model_dmask, x, guide=lg.guide_dmask, seed=0, mask=m), lg.exact(x, m))


@pytest.mark.parametrize("s", [0.4, 2.0])
def test_poutine_scale_tempers_the_likelihood(lg, x, s):
    exact = lg.exact_scaled(x, s)
    res = pv.infer.log_likelihood(
        lg.model_scaled, x, guide=lg.guide_tempered, num_samples=16, seed=0, s=s
    )
    close(res.log_px, exact)
    close(pv.infer.elbo(lg.model_scaled, x, guide=lg.guide_tempered, seed=0, s=s), exact)


def test_poutine_scale_elbo_with_untempered_guide(lg, x):
    """E_q[s log p(x|z) + log p(z) − log q(z)], q = N(μ, Σ) the s=1 posterior, in closed form."""
    s = 0.5
    mu, cov = pp.gauss_posterior(x, lg.w, lg.b, lg.sigma)
    w, b, var = lg.w.double(), lg.b.double(), lg.sigma**2
    d, lat = w.shape
    resid = x.double() - mu @ w.T - b
    tr_wsw = torch.einsum("dl,nlm,dm->n", w, cov, w)
    e_lik = -0.5 * d * math.log(2 * math.pi * var) - (resid.pow(2).sum(1) + tr_wsw) / (2 * var)
    tr = cov.diagonal(dim1=-2, dim2=-1).sum(-1)
    e_prior = -0.5 * lat * math.log(2 * math.pi) - 0.5 * (mu.pow(2).sum(1) + tr)
    entropy = 0.5 * torch.logdet(2 * math.pi * math.e * cov)
    exact = s * e_lik + e_prior + entropy

    def guide(x, s):
        return lg.guide1(x)

    est = pv.infer.elbo(lg.model_scaled, x, guide=guide, num_particles=4000, seed=0, s=s)
    close(est, exact, atol=0.05)


# ---------------------------------------------------------------------------
# 7-9. plates with subsampling, globals
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 3])
def test_subsampled_plate_is_evaluated_whole(lg, x, size):
    res = pv.infer.log_likelihood(
        lg.model_sub, x, guide=lg.guide_sub, num_samples=8, seed=0, size=size
    )
    assert res.log_px.shape == (x.shape[0],)
    close(res.log_px, lg.exact(x))
    close(pv.infer.elbo(lg.model_sub, x, guide=lg.guide_sub, seed=0, size=size), lg.exact(x))


def test_global_latent_is_a_value_error_naming_the_site(lg, x):
    with pytest.raises(ValueError, match="shared_mean"):
        pv.infer.log_likelihood(lg.model_global, x, guide=lg.guide_global, num_samples=8)
    with pytest.raises(ValueError, match="shared_mean"):
        pv.infer.elbo(lg.model_global, x, guide=lg.guide_global)


def test_param_globals_gmm_is_the_exact_mixture():
    xg = pp.gmm_sample()
    exact = pp.gmm_exact(xg, pp.GMM_LOCS, pp.GMM_WEIGHTS, pp.GMM_SCALE)
    res = pv.infer.log_likelihood(
        pp.gmm_param_model, xg, guide=pp.gmm_param_guide, num_samples=4, seed=0
    )
    close(res.log_px, exact)
    close(pv.infer.elbo(pp.gmm_param_model, xg, guide=pp.gmm_param_guide, seed=0), exact)


def test_autodelta_globals_are_conditioned_on():
    xg = pp.gmm_sample()
    guide = AutoDelta(
        poutine.block(pp.gmm_global_model, expose=["weights", "scale", "locs"]),
        init_loc_fn=pp.gmm_init,
    )
    guide(xg)  # create its parameters, as SVI's first step does
    point = {k: v.detach() for k, v in guide.median(xg).items()}
    exact = pp.gmm_exact(xg, point["locs"], point["weights"], point["scale"])
    close(exact, pp.gmm_exact(xg, pp.GMM_LOCS, pp.GMM_WEIGHTS, pp.GMM_SCALE), atol=1e-4)
    # Pyro's TraceEnum_ELBO adds log p(globals) once (Delta guide: log q = 0)
    model = pp.gmm_global_model
    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(model, guide, xg)
    tr = poutine.trace(poutine.condition(model, data=point)).get_trace(xg)
    log_p_globals = sum(tr.nodes[s]["fn"].log_prob(tr.nodes[s]["value"]).sum() for s in point)
    close(-loss - log_p_globals, exact.sum(), atol=1e-3)
    res = pv.infer.log_likelihood(model, xg, guide=guide, num_samples=4, seed=0)
    close(res.log_px, exact)
    close(pv.infer.elbo(model, xg, guide=guide, seed=0), exact)


# ---------------------------------------------------------------------------
# 10-11. enumeration
# ---------------------------------------------------------------------------


def test_model_enumeration_with_nested_plates():
    bm = pp.BernoulliMixture()
    xb = bm.sample()
    exact = bm.exact(xb)
    assert (exact > -6 * bm.d).all() and (exact < 0).all()
    res = pv.infer.log_likelihood(bm.model, xb, guide=bm.guide, num_samples=4, seed=0)
    close(res.log_px, exact)
    elbo = pv.infer.elbo(bm.model, xb, guide=bm.guide, seed=0)
    close(elbo, exact)
    loss = TraceEnum_ELBO(max_plate_nesting=2).loss(bm.model, bm.guide, xb)
    close(elbo.sum(), -loss, atol=1e-3)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_model_enumeration_with_mask_and_scale_follows_traceenum(masked, scale):
    """Pyro's TraceEnum_ELBO applies a dependent site's mask inside the log-sum-exp over the
    enumerated value and one common scale outside it (pyro/infer/traceenum_elbo.py,
    _compute_model_factors): log-weight = s · logsumexp_k[log π_k + Σ_unmasked log p(x_d|k)]."""
    bm = pp.BernoulliMixture()
    xb = bm.sample()
    mask = pixel_mask(xb.shape[0], bm.d) if masked else None
    exact = bm.exact_masked_scaled(xb, mask, scale)
    loss = TraceEnum_ELBO(max_plate_nesting=2).loss(
        bm.model_masked_scaled, lambda x, **kw: None, xb, mask=mask, scale=scale
    )
    close(-loss, exact.sum(), atol=1e-3)  # the reference agrees with Pyro
    res = pv.infer.log_likelihood(
        bm.model_masked_scaled, xb, guide=bm.guide, num_samples=4, seed=0, mask=mask, scale=scale
    )
    close(res.log_px, exact)
    close(
        pv.infer.elbo(bm.model_masked_scaled, xb, guide=bm.guide, seed=0, mask=mask, scale=scale),
        exact,
    )


def test_guide_enumeration_is_exact_for_any_q():
    ge = pp.GuideEnumMixture()
    xe = ge.sample()
    res = pv.infer.log_likelihood(ge.model, xe, guide=ge.guide, num_samples=8, seed=0)
    close(res.log_px, ge.exact(xe), atol=5e-4)
    elbo = pv.infer.elbo(ge.model, xe, guide=ge.guide, num_particles=2, seed=0)
    close(elbo, ge.exact_elbo(xe), atol=5e-4)
    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(ge.model, ge.guide, xe)
    close(elbo.sum(), -loss, atol=1e-3)


# ---------------------------------------------------------------------------
# 12-14. several latents, non-reparameterizable latents, one-hot labels
# ---------------------------------------------------------------------------


def test_two_latent_sites():
    h = pp.Hierarchical()
    xh = h.sample()
    res = pv.infer.log_likelihood(h.model, xh, guide=h.guide, num_samples=16, seed=0)
    close(res.log_px, h.exact(xh), atol=5e-4)
    close(pv.infer.elbo(h.model, xh, guide=h.guide, seed=0), h.exact(xh), atol=5e-4)


def test_non_reparameterizable_latent_converges():
    bl = pp.BinaryLatent()
    xb = bl.sample()
    k = 4000
    res = pv.infer.log_likelihood(bl.model, xb, guide=bl.guide, num_samples=k, seed=0)
    se = ((1.0 / res.ess - 1.0 / k).clamp(min=0)).sqrt()  # delta-method s.e. of log p̂
    assert ((res.log_px - bl.exact(xb)).abs() < 5 * se + 1e-3).all()
    assert (se < 0.1).all()
    elbo = pv.infer.elbo(bl.model, xb, guide=bl.guide, num_particles=k, seed=0)
    close(elbo, bl.exact_elbo(xb), atol=0.15)


def test_one_hot_labels_m2_style():
    m2 = pp.LinearM2()
    x2, y2 = m2.sample()
    res = pv.infer.log_likelihood(m2.model, x2, y2, guide=m2.guide, num_samples=8, seed=0)
    close(res.log_px, m2.exact_xy(x2, y2))
    close(pv.infer.elbo(m2.model, x2, y2, guide=m2.guide, seed=0), m2.exact_xy(x2, y2))
    # y=None: the guide's OneHotCategorical y is enumerated -> exact log p(x)
    res = pv.infer.log_likelihood(m2.model, x2, guide=m2.guide, num_samples=8, seed=0)
    close(res.log_px, m2.exact(x2), atol=5e-4)
    # ... and the ELBO is Σ_c q(c|x)[log p(x, c) − log q(c|x)] (z-part exact)
    q = torch.softmax(x2 @ m2.a, -1).double()
    elbo = pv.infer.elbo(m2.model, x2, guide=m2.guide, num_particles=2, seed=0)
    close(elbo, (q * (m2.log_joint_y(x2) - q.log())).sum(1), atol=5e-4)


# ---------------------------------------------------------------------------
# 15. code that does not broadcast over a particle dimension
# ---------------------------------------------------------------------------


def _fallback_cases():
    lg = pp.LinearGaussian()
    x = lg.sample()
    h = pp.Hierarchical()
    xh = h.sample()
    m2 = pp.LinearM2()
    x2, y2 = m2.sample()
    return {
        "model_mm": (lg.model_mm, lg.guide_cat, (x,), lg.exact(x)),
        "guide_mm": (h.model, h.guide_mm, (xh,), h.exact(xh)),
        "model_cat": (m2.model_cat, m2.guide, (x2, y2), m2.exact_xy(x2, y2)),
    }


@pytest.mark.parametrize("case", list(_fallback_cases()))
def test_non_broadcasting_code_falls_back_with_one_warning(case):
    model, guide, args, exact = _fallback_cases()[case]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = pv.infer.log_likelihood(model, *args, guide=guide, num_samples=5, seed=0)
    user = [w for w in rec if issubclass(w.category, UserWarning)]
    assert len(user) == 1, [str(w.message) for w in user]
    close(res.log_px, exact, atol=5e-4)
    with pytest.warns(UserWarning):
        elbo = pv.infer.elbo(model, *args, guide=guide, num_particles=2, seed=0)
    close(elbo, exact, atol=5e-4)
    forced = pv.infer.log_likelihood(
        model, *args, guide=guide, num_samples=3, seed=0, vectorize=False
    )
    close(forced.log_px, exact, atol=5e-4)
    with pytest.raises(ValueError):
        pv.infer.log_likelihood(model, *args, guide=guide, num_samples=3, vectorize=True)


def test_vectorize_false_on_broadcasting_code_is_silent_and_exact(lg, x):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        res = pv.infer.log_likelihood(
            lg.model1, x, guide=lg.guide1, num_samples=4, seed=0, vectorize=False
        )
        vec = pv.infer.log_likelihood(
            lg.model1, x, guide=lg.guide1, num_samples=4, seed=0, vectorize=True
        )
    close(res.log_px, lg.exact(x))
    close(vec.log_px, lg.exact(x))


# ---------------------------------------------------------------------------
# 16. keyword arguments for one side
# ---------------------------------------------------------------------------


def test_model_and_guide_kwargs_go_to_one_side(lg, x):
    exact = lg.exact(x)
    kw = {"model_kwargs": {"noise": lg.sigma}, "guide_kwargs": {"shift": 0.0, "temperature": 1.0}}
    res = pv.infer.log_likelihood(lg.model_kw, x, guide=lg.guide_kw, num_samples=8, seed=0, **kw)
    close(res.log_px, exact)
    close(pv.infer.elbo(lg.model_kw, x, guide=lg.guide_kw, seed=0, **kw), exact)
    # plain **kwargs go to whichever side accepts them
    res = pv.infer.log_likelihood(
        lg.model_kw,
        x,
        guide=lg.guide_kw,
        num_samples=8,
        seed=0,
        noise=lg.sigma,
        shift=0.0,
        temperature=1.0,
    )
    close(res.log_px, exact)
    # without them the guide is shifted and the weights are no longer constant
    off = pv.infer.log_likelihood(
        lg.model_kw, x, guide=lg.guide_kw, num_samples=8, seed=0, model_kwargs={"noise": lg.sigma}
    )
    assert not torch.allclose(off.log_px.double(), exact, atol=1e-2)


def test_keyword_no_side_accepts_is_a_value_error(lg, x):
    with pytest.raises(ValueError, match="bogus"):
        pv.infer.log_likelihood(lg.model1, x, guide=lg.guide1, num_samples=4, bogus=1.0)
    with pytest.raises(ValueError, match="bogus"):
        pv.infer.elbo(lg.model1, x, guide=lg.guide1, bogus=1.0)


# ---------------------------------------------------------------------------
# 17. PSIS k̂
# ---------------------------------------------------------------------------


def _threshold(k):
    return min(1 - 1 / math.log10(k), 0.7)


@pytest.mark.parametrize("k", [16, 20])
def test_khat_perfect_proposal_small_k_cannot_tell(lg, x, k):
    """ArviZ's tail length is ceil(min(0.2 K, 3 √K)): ≤ 4 draws (K ≤ 20) cannot be fitted."""
    res = pv.infer.log_likelihood(lg.model1, x, guide=lg.guide1, num_samples=k, seed=0)
    assert torch.isnan(res.khat).all()
    assert list(res.diagnosis) == ["cannot tell"] * x.shape[0]
    assert res.khat_threshold == pytest.approx(_threshold(k))
    assert len(res.to_frame()) == x.shape[0]


@pytest.mark.parametrize("k", [21, 100, 1000])
def test_khat_perfect_proposal_is_ok(lg, x, k):
    res = pv.infer.log_likelihood(lg.model1, x, guide=lg.guide1, num_samples=k, seed=0)
    assert res.khat_threshold == pytest.approx(_threshold(k))
    assert not torch.isnan(res.khat).any()
    assert (res.khat <= res.khat_threshold).all()
    assert bool(res.reliable.all())
    assert list(res.diagnosis) == ["ok"] * x.shape[0]


def test_khat_flags_prior_proposal_on_peaked_posterior():
    sharp = pp.LinearGaussian(d=8, l=2, sigma=0.05)
    xs = sharp.sample(5)
    res = pv.infer.log_likelihood(
        sharp.model1, xs, guide=sharp.guide1, num_samples=200, seed=0, proposal="prior"
    )
    assert (res.khat > res.khat_threshold).all()
    assert not bool(res.reliable.any())
    assert list(res.diagnosis) == ["unreliable"] * 5


def test_khat_matches_arviz_on_generic_weights(lg, x):
    """Record the guide's draws, rebuild log w = log p(x, z) − log q(z|x) by hand, and
    compare k̂ with ``az.psislw(log_w.T, reff=1.0)``."""
    az = pytest.importorskip("arviz")
    k = 300
    seen = []
    mean, cov = lg.post(x)
    cov = cov * 2.0**2  # an over-dispersed (generic) proposal

    def guide(x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.MultivariateNormal(mean + 0.3, covariance_matrix=cov))
        seen.append(z.detach().clone())

    res = pv.infer.log_likelihood(lg.model1, x, guide=guide, num_samples=k, seed=0, chunk_size=k)
    w, b = lg.w.double(), lg.b.double()

    def log_w(z):  # [K, N, L] -> [K, N]
        z = z.double()
        lp = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        lp = lp + torch.distributions.Normal(z @ w.T + b, lg.sigma).log_prob(x.double()).sum(-1)
        q = torch.distributions.MultivariateNormal((mean + 0.3).double(), cov.double())
        return lp - q.log_prob(z)

    # the draws of the particle passes (possibly several chunks), in order; the last K
    draws = [z for z in seen if z.dim() == 3 and z.shape[1:] == (x.shape[0], lg.l)]
    candidates = [log_w(torch.cat(draws, 0)[-k:])] if draws else []
    candidates += [log_w(z) for z in draws if z.shape[0] == k]
    matching = [
        lw
        for lw in candidates
        if torch.allclose(torch.logsumexp(lw, 0) - math.log(k), res.log_px.double(), atol=1e-4)
    ]
    assert matching, "could not recover the importance draws from the guide calls"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, khat = az.psislw(matching[-1].T.numpy(), reff=1.0)
    np.testing.assert_allclose(res.khat.double().numpy(), np.asarray(khat), atol=1e-4)
    ref = torch.as_tensor(np.asarray(khat))
    assert torch.equal(res.reliable, ref <= _threshold(k))


def test_isresult_frame_and_summary(lg, x):
    res = pv.infer.log_likelihood(lg.model1, x, guide=lg.guide1, num_samples=32, seed=0)
    frame = res.to_frame()
    assert len(frame) == x.shape[0] and {"log_px", "ess", "khat"} <= set(frame.columns)
    assert res.summary()["log_px"] == pytest.approx(float(lg.exact(x).mean()), abs=1e-3)
    assert res.reliable.dtype == torch.bool and res.reliable.shape == (x.shape[0],)


def test_elbo_is_trace_elbo_per_datapoint_for_a_deterministic_guide(lg, x):
    """An empty-guide model has no latent: ELBO = log p(x) exactly = −Trace_ELBO loss."""

    def model(x):
        with pyro.plate("rows", x.shape[0]):
            pyro.sample("x", dist.Normal(lg.b, 1.0).to_event(1), obs=x)

    def guide(x):
        pass

    loss = Trace_ELBO().loss(model, guide, x)
    elbo = pv.infer.elbo(model, x, guide=guide, seed=0)
    close(elbo.sum(), -loss, atol=1e-3)
    close(elbo, torch.distributions.Normal(lg.b, 1.0).log_prob(x).sum(1))

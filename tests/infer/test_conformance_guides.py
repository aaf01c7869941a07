"""Conformance, second round: guides and model shapes as Pyro users write them.

Pairs from ``pyro_pairs.py``; every reference is exact (closed form or Pyro's own
estimator on a pair whose weights are constant) or an asserted refusal message:

- ``pyro.markov`` linear-Gaussian state-space model with a guide — the Kalman-filter
  log p(x) (a Gaussian marginal in closed form); with the exact posterior chain as guide
  every weight equals it (and Pyro's ``Trace_ELBO`` gives it too); with a mean-field guide
  the ELBO's closed form E_q[log p(x, z)] + H[q], and IS converging to log p(x);
- ``pyro.markov`` discrete HMM enumerated in the model — the forward algorithm;
- point-mass guides on local latents (``AutoDelta``, a hand-written ``Delta`` encoder) —
  refused by IS, the ELBO and the aggregated posterior, naming the site; the prior
  proposal converges to the pPCA value; ``project`` returns the point;
- ``AutoNormal`` / ``AutoGuideList`` on local latents — IS converges to log p(x) within
  4 s.e. (pPCA, Gamma–Poisson and Beta–Bernoulli with their log-Jacobians, the Kalman
  value); the ELBO of the pPCA one is log p(x) − KL(q ‖ p(z|x)) in closed form;
  ``AutoDiagonalNormal`` / ``AutoMultivariateNormal`` and global AutoNormal sites refused;
- ``pyro.deterministic``, a sequential ``for i in pyro.plate``, a guide plate with another
  name — exact, or refused with their own cause;
- ``sample_aggregate_posterior(..., y=y)``, ``elbo_decomposition`` and traversals on a
  pair — labels reach guide and decoder; the decomposition equals an encode/decode twin.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceEnum_ELBO
from pyro.infer.autoguide import (
    AutoDelta,
    AutoDiagonalNormal,
    AutoGuideList,
    AutoMultivariateNormal,
    AutoNormal,
)

import ppl_vae as pv

_spec = importlib.util.spec_from_file_location(
    "pyro_pairs", Path(__file__).with_name("pyro_pairs.py")
)
pp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pp)
close = pp.close


def close_is(res, exact, se=4):
    """IS estimate within ``se`` standard errors √((K/ESS − 1)/K) of log p(x) (delta method)."""
    k = res.num_samples
    tol = se * ((k / res.ess.double() - 1).clamp(min=0) / k).sqrt() + 1e-4
    err = (res.log_px.double() - exact.double()).abs()
    assert (err <= tol).all(), (err, tol)


# ---------------------------------------------------------------------------
# pyro.markov
# ---------------------------------------------------------------------------


@pytest.fixture
def ssm():
    return pp.StateSpace()


def test_reference_state_space_exact_guide_gives_the_kalman_value(ssm):
    xs = ssm.sample()
    close(-Trace_ELBO().loss(ssm.model, ssm.guide_exact, xs), ssm.exact(xs).sum(), atol=1e-3)


@pytest.mark.parametrize("vectorize", [None, False])
def test_state_space_with_exact_guide_is_the_kalman_value(ssm, vectorize):
    xs = ssm.sample()
    exact = ssm.exact(xs)
    res = pv.infer.log_likelihood(ssm.model, xs, guide=ssm.guide_exact, num_samples=3, seed=0,
                                  vectorize=vectorize)
    close(res.log_px, exact)
    close(pv.infer.elbo(ssm.model, xs, guide=ssm.guide_exact, seed=0, vectorize=vectorize), exact)


def test_state_space_mean_field_elbo_and_is_converge(ssm):
    xs = ssm.sample()
    elbo = pv.infer.elbo(ssm.model, xs, guide=ssm.guide_mean_field, num_particles=20000, seed=0)
    close(elbo, ssm.elbo_mean_field(xs), atol=0.075)  # the weights' s.d. is ≈ 2.5: 4 s.e.
    assert (ssm.elbo_mean_field(xs) < ssm.exact(xs)).all()
    res = pv.infer.log_likelihood(ssm.model, xs, guide=ssm.guide_mean_field, num_samples=20000,
                                  seed=0)
    close_is(res, ssm.exact(xs))


def test_state_space_elbo_is_pyros_trace_elbo_with_a_shared_seed(ssm):
    # both draw the K particles as a plate left of the data plate, site by site, from one
    # seeded stream, so they evaluate the same draws: equal up to float32 summation
    xs = ssm.sample()
    pyro.set_rng_seed(0)
    ref = Trace_ELBO(num_particles=2000, vectorize_particles=True, max_plate_nesting=1)
    expected = -ref.loss(ssm.model, ssm.guide_mean_field, xs)
    ours = pv.infer.elbo(ssm.model, xs, guide=ssm.guide_mean_field, num_particles=2000, seed=0)
    close(ours.sum(), expected, atol=1e-3)


def test_state_space_with_autonormal_converges_to_the_kalman_value(ssm):
    xs = ssm.sample()
    mean, _ = ssm.posterior(xs)
    pyro.clear_param_store()
    guide = AutoNormal(ssm.model, init_scale=0.6,
                       init_loc_fn=lambda site: mean[:, int(site["name"][6:])].float())
    guide(xs)
    res = pv.infer.log_likelihood(ssm.model, xs, guide=guide, num_samples=20000, seed=0)
    close_is(res, ssm.exact(xs))


def test_markov_hmm_enumerated_is_the_forward_algorithm():
    hmm = pp.MarkovHMM()
    xs = hmm.sample()
    exact = hmm.exact(xs)
    close(-TraceEnum_ELBO(max_plate_nesting=1).loss(hmm.model, hmm.guide, xs), exact.sum(),
          atol=1e-3)
    close(pv.infer.log_likelihood(hmm.model, xs, guide=hmm.guide, num_samples=2).log_px, exact)
    close(pv.infer.elbo(hmm.model, xs, guide=hmm.guide), exact)


# ---------------------------------------------------------------------------
# point-mass guides on local latents: refused (IS and the ELBO have no value)
# ---------------------------------------------------------------------------


@pytest.fixture
def lg():
    return pp.LinearGaussian()


def _autodelta(lg, x):
    pyro.clear_param_store()
    mean, _ = lg.post(x)
    guide = AutoDelta(lg.model1, init_loc_fn=lambda site: mean)
    guide(x)
    return guide


def delta_encoder(lg):
    """A hand-written encoder returning a point: Delta(mean).to_event(1), masked."""
    def guide(x):
        mean, _ = lg.post(x)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Delta(mean).to_event(1).mask(True))
    return guide


def test_point_mass_guides_are_refused_naming_the_site(lg):
    x = lg.sample()
    for guide in (_autodelta(lg, x), delta_encoder(lg)):
        with pytest.raises(ValueError, match="guide site 'z' is a point mass .*AutoNormal"):
            pv.infer.log_likelihood(lg.model1, x, guide=guide, num_samples=4)
        with pytest.raises(ValueError, match="guide site 'z' is a point mass .*AutoNormal"):
            pv.infer.elbo(lg.model1, x, guide=guide)
        with pytest.raises(ValueError, match="'z' is a point mass"):
            pv.infer.aggregate_posterior(lg.model1, x, guide=guide)
        with pytest.raises(ValueError, match="'z' is a point mass"):
            pv.infer.sample_aggregate_posterior(lg.model1, x, 3, guide=guide)
        # the mean of a point mass is the point: exact
        close(pv.infer.project(lg.model1, x, guide=guide), lg.post(x)[0], atol=1e-5)


def test_point_mass_guide_with_prior_proposal_converges(lg):
    x = lg.sample()
    guide = _autodelta(lg, x)
    res = pv.infer.log_likelihood(lg.model1, x, guide=guide, proposal="prior",
                                  num_samples=200000, seed=0)
    # the prior proposal's ESS is ≥ 1300 here, so the s.e. of log p̂ is < 0.03
    assert float(res.ess.min()) > 1300
    close(res.log_px, lg.exact(x), atol=0.1)


# ---------------------------------------------------------------------------
# AutoNormal / AutoGuideList on local latents: exact proposal densities
# ---------------------------------------------------------------------------


def test_autonormal_linear_gaussian_is_exact(lg):
    x = lg.sample()
    pyro.clear_param_store()
    mean, cov = lg.post(x)
    guide = AutoNormal(lg.model1, init_loc_fn=lambda site: mean, init_scale=0.4)
    guide(x)
    res = pv.infer.log_likelihood(lg.model1, x, guide=guide, num_samples=20000, seed=0)
    close_is(res, lg.exact(x))
    # the ELBO of q = N(μ, 0.4² I) in closed form: log p(x) − KL(q ‖ p(z|x))
    q = torch.distributions.MultivariateNormal(mean.double(), 0.16 * torch.eye(lg.l).double())
    post = torch.distributions.MultivariateNormal(mean.double(), cov.double())
    exact_elbo = lg.exact(x) - torch.distributions.kl_divergence(q, post)
    close(pv.infer.elbo(lg.model1, x, guide=guide, num_particles=20000, seed=0), exact_elbo,
          atol=0.02)
    close(pv.infer.project(lg.model1, x, guide=guide), mean, atol=1e-5)
    agg = pv.infer.aggregate_posterior(lg.model1, x, guide=guide)
    close(agg.component_distribution.mean, mean, atol=1e-5)


def _constrained_autonormal(pair):
    x = pair.sample()
    pyro.clear_param_store()
    guide = AutoNormal(pair.model, init_loc_fn=lambda site: pair.posterior_mean(x),
                       init_scale=0.8)
    guide(x)
    return x, guide


@pytest.mark.parametrize("pair", [pp.GammaPoisson(), pp.BetaBernoulli()],
                         ids=["gamma-poisson", "beta-bernoulli"])
def test_autonormal_constrained_latent_converges_with_its_jacobian(pair):
    # q(z) is the Normal density of u = biject_to⁻¹(z) times |du/dz| (the Delta's log_density):
    # without that Jacobian every row would be off by E_q[log|du/dz|]
    x, guide = _constrained_autonormal(pair)
    res = pv.infer.log_likelihood(pair.model, x, guide=guide, num_samples=20000, seed=0)
    close_is(res, pair.exact(x))


def test_autonormal_posterior_of_the_latent_tools_is_the_log_normal():
    gp = pp.GammaPoisson()
    x, guide = _constrained_autonormal(gp)
    q = pv.infer.aggregate_posterior(gp.model, x, guide=guide).component_distribution
    rate = torch.linspace(0.5, 3.0, 6)[:, None].expand(6, x.shape[0])
    loc = gp.posterior_mean(x).log()
    close(q.log_prob(rate), dist.Normal(loc, 0.8).log_prob(rate.log()) - rate.log(), atol=1e-5)


def test_autoguidelist_local_autonormal_with_global_autodelta(lg):
    def model(x):
        shift = pyro.sample("shift", dist.Normal(torch.zeros(lg.d), 10.0).to_event(1))
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(lg.l), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z @ lg.w.T + shift, lg.sigma).to_event(1), obs=x)

    x = lg.sample()
    pyro.clear_param_store()
    mean, _ = lg.post(x)
    guide = AutoGuideList(model)
    guide.append(AutoDelta(poutine.block(model, expose=["shift"]),
                           init_loc_fn=lambda site: lg.b + 0.3))
    guide.append(AutoNormal(poutine.block(model, expose=["z"]),
                            init_loc_fn=lambda site: mean, init_scale=0.4))
    guide(x)
    exact = pp.gauss_marginal(x, lg.w, lg.b + 0.3, lg.sigma)
    res = pv.infer.log_likelihood(model, x, guide=guide, num_samples=20000, seed=0)
    close_is(res, exact)


@pytest.mark.parametrize("auto", [AutoDiagonalNormal, AutoMultivariateNormal])
def test_joint_autoguides_are_refused_pointing_to_autonormal(lg, auto):
    x = lg.sample()
    pyro.clear_param_store()
    guide = auto(lg.model1)
    guide(x)
    with pytest.raises(ValueError, match="auxiliary draw outside plate 'data' that sets the "
                                         "per-datapoint site 'z'.*AutoNormal"):
        pv.infer.log_likelihood(lg.model1, x, guide=guide, num_samples=4)


def test_autonormal_on_a_global_latent_names_the_model_site(lg):
    x = lg.sample()
    pyro.clear_param_store()
    guide = AutoNormal(lg.model_global)
    guide(x)
    with pytest.raises(ValueError, match="latent site 'shared_mean' lies outside plate 'data'"):
        pv.infer.log_likelihood(lg.model_global, x, guide=guide, num_samples=4)


# ---------------------------------------------------------------------------
# refusals that name their own cause; pyro.deterministic is ignored (log-density 0)
# ---------------------------------------------------------------------------


def test_deterministic_sites_are_ignored_inside_and_outside_the_plate(lg):
    def model(x):
        pyro.deterministic("n_rows", torch.tensor(float(x.shape[0])))
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(lg.l), 1.0).to_event(1))
            loc = pyro.deterministic("loc", z @ lg.w.T + lg.b, event_dim=1)
            pyro.sample("x", dist.Normal(loc, lg.sigma).to_event(1), obs=x)

    x = lg.sample()
    res = pv.infer.log_likelihood(model, x, guide=lg.guide1, num_samples=3, seed=0)
    close(res.log_px, lg.exact(x))
    close(pv.infer.elbo(model, x, guide=lg.guide1), lg.exact(x))


def test_sequential_data_plate_is_refused_as_such(lg):
    def model(x):
        for i in pyro.plate("data", x.shape[0]):
            z = pyro.sample(f"z_{i}", dist.Normal(torch.zeros(lg.l), 1.0).to_event(1))
            pyro.sample(f"x_{i}", dist.Normal(z @ lg.w.T + lg.b, lg.sigma).to_event(1), obs=x[i])

    x = lg.sample()
    with pytest.raises(ValueError, match=r"\['data'\] are iterated sequentially.*"
                                         r"with pyro.plate\('data', 7\)"):
        pv.infer.log_likelihood(model, x, proposal="prior", num_samples=2)


def test_guide_plate_with_another_name_is_refused_naming_both(lg):
    def guide(x):
        loc, cov = lg.post(x)
        with pyro.plate("batch", x.shape[0]):
            pyro.sample("z", dist.MultivariateNormal(loc, covariance_matrix=cov))

    x = lg.sample()
    with pytest.raises(ValueError, match=r"'z' lies in plate\(s\) \['batch'\] but the model's "
                                         r"datapoint plate is 'data': the plate names differ"):
        pv.infer.log_likelihood(lg.model1, x, guide=guide, num_samples=2)


# ---------------------------------------------------------------------------
# labels reach the guide and the decoder of sample_aggregate_posterior
# ---------------------------------------------------------------------------


def test_sample_aggregate_posterior_passes_labels_to_guide_and_decoder():
    m2 = pp.LinearM2()
    x, y1h = m2.sample(9)
    y = y1h.argmax(1)  # class indices, one-hot-encoded inside the user's code
    one_hot = torch.nn.functional.one_hot

    def model(xs, ys):
        with pyro.plate("data", xs.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(pp.L), 1.0).to_event(1))
            loc = z @ m2.w.T + one_hot(ys, m2.c).float() @ m2.u.T + m2.b
            pyro.sample("x", dist.Normal(loc, pp.SIGMA).to_event(1), obs=xs)

    def guide(xs, ys):  # q(z | x, y) nearly a point at the exact posterior mean
        with pyro.plate("data", xs.shape[0]):
            loc = m2.post_mean(xs, one_hot(ys, m2.c).float()).float()
            pyro.sample("z", dist.Normal(loc, 1e-4).to_event(1))

    s = pv.infer.sample_aggregate_posterior(model, x, 40, guide=guide, y=y, seed=0)
    centres = m2.post_mean(x, y1h).float() @ m2.w.T + y1h @ m2.u.T + m2.b  # [9, D]
    # every draw is the decoded (z_i, y_i) of one row i: z and label from the same row
    assert float(torch.cdist(s, centres).min(1).values.max()) < 1e-2
    assert torch.equal(s, pv.infer.sample_aggregate_posterior(model, x, 40, guide=guide, y=y,
                                                              seed=0))


# ---------------------------------------------------------------------------
# elbo_decomposition and traversals on a user's pair (no encode / prior attributes)
# ---------------------------------------------------------------------------


def _diagonal_guide(lg):
    def guide(x):
        mean, cov = lg.post(x)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(mean, cov.diagonal(dim1=-2, dim2=-1).sqrt()).to_event(1))
    return guide


class _Encoded:
    """The same pPCA and q(z|x) as a duck-typed model with encode/decode/prior."""

    def __init__(self, lg, x):
        mean, cov = lg.post(x)
        self.lg, self.loc, self.scale = lg, mean, cov.diagonal(dim1=-2, dim2=-1).sqrt()
        self.prior = self

    def encode(self, x):
        return dist.Normal(self.loc, self.scale).to_event(1)

    def decode(self, z):
        return dist.Normal(z @ self.lg.w.T + self.lg.b, self.lg.sigma).to_event(1)

    def distribution(self):
        return dist.Normal(torch.zeros(self.lg.l), 1.0).to_event(1)

    def factors(self, needed_by):
        return dist.Normal(torch.zeros(self.lg.l), torch.ones(self.lg.l))


def test_elbo_decomposition_of_a_pair_equals_the_encoded_twin(lg):
    x = lg.sample(40)
    pair = pv.metrics.elbo_decomposition(lg.model1, x, guide=_diagonal_guide(lg), num_samples=50,
                                         seed=0)
    twin = pv.metrics.elbo_decomposition(_Encoded(lg, x), x, num_samples=50, seed=0)
    assert pair == pytest.approx(twin, abs=1e-4)
    total = pair["mutual_information"] + pair["total_correlation"] + pair["dimwise_kl"]
    assert total == pytest.approx(pair["kl"], abs=0.05)
    # the ELBO of a diagonal q ≤ the IS value of log p(x)
    assert pair["elbo"] < float(lg.exact(x).mean())


def test_traversals_of_a_pair_decode_through_the_model(lg):
    from ppl_vae.analysis.traversals import traversal_images

    x = lg.sample(20)
    tr = traversal_images(lg.model1, x, guide=_diagonal_guide(lg), index=2, k=2.0, steps=5)
    mean, _ = lg.post(x)
    close(tr.start, mean[2], atol=1e-6)
    for r, d in enumerate(tr.dims):
        code = mean[2].clone()
        code[d] += 2.0
        close(tr.images[r, 4], code @ lg.w.T + lg.b, atol=1e-5)
        close(tr.images[r, 2], mean[2] @ lg.w.T + lg.b, atol=1e-5)
    assert torch.all(tr.kl[:-1] >= tr.kl[1:])


def test_elbo_decomposition_refuses_a_pair_without_a_factorised_prior(lg):
    def model(x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.MultivariateNormal(torch.zeros(lg.l), torch.eye(lg.l)))
            pyro.sample("x", dist.Normal(z @ lg.w.T + lg.b, lg.sigma).to_event(1), obs=x)

    x = lg.sample()
    with pytest.raises(ValueError, match="prior at latent site 'z' that factorises"):
        pv.metrics.elbo_decomposition(model, x, guide=_diagonal_guide(lg))

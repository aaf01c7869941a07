"""pv.fit on users' own Pyro pairs: a plain-Pyro VAE module, an enumerated HMM written as
functions with pyro.param, and an AutoNormal-guided model — exact first losses, training,
validation, and resume equal to the uninterrupted run."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import config_enumerate
from pyro.infer.autoguide import AutoNormal
from torch import nn

import ppl_vae as pv
from ppl_vae.training import batches
from ppl_vae.training.pair import PyroPair


def same_numbers(a, b) -> bool:
    cols = [c for c in a.columns if c != "time"]
    return list(a.columns) == list(b.columns) and a[cols].equals(b[cols])


# -- a linear-Gaussian pair with the exact posterior as guide ---------------------------
D, N = 3, 60


def _linear_data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.8 * torch.randn(N, 1, generator=g) * torch.tensor([1.0, -0.5, 0.3]) \
        + 0.7 * torch.randn(N, D, generator=g)


def linear_model(x):
    w = pyro.param("w", torch.tensor([1.0, -0.5, 0.3]))
    with pyro.plate("rows", x.shape[0]):
        z = pyro.sample("code", dist.Normal(0.0, 1.0))
        pyro.sample("obs", dist.Normal(z.unsqueeze(-1) * w, 0.7).to_event(1), obs=x)


def exact_guide(x):
    w = pyro.param("w", torch.tensor([1.0, -0.5, 0.3]))
    prec = 1.0 + (w @ w) / 0.49
    with pyro.plate("rows", x.shape[0]):
        pyro.sample("code", dist.Normal((x @ w) / 0.49 / prec, prec.rsqrt()))


def linear_log_px(x, w):
    cov = torch.outer(w, w) + 0.49 * torch.eye(D)
    return dist.MultivariateNormal(torch.zeros(D), covariance_matrix=cov).log_prob(x)


def test_first_loss_is_the_exact_minibatch_log_px_scaled_by_n_over_b():
    # With q = p(z|x) every ELBO particle equals log p(x): the first loss (before any
    # update) is −(N/B)·Σ_batch log p(x_i) / N, exactly — checks the plate's N/B scale.
    pyro.clear_param_store()
    x = _linear_data()
    result = pv.fit((linear_model, exact_guide), x, steps=1, batch_size=20, seed=3,
                    progress=False)
    idx = batches.batch_indices(N, 20, 0, 3)
    expected = -linear_log_px(x[idx], torch.tensor([1.0, -0.5, 0.3])).mean()
    assert result.history.loss.iloc[0] == pytest.approx(float(expected), abs=1e-4)


def test_a_param_store_pair_trains_and_its_parameters_move():
    pyro.clear_param_store()
    x = _linear_data()
    before = linear_log_px(x, torch.tensor([1.0, -0.5, 0.3])).mean()
    pv.fit((linear_model, exact_guide), x, steps=300, batch_size=20, lr=0.02, progress=False)
    w = pyro.param("w").detach()
    assert linear_log_px(x, w).mean() > before  # maximum likelihood moves w up the marginal


# -- a plain-Pyro VAE module --------------------------------------------------------------
class PlainVAE(nn.Module):
    """The way Pyro's tutorial writes a VAE: pyro.module in model and guide."""

    def __init__(self, d=64, z=2, h=32):
        super().__init__()
        self.z = z
        self.enc = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, 2 * z))
        self.dec = nn.Sequential(nn.Linear(z, h), nn.ReLU(), nn.Linear(h, d))

    def model(self, x):
        pyro.module("decoder", self.dec)
        with pyro.plate("batch", x.shape[0]):
            z = pyro.sample("latent", dist.Normal(0.0, 1.0).expand([self.z]).to_event(1))
            pyro.sample("pixels", dist.Bernoulli(logits=self.dec(z)).to_event(1), obs=x)

    def guide(self, x):
        pyro.module("encoder", self.enc)
        with pyro.plate("batch", x.shape[0]):
            out = self.enc(x)
            loc, scale = out[:, : self.z], nn.functional.softplus(out[:, self.z:]) + 1e-3
            pyro.sample("latent", dist.Normal(loc, scale).to_event(1))


def test_plain_pyro_vae_trains_validates_and_resumes_bit_for_bit(digits, tmp_path):
    x, x_val = digits.x_train[:512], digits.x_test[:100]
    kw = {"batch_size": 64, "seed": 2, "lr": 3e-3, "x_val": x_val, "eval_every": 10,
          "val_iwae": 5, "progress": False}

    def fresh():
        pyro.clear_param_store()
        torch.manual_seed(0)
        return PlainVAE()

    full = pv.fit(fresh(), x, steps=40, **kw)
    assert isinstance(full.model, PlainVAE)
    h = full.history
    assert h.loss.tail(5).mean() < h.loss.head(5).mean()
    assert h.val_elbo.notna().sum() == 4 and (h.val_iwae.dropna() >= h.val_elbo.dropna() - 0.5).all()
    path = tmp_path / "ck.pt"
    pv.fit(fresh(), x, steps=15, checkpoint=path, checkpoint_every=5, **kw)
    resumed = pv.fit(fresh(), x, steps=40, checkpoint=path, resume=True, **kw)
    assert same_numbers(resumed.history, full.history)
    for p, q in zip(resumed.model.parameters(), full.model.parameters()):
        assert torch.equal(p, q)


def test_plain_pyro_vae_trains_on_the_iwae_bound(digits):
    pyro.clear_param_store()
    torch.manual_seed(0)
    result = pv.fit(PlainVAE(), digits.x_train[:512], steps=30, batch_size=64, lr=3e-3,
                    bound={"kind": "iwae", "num_samples": 4}, progress=False)
    assert result.history.loss.tail(5).mean() < result.history.loss.head(5).mean()


# -- an enumerated HMM written as functions ---------------------------------------------
T, S = 6, 2


@config_enumerate
def hmm_model(x):
    trans = pyro.param("trans", torch.tensor([[0.8, 0.2], [0.3, 0.7]]),
                       constraint=dist.constraints.simplex)
    loc = pyro.param("loc", torch.tensor([-1.0, 1.0]))
    with pyro.plate("sequences", x.shape[0], dim=-1):
        state = 0
        for t in pyro.markov(range(T)):
            probs = trans[state] if t else torch.tensor([0.5, 0.5])
            state = pyro.sample(f"state_{t}", dist.Categorical(probs))
            pyro.sample(f"y_{t}", dist.Normal(loc[state], 1.0), obs=x[:, t])


def hmm_guide(x):
    pass


def hmm_log_px(x, trans, loc):
    """The forward algorithm."""
    emit = dist.Normal(loc, 1.0).log_prob(x.unsqueeze(-1))  # [N, T, S]
    alpha = torch.log(torch.tensor([0.5, 0.5])) + emit[:, 0]
    for t in range(1, T):
        alpha = torch.logsumexp(alpha.unsqueeze(-1) + trans.log(), dim=-2) + emit[:, t]
    return torch.logsumexp(alpha, -1)


def test_enumerated_hmm_first_loss_is_the_forward_algorithm_and_it_trains():
    pyro.clear_param_store()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, T, generator=g) + torch.where(torch.rand(40, 1, generator=g) < 0.5, 1.5, -1.5)
    pair = PyroPair(hmm_model, hmm_guide, x=x)
    assert pair.enumerate and pair.max_plate_nesting == 1 and pair.amortized
    result = pv.fit((hmm_model, hmm_guide), x, steps=60, batch_size=40, lr=0.05, progress=False)
    exact = hmm_log_px(x, torch.tensor([[0.8, 0.2], [0.3, 0.7]]), torch.tensor([-1.0, 1.0]))
    assert result.history.loss.iloc[0] == pytest.approx(float(-exact.mean()), abs=1e-4)
    trained = hmm_log_px(x, pyro.param("trans").detach(), pyro.param("loc").detach())
    assert trained.mean() > exact.mean()


# -- AutoNormal on per-datapoint latents ---------------------------------------------------
def test_autonormal_pair_is_local_full_batch_and_resumes(tmp_path):
    x = _linear_data(1)

    def fresh():
        pyro.clear_param_store()
        return (linear_model, AutoNormal(linear_model))

    model, guide = fresh()
    pair = PyroPair(model, guide, x=x)
    assert not pair.amortized  # its parameters are one per row
    with pytest.raises(ValueError, match=f"batch_size=20 is below the {N} rows"):
        pv.fit(fresh(), x, steps=2, batch_size=20, progress=False)
    with pytest.raises(ValueError, match="cannot score new data"):
        pv.fit(fresh(), x, steps=2, batch_size=N, x_val=x[:5], progress=False)
    kw = {"batch_size": N, "seed": 4, "lr": 0.05, "progress": False}
    full = pv.fit(fresh(), x, steps=30, **kw)
    assert full.history.loss.tail(5).mean() < full.history.loss.head(5).mean()
    path = tmp_path / "ck.pt"
    pv.fit(fresh(), x, steps=12, checkpoint=path, checkpoint_every=4, **kw)
    resumed = pv.fit(fresh(), x, steps=30, checkpoint=path, resume=True, **kw)
    assert same_numbers(resumed.history, full.history)
    assert math.isfinite(resumed.history.loss.iloc[-1])


def test_something_that_is_not_a_pair_is_refused(digits):
    with pytest.raises(ValueError, match="cannot be trained: pass a ppl_vae model"):
        pv.fit(object(), digits.x_train, steps=1, progress=False)


def test_enumerated_hmm_validates_and_resumes_bit_for_bit(tmp_path):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(48, T, generator=g) + torch.where(torch.rand(48, 1, generator=g) < 0.5, 1.5, -1.5)
    kw = {"batch_size": 16, "seed": 3, "lr": 0.05, "x_val": x[:8], "eval_every": 4,
          "progress": False}

    def fresh():
        pyro.clear_param_store()
        return (hmm_model, hmm_guide)

    full = pv.fit(fresh(), x, steps=12, **kw)
    # an empty guide and an enumerated state: val_elbo is the exact validation log p(x)
    trans, loc = pyro.param("trans").detach(), pyro.param("loc").detach()
    last = full.history.val_elbo.dropna().iloc[-1]
    path = tmp_path / "hmm.pt"
    pv.fit(fresh(), x, steps=5, checkpoint=path, checkpoint_every=5, **kw)
    resumed = pv.fit(fresh(), x, steps=12, checkpoint=path, resume=True, **kw)
    assert same_numbers(resumed.history, full.history)
    assert torch.equal(pyro.param("trans").detach(), trans)
    # the model after step 12 is the one validated at step 12
    assert last == pytest.approx(float(hmm_log_px(x[:8], trans, loc).mean()), abs=1e-4)

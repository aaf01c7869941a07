"""FactorVAE's ``factor_tc`` penalty: the discriminator's TC estimate against the closed
form of a Gaussian, the two optimisers of ``pv.fit`` (each on its own parameters),
checkpoints, bad keys, and inference utilities that skip the penalty."""

import copy

import pytest
import torch
from pyro import poutine

import ppl_vae as pv
from ppl_vae import checkpoint as ckpt
from ppl_vae.parts import Context
from ppl_vae.parts.factor_tc import FactorTC, permute_dims
from ppl_vae.training import bounds

SMALL = {"decoder": {"hidden": [32]}, "guide": {"hidden": [32]}}
D_SMALL = {"kind": "factor_tc", "discriminator_hidden": [32, 32]}


@pytest.fixture(scope="module")
def x():
    return torch.tensor(pv.data.load("digits", binarize=True).x_train[:256])


def gaussian_tc(cov: torch.Tensor) -> float:
    """TC of N(0, Σ): KL(N(0, Σ) ‖ Π_i N(0, Σ_ii)) = ½ (Σ_i log Σ_ii − log det Σ)."""
    return 0.5 * (torch.log(torch.diagonal(cov)).sum() - torch.logdet(cov)).item()


def train_discriminator_alone(cov, *, steps=800, batch=256, seed=0):
    """The part's own loss and optimiser on fresh samples of N(0, Σ) (no VAE): Adam at
    lr 1e-3, cut to 2e-4 for the last 40 % of the steps; the estimate on 20,000 more."""
    torch.manual_seed(seed)
    part = FactorTC(Context(data_dim=1, latent_dim=cov.shape[0]),
                    discriminator_hidden=[64, 64], discriminator_lr=1e-3)
    opt = part.auxiliary_optimizer()
    chol = torch.linalg.cholesky(cov)
    for i in range(steps):
        if i == int(0.6 * steps):
            for group in opt.param_groups:
                group["lr"] = 2e-4
        loss = part.discriminator_loss(torch.randn(batch, cov.shape[0]) @ chol.T)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return part.tc_estimate(torch.randn(20_000, cov.shape[0]) @ chol.T).item()


# Tolerances: the Monte Carlo error of a mean logit over 20,000 draws is ~0.01 nats;
# the rest is the discriminator's (finite training, a 2 x 64 MLP that underfits the
# log-ratio: the 3-d estimate comes out low). Measured over seeds 0-4 (this test's
# settings): 2-d errors <= 0.024, 3-d <= 0.12 (all below), independent <= 0.003;
# each tolerance is about twice the worst of them.
@pytest.mark.parametrize("cov, tc, tol", [
    (torch.tensor([[1.0, 0.8], [0.8, 1.0]]), 0.5108, 0.06),        # -½ log(1 − 0.8²)
    (torch.full((3, 3), 0.8) + 0.2 * torch.eye(3), 1.1317, 0.25),  # -½ log(1 − 3·0.8² + 2·0.8³)
    (torch.diag(torch.tensor([1.0, 4.0, 0.25])), 0.0, 0.01),
], ids=["2d-rho0.8", "3d-rho0.8", "independent"])
def test_tc_estimate_converges_to_the_gaussian_closed_form(cov, tc, tol):
    assert gaussian_tc(cov) == pytest.approx(tc, abs=1e-4)
    assert train_discriminator_alone(cov) == pytest.approx(tc, abs=tol)


def test_permute_dims_keeps_each_marginal_and_breaks_the_rows():
    z = torch.arange(200.0).reshape(100, 2)
    zp = permute_dims(z, torch.Generator().manual_seed(0))
    for j in range(2):
        assert torch.equal(zp[:, j].sort().values, z[:, j])
    assert (zp[:, 1] - zp[:, 0]).ne(1.0).float().mean() > 0.9  # rows no longer paired


def test_the_factor_site_is_gamma_times_the_logit_and_moves_only_the_vae():
    model = pv.build("factor_vae", latent_dim=3, **SMALL,
                     penalty=[{**D_SMALL, "weight": 6.0}])
    part = model.penalties[0]
    xb = torch.bernoulli(torch.full((16, 64), 0.5))
    trace = poutine.trace(model.model).get_trace(xb)
    site = trace.nodes["penalty_factor_tc"]
    z = trace.nodes["z"]["value"]
    expected = -6.0 * part.discriminator(z).squeeze(-1)
    assert torch.allclose(site["fn"].log_prob(site["value"]), expected, atol=1e-5)
    # the VAE's loss reaches the encoder through z, never the discriminator's parameters
    elbo = bounds.elbo_loss(model, 1).differentiable_loss(model.model, model.guide, xb)
    elbo.backward()
    assert all(p.grad is None for p in part.discriminator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.q.parameters())


def test_the_auxiliary_step_moves_only_the_discriminator():
    model = pv.build("factor_vae", latent_dim=3, **SMALL, penalty=[D_SMALL])
    part = model.penalties[0]
    vae = copy.deepcopy({k: v for k, v in model.state_dict().items() if "discriminator" not in k})
    disc = copy.deepcopy(part.discriminator.state_dict())
    loss = part.auxiliary_step(model, torch.bernoulli(torch.full((32, 64), 0.5)), None,
                               part.auxiliary_optimizer())
    assert torch.isfinite(loss) and not loss.requires_grad
    after = model.state_dict()
    assert all(torch.equal(vae[k], after[k]) for k in vae)
    assert any(not torch.equal(v, part.discriminator.state_dict()[k]) for k, v in disc.items())


def test_a_short_fit_trains_both_and_keeps_them_apart(x):
    model = pv.build("factor_vae", latent_dim=4, **SMALL, penalty=[D_SMALL])
    part = model.penalties[0]
    disc = copy.deepcopy(part.discriminator.state_dict())
    dec = copy.deepcopy(model.decoder.state_dict())
    result = pv.fit(model, x, steps=30, batch_size=32, progress=False, seed=0)
    assert torch.isfinite(torch.tensor(result.history["loss"].to_numpy())).all()
    assert any(not torch.equal(v, part.discriminator.state_dict()[k]) for k, v in disc.items())
    assert any(not torch.equal(v, model.decoder.state_dict()[k]) for k, v in dec.items())
    with torch.no_grad():
        z = model.encode(x).sample()
    assert torch.isfinite(part.tc_estimate(z))


def test_the_model_optimiser_leaves_the_discriminator_to_its_own(x):
    """pv.fit's two optimisers: the model's holds no discriminator parameter; the
    discriminator's is the part's Adam with Kim & Mnih's settings."""
    model = pv.build("factor_vae", latent_dim=4, **SMALL, penalty=[D_SMALL])
    trainer = pv.training.Trainer(model, pv.training.FitConfig(steps=1, progress=False))
    trainer.prepare(x)
    trainer.resume(False)
    disc = {id(p) for p in model.penalties[0].discriminator.parameters()}
    held = {id(p) for g in trainer.opt.param_groups for p in g["params"]}
    assert not disc & held and len(held) + len(disc) == len(list(model.parameters()))
    (opt,) = trainer.aux.optimizers
    assert isinstance(opt, torch.optim.Adam)
    assert (opt.defaults["lr"], opt.defaults["betas"]) == (1e-4, (0.5, 0.9))


def test_a_resumed_run_continues_the_discriminator_optimiser(x, tmp_path):
    path = tmp_path / "f.pt"
    whole = pv.build("factor_vae", latent_dim=4, **SMALL, penalty=[D_SMALL])
    pv.fit(whole, x, steps=12, batch_size=32, progress=False, seed=1)
    part = pv.build("factor_vae", latent_dim=4, **SMALL, penalty=[D_SMALL])
    pv.fit(part, x, steps=6, batch_size=32, progress=False, seed=1, checkpoint=path)
    saved = ckpt.read(path)["training"]["auxiliary"]
    assert len(saved) == 1 and saved[0]["state"]  # Adam's moments of the discriminator
    resumed = pv.build("factor_vae", latent_dim=4, **SMALL, penalty=[D_SMALL])
    pv.fit(resumed, x, steps=12, batch_size=32, progress=False, seed=1, checkpoint=path,
           resume=True)
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k


def test_factor_tc_combines_with_dip_and_trains(x):
    model = pv.build("factor_vae", latent_dim=4, **SMALL,
                     penalty=[D_SMALL, {"kind": "dip_i", "lambda_od": 1.0}])
    trace = poutine.trace(model.model).get_trace(x[:32])
    assert {"penalty_factor_tc", "penalty_dip_i"} <= set(trace.nodes)
    assert len(model.auxiliary_parts) == 1
    result = pv.fit(model, x, steps=10, batch_size=32, progress=False)
    assert torch.isfinite(torch.tensor(result.history["loss"].to_numpy())).all()


def test_the_preset_is_the_spec_it_promises():
    part = pv.build("factor_vae").penalties[0]
    assert (part.part_name, part.weight, part.discriminator_lr) == ("factor_tc", 10.0, 1e-4)
    assert part.discriminator_betas == (0.5, 0.9)
    widths = [m.out_features for m in part.discriminator if isinstance(m, torch.nn.Linear)]
    assert widths == [1000] * 6 + [1]


@pytest.mark.parametrize("keys, words", [
    ({"weight": -1.0}, r"penalty\.weight=-1\.0 is invalid: pass a finite number >= 0"),
    ({"discriminator_hidden": [64, 0]},
     r"penalty\.discriminator_hidden\[1\]=0 is invalid: pass a list of positive integer"),
    ({"discriminator_hidden": 64}, r"penalty\.discriminator_hidden=64 is invalid: pass a list"),
    ({"discriminator_hidden": [1.5]}, r"penalty\.discriminator_hidden\[0\]=1\.5 is invalid"),
    ({"discriminator_hidden": [1 << 20] * 3}, r"penalty\.discriminator_hidden=.*fewer or narrower"),
    ({"discriminator_lr": 0.0}, r"penalty\.discriminator_lr=0\.0 is invalid: pass a finite"),
    ({"discriminator_betas": [0.5, 1.0]},
     r"penalty\.discriminator_betas=\[0\.5, 1\.0\] is invalid: pass Adam's two decay rates"),
    ({"discriminator_activation": "swish"}, r"penalty\.discriminator_activation"),
])
def test_bad_keys_are_refused_naming_key_value_and_fix(keys, words):
    with pytest.raises(ValueError, match=words):
        pv.build("factor_vae", latent_dim=3, penalty=[{**D_SMALL, **keys}])


def test_models_it_cannot_work_with_are_refused():
    with pytest.raises(ValueError, match=r"needs latent_dim >= 2.*latent_dim=1"):
        pv.build("factor_vae", latent_dim=1, penalty=[D_SMALL])
    with pytest.raises(ValueError, match=r"guide\.kind='local'.*set guide\.kind = 'amortized'"):
        pv.build("factor_vae", latent_dim=2, guide={"kind": "local"}, penalty=[D_SMALL])


def test_inference_utilities_skip_the_penalty_site(x):
    model = pv.build("factor_vae", latent_dim=4, **SMALL, penalty=[D_SMALL])
    pv.fit(model, x, steps=10, batch_size=32, progress=False)
    plain = pv.build("vae", latent_dim=4, **SMALL)
    state = {k: v for k, v in model.state_dict().items() if "discriminator" not in k}
    plain.load_state_dict(state)
    a = pv.infer.log_likelihood(model, x[:20], num_samples=8, seed=0).log_px
    b = pv.infer.log_likelihood(plain, x[:20], num_samples=8, seed=0).log_px
    assert torch.isfinite(a).all() and torch.allclose(a, b)


@pytest.mark.parametrize("edit, words", [
    (lambda t: t.__setitem__("auxiliary", {"state": {}}), "not a list of 1 optimizer state"),
    (lambda t: t.__setitem__("auxiliary", []), "not a list of 1 optimizer state"),
    (lambda t: t["auxiliary"][0]["param_groups"][0].__setitem__("params", [0]),
     "holds 1 parameters, the model 6"),
    (lambda t: t["auxiliary"][0]["param_groups"][0].__setitem__("betas", [0.5, 0.9, 0.1]),
     "betas"),
])
def test_an_edited_discriminator_optimiser_state_is_refused(x, tmp_path, edit, words):
    path = tmp_path / "f.pt"
    model = pv.build("factor_vae", latent_dim=4, **SMALL, penalty=[D_SMALL])
    pv.fit(model, x, steps=2, batch_size=32, progress=False, checkpoint=path)
    saved = ckpt.read(path)
    edit(saved["training"])
    torch.save(saved, path)
    with pytest.raises(ValueError, match=rf"training state field 'auxiliary'.*{words}"):
        pv.fit(model, x, steps=4, batch_size=32, progress=False, checkpoint=path, resume=True)


def test_the_discriminator_optimiser_survives_a_change_of_the_model_optimiser(x, tmp_path):
    """resume='override' with another optimizer drops the model optimiser's state, not
    the discriminator's: its settings are in the spec, which a resume may not change."""
    path = tmp_path / "f.pt"
    model = pv.build("factor_vae", latent_dim=4, **SMALL, penalty=[D_SMALL])
    pv.fit(model, x, steps=3, batch_size=32, progress=False, checkpoint=path)
    saved = ckpt.read(path)["training"]["auxiliary"][0]["state"]
    trainer = pv.training.Trainer(model, pv.training.FitConfig(
        steps=3, progress=False, batch_size=32, optimizer="adamw"), checkpoint=path)
    trainer.prepare(x)
    with pytest.warns(UserWarning, match="optimizer"):
        trainer.resume("override")
    assert not trainer.opt.state
    restored = trainer.aux.optimizers[0].state_dict()["state"]
    assert all(torch.equal(saved[i]["exp_avg"], restored[i]["exp_avg"]) for i in saved)

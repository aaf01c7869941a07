"""Computations follow the model's device and dtype; ``device=`` is checked.

No GPU is needed: a float64 model is the stand-in for "every tensor the package
creates follows the model" (a tensor made without ``device=``/``dtype=`` would
come out float32 and fail or mix). The CUDA test runs where CUDA exists.
"""

from __future__ import annotations

import pytest
import torch

import ppl_vae as pv


@pytest.fixture
def vae64(digits):
    model = pv.build("vae", latent_dim=3, decoder={"hidden": [16]}, guide={"hidden": [16]})
    return model.double(), digits.x_test[:12]


def test_float64_model_computes_in_float64(vae64):
    model, x = vae64
    est = pv.infer.log_likelihood(model, x, num_samples=50, seed=0)
    assert est.log_px.dtype == torch.float64 and torch.isfinite(est.log_px).all()
    assert pv.infer.elbo(model, x, num_particles=3, seed=0).dtype == torch.float64
    z = pv.infer.project(model, x, method="map", steps=5)
    assert z.dtype == torch.float64
    out = pv.infer.sample_aggregate_posterior(model, x, 4, seed=0)
    assert out.dtype == torch.float64 and out.shape == (4, 64)
    grid = pv.infer.resynthesize(model, x[:2], torch.ones(3), scales=(0, 1))
    assert grid.dtype == torch.float64


def test_float64_enumerated_gmm():
    data = pv.data.load("gmm_synthetic", n=200, seed=0)
    model = pv.build("gmm", data_dim=data.x_train.shape[1], num_components=3)
    model.initialize(torch.as_tensor(data.x_train), seed=0)
    model = model.double()
    est = pv.infer.log_likelihood(model, data.x_test[:20], num_samples=2, seed=0)
    exact = pv.infer.exact_log_likelihood(model, data.x_test[:20])
    assert est.log_px.dtype == torch.float64
    assert torch.allclose(est.log_px, exact, atol=1e-9)


@pytest.mark.parametrize("device", ["cpu", "auto", torch.device("cpu")])
def test_cpu_device_options(trained_vae, digits, device):
    x = digits.x_test[:10]
    ref = pv.infer.log_likelihood(trained_vae, x, num_samples=20, seed=0)
    res = pv.infer.log_likelihood(trained_vae, x, num_samples=20, seed=0, device=device)
    if not torch.cuda.is_available():
        assert torch.equal(ref.log_px, res.log_px)


@pytest.mark.parametrize("device", ["cuda:99", "tpu", "nonsense", 3.5])
def test_bad_devices_are_value_errors(trained_vae, digits, device):
    if device == "cuda:99" and not torch.cuda.is_available():
        match = "no CUDA device"
    else:
        match = "device="
    with pytest.raises(ValueError, match=match):
        pv.infer.elbo(trained_vae, digits.x_test[:4], device=device)


def _agree_in_distribution(a, b, *, z=5.0):
    """Two IS estimates of log p(x) from independent random streams agree within z s.e.

    By the delta method, Var(log p̂) ≈ Var(w) / (S·E[w]²) = 1/ESS − 1/S per point
    (ESS = (Σw)²/Σw², S samples); the difference of two independent estimates has
    the sum of their variances. z = 5 per point (50 points: a false alarm about 3e-5
    under normality), plus float32 rounding.
    """
    var = lambda r: (1 / r.ess.double().cpu() - 1 / r.num_samples).clamp(min=0)
    se = (var(a) + var(b)).sqrt()
    diff = (a.log_px.double().cpu() - b.log_px.double().cpu()).abs()
    assert (diff <= z * se + 1e-4).all(), (diff / se).max()
    assert se.median() < 0.1  # the tolerance is tight enough to mean something


def test_is_estimates_from_two_streams_agree_within_their_standard_errors(digits):
    model = pv.build("vae", latent_dim=3, decoder={"hidden": [16]}, guide={"hidden": [16]})
    x = digits.x_test[:50]
    a = pv.infer.log_likelihood(model, x, num_samples=2000, seed=0)
    b = pv.infer.log_likelihood(model, x, num_samples=2000, seed=1)
    assert not torch.equal(a.log_px, b.log_px)
    _agree_in_distribution(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_in_distribution(digits):
    model = pv.build("vae", latent_dim=3, decoder={"hidden": [16]}, guide={"hidden": [16]})
    x = digits.x_test[:50]
    cpu = pv.infer.log_likelihood(model, x, num_samples=2000, seed=0)
    gpu = pv.infer.log_likelihood(model, x, num_samples=2000, seed=0, device="cuda")
    assert gpu.log_px.device.type == "cuda" and gpu.khat.device.type == "cuda"
    _agree_in_distribution(gpu, cpu)

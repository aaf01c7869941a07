"""The RD-VAE family: class-marginal consistency, bad input, and digits 0-4 vs 5-9."""

import numpy as np
import pytest
import torch

import ppl_vae as pv
from ppl_vae.analysis import find_subclasses, subclass_figure
from ppl_vae.analysis.ood import METHODS as OOD_METHODS

IN = [0, 1, 2, 3, 4]


@pytest.fixture(scope="module")
def digits():
    full = pv.data.load("digits", binarize=True)
    inside = full.subset(classes=IN, relabel=True)
    return inside, full.x_test[~np.isin(full.y_test, IN)]


@pytest.fixture(scope="module")
def trained(digits):
    # Short training, fixed seed; about 20-40 s on one core.
    torch.set_num_threads(1)
    inside, _ = digits
    model = pv.build("rdvae", seed=0)
    return pv.fit(
        model, inside.x_train, inside.y_train, steps=600, lr=2e-3, seed=0, progress=False
    ).model


def test_class_marginal_log_px_sums_labelled_joint(digits):
    # Same seed -> the same z_k from q(z|x) (it ignores y), so the IS estimate of the
    # class-marginal p(x) equals Σ_c of the IS estimates of p(x, c) exactly:
    # (1/K) Σ_k p(x|z_k) Σ_c π_c N(z_k; μ_c) / q(z_k|x).
    inside, _ = digits
    model = pv.build("rdvae", seed=1)
    x = inside.x_test[:20]
    marginal = pv.infer.log_likelihood(model, x, num_samples=32, seed=5, diagnostics=False)
    joints = torch.stack(
        [
            pv.infer.log_likelihood(
                model, x, torch.full((20,), c), num_samples=32, seed=5, diagnostics=False
            ).log_px
            for c in range(5)
        ]
    )  # [C, N]
    torch.testing.assert_close(torch.logsumexp(joints, 0), marginal.log_px, rtol=1e-5, atol=1e-4)


def test_class_log_prob_normalised_and_sampling(digits):
    inside, _ = digits
    model = pv.build("rdvae", seed=0)
    lp = model.class_log_prob(inside.x_test[:7])
    assert lp.shape == (7, 5)
    torch.testing.assert_close(lp.logsumexp(-1), torch.zeros(7), atol=1e-5, rtol=0)
    assert model.sample(4, seed=0, y=torch.tensor([0, 1, 2, 3])).shape == (4, 64)
    assert model.sample(3, seed=0).shape == (3, 64)  # from the class mixture


def test_bad_input(digits):
    inside, _ = digits
    model = pv.build("rdvae")
    with pytest.raises(ValueError, match="needs class labels"):
        pv.fit(model, inside.x_train, steps=1, progress=False)
    bad = inside.y_train.copy()
    bad[3] = 7
    with pytest.raises(ValueError, match="label 7, outside"):
        pv.fit(model, inside.x_train, bad, steps=1, progress=False)
    with pytest.raises(ValueError, match="label -1"):
        pv.infer.elbo(model, inside.x_train[:2], np.array([0, -1]))
    with pytest.raises(ValueError, match="num_classes"):
        pv.build({"family": "rdvae", "num_classes": None})
    with pytest.raises(ValueError, match="method"):
        pv.analysis.ood_score(model, inside.x_test[:2], method="entropy")
    with pytest.raises(ValueError, match="class_conditional"):
        pv.build("rdvae", prior={"kind": "standard_normal"})


@pytest.mark.slow
def test_digits_accuracy_and_ood(trained, digits):
    inside, x_out = digits
    acc = (trained.predict(inside.x_test) == torch.as_tensor(inside.y_test)).float().mean()
    assert acc > 0.85, f"in-domain accuracy {acc:.3f}; chance is 0.2"
    for method in OOD_METHODS:
        s_in = pv.analysis.ood_score(trained, inside.x_test, method=method, num_samples=64)
        s_out = pv.analysis.ood_score(trained, x_out, method=method, num_samples=64)
        auroc = pv.metrics.ood_auroc(s_in, s_out)
        assert auroc > 0.65, f"{method}: OOD AUROC {auroc:.3f}"


@pytest.mark.slow
def test_subclasses_figure(trained, digits, tmp_path):
    inside, _ = digits
    sub = find_subclasses(trained, inside.x_train, inside.y_train, label=2, num_clusters=3)
    frame = sub.to_frame()
    assert frame["size"].sum() == (inside.y_train == 2).sum()
    assert list(frame["size"]) == sorted(frame["size"], reverse=True)
    assert sub.decoded.shape == (3, 64) and -1 <= sub.silhouette <= 1
    subclass_figure(sub, inside.x_train, image_shape=(8, 8), path=tmp_path / "sub.png")
    assert (tmp_path / "sub.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="too few"):
        find_subclasses(trained, inside.x_train[:5], inside.y_train[:5], label=0, num_clusters=3)


def test_the_log_px_score_is_importance_sampling_in_infer(digits):
    """One log-weight engine: the log_px score is −pv.infer.log_likelihood (same seed, same
    draws), the class-marginal IWAE bound; it applies to any model, the latent scores only
    to a class-structured prior."""
    inside, _ = digits
    model = pv.build("rdvae", latent_dim=2, decoder={"hidden": [16]}, guide={"hidden": [16]})
    x = inside.x_test[:20]
    ref = pv.infer.log_likelihood(model, x, num_samples=500, seed=0, diagnostics=False).log_px
    torch.testing.assert_close(pv.analysis.ood_score(model, x, num_samples=500, seed=0), -ref)
    vae = pv.build("vae", latent_dim=2, decoder={"hidden": [16]}, guide={"hidden": [16]})
    assert pv.analysis.ood_score(vae, x, num_samples=8).shape == (20,)
    with pytest.raises(ValueError, match="needs a class-structured prior"):
        pv.analysis.ood_score(vae, x, method="latent_distance")
    table = pv.analysis.evaluate_ood(model, x, inside.x_train[:20], num_samples=8)
    assert list(table.method) == list(OOD_METHODS) and table.auroc.between(0, 1).all()


def test_kl_weight_scales_the_latent_but_not_the_label(digits):
    """β weights the z sites (the KL term); log p(y) stays a plain log-likelihood term."""
    from pyro import poutine

    inside, _ = digits
    model = pv.build("rdvae", seed=0, beta=4.0)
    x = torch.as_tensor(inside.x_train[:6], dtype=torch.float32)
    y = torch.as_tensor(inside.y_train[:6])
    trace = poutine.trace(model.model).get_trace(x, y)
    assert trace.nodes["z"]["scale"] == 4.0
    assert trace.nodes["y"]["scale"] == 1.0 and trace.nodes["x"]["scale"] == 1.0
    guide = poutine.trace(model.guide).get_trace(x, y)
    assert guide.nodes["z"]["scale"] == 4.0

"""Out-of-domain detection: scores for any model, and the one in-vs-out pipeline.

A score is higher for inputs further out of the training domain. ``"log_px"``
(−log p(x) by importance sampling, :func:`ppl_vae.infer.log_likelihood`) applies to
every model; a model with a class-structured prior (``Prior.class_structured``: one
Gaussian Norm_z[μ_c, s_c² I] per class, the RD-VAE's) also has two latent scores at
the encoder mean g_μ(x): ``"latent_density"``, −log Σ_c π_c Norm[g_μ(x); μ_c, s_c² I],
and ``"latent_distance"``, min_c ‖g_μ(x) − μ_c‖² / s_c². :func:`evaluate_ood` scores
in-domain and out-of-domain rows with each method and returns their AUROCs; the
``ppl-vae ood`` command, the ``rdvae_ood`` study and ``benchmarks/rdvae_ood_digits.py``
all call it.

>>> import ppl_vae as pv
>>> data = pv.data.load("digits", binarize=True)
>>> model = pv.build("vae", latent_dim=2, decoder={"hidden": [16]}, guide={"hidden": [16]})
>>> table = pv.analysis.evaluate_ood(model, data.x_test[:20], data.x_train[:20],
...                                  methods=["log_px"], num_samples=8)
>>> list(table.columns)
['method', 'auroc', 'score_in_mean', 'score_out_mean', 'default']
"""

from __future__ import annotations

import pandas as pd
import torch

from ppl_vae import _checks, infer, metrics

METHODS = ("log_px", "latent_density", "latent_distance")
LATENT_METHODS = ("latent_density", "latent_distance")
#: Chosen by ``benchmarks/rdvae_ood_digits.py`` (digits 0-4 vs 5-9, three seeds): the
#: class-marginal importance-sampled log p(x) separates best; the latent scores see
#: only the encoder mean and miss OOD digits the encoder maps into a class Gaussian.
DEFAULT_METHOD = "log_px"


def methods_for(model) -> tuple[str, ...]:
    """The score methods ``model`` has: every model ``log_px``; a class-structured prior
    also the latent scores."""
    return METHODS if _class_structured(model) else ("log_px",)


def _class_structured(model) -> bool:
    return bool(model.class_structured and model.amortized)


@torch.no_grad()
def ood_score(model, x, *, method: str = DEFAULT_METHOD, num_samples: int = 256,
              seed: int | None = 0, device=None) -> torch.Tensor:
    """Out-of-domain score ``[N]`` of ``x`` under ``model``; higher = further out.

    ``"log_px"`` is −log p̂(x), the IWAE bound of order K = ``num_samples`` (for a
    class-structured prior without labels, the class-marginal model's); the latent
    methods (above) need a class-structured prior and an encoder.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((30, 4), 0.5))
    >>> scores = pv.analysis.ood_score(model, x[:5], method="log_px", num_samples=4)
    >>> scores.shape, bool(torch.isfinite(scores).all())
    (torch.Size([5]), True)
    """
    _checks.one_of("method", method, METHODS)
    if method == "log_px":
        num_samples = _checks.positive_int("num_samples", num_samples)
        est = infer.log_likelihood(model, x, num_samples=num_samples, seed=seed,
                                   diagnostics=False, device=device)
        return -est.log_px
    if not _class_structured(model):
        raise ValueError(
            f"method={method!r} needs a class-structured prior (one Gaussian per class, "
            "prior.kind='class_conditional', as in family 'rdvae') and an encoder: use "
            "method='log_px', which applies to every model"
        )
    x, _ = model.check_data(x)
    mu = model.encode(x).mean  # [N, L]
    prior = model.prior
    if method == "latent_density":
        return -prior.distribution(None).log_prob(mu)
    scale2 = prior.log_scale.exp().pow(2)  # [C]
    sq = (mu.unsqueeze(1) - prior.class_means).pow(2).sum(-1)  # [N, C]
    return (sq / scale2).min(dim=1).values


def evaluate_ood(model, x_in, x_out, *, methods=None, num_samples: int = 256,
                 seed: int | None = 0, device=None) -> pd.DataFrame:
    """AUROC of each score method at telling ``x_out`` from ``x_in`` (0.5 = chance).

    One row per method: ``method``, ``auroc``, the mean score in and out, and whether
    it is the default method. ``methods=None``: every method the model has. The
    out-of-domain rows are scored with ``seed + 1`` (independent draws).

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> x = torch.bernoulli(torch.full((30, 4), 0.5))
    >>> table = pv.analysis.evaluate_ood(model, x[:10], 1 - x[:10], num_samples=4)
    >>> table["method"].tolist(), bool(table["auroc"].between(0, 1).all())
    (['log_px'], True)
    """
    methods = list(methods_for(model) if methods is None else methods)
    for m in methods:
        _checks.one_of("method", m, METHODS)
    rows = []
    for m in methods:
        s_in = ood_score(model, x_in, method=m, num_samples=num_samples, seed=seed,
                         device=device).cpu()
        s_out = ood_score(model, x_out, method=m, num_samples=num_samples,
                          seed=None if seed is None else seed + 1, device=device).cpu()
        rows.append({"method": m, "auroc": metrics.ood_auroc(s_in, s_out),
                     "score_in_mean": float(s_in.mean()), "score_out_mean": float(s_out.mean()),
                     "default": m == DEFAULT_METHOD})
    return pd.DataFrame(rows)

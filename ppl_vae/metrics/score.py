"""``score(model, data, metrics=[...])``: every disentanglement metric of a trained model
in one tidy DataFrame.

The representation is the mean of q(z | x) (the encoder's output), as in
disentanglement_lib. ``data`` is either

- a :class:`~ppl_vae.data.Dataset` with ground-truth factors (``load("sprites")``,
  ``load("dsprites", path=...)``, ...): the array metrics use its first ``max_points``
  training rows and the intervention scores (BetaVAE, FactorVAE) draw stored rows with
  an :class:`~ppl_vae.metrics.ArraySampler`; or
- a factor grid that renders any combination (:class:`~ppl_vae.data.SpriteGrid`): the
  array metrics use ``max_points`` uniformly drawn combinations and the intervention
  scores draw fresh combinations with a :class:`~ppl_vae.metrics.GridSampler`, exactly
  as disentanglement_lib samples its ground-truth data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ppl_vae import _checks
from ppl_vae.metrics._sampling import ArraySampler, GridSampler
from ppl_vae.metrics.betavae_score import betavae_score
from ppl_vae.metrics.dci import dci
from ppl_vae.metrics.factorvae_score import factorvae_score
from ppl_vae.metrics.mig import mig_details
from ppl_vae.metrics.modularity import modularity_explicitness
from ppl_vae.metrics.sap import sap_details

#: Metric names ``score`` accepts, in the order it reports them.
METRICS = ("mig", "dci", "sap", "modularity", "betavae", "factorvae")


def encoder_means(model, x, *, batch_size: int = 1024) -> np.ndarray:
    """Means of q(z | x) ``[N, L]`` for images ``x`` ``[N, D]``, in batches."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    with torch.no_grad():
        return torch.cat([model.encode(part).mean.cpu() for part in x.split(batch_size)]).numpy()


def _frames(name: str, latents, factors, names, sampler, seed, options) -> list[dict]:
    """Rows ``(metric, factor, value)`` of one metric."""
    opts = options.get(name, {})
    if name in ("mig", "sap"):
        details = (mig_details(latents, factors, factor_names=names, **opts) if name == "mig"
                   else sap_details(latents, factors, factor_names=names, seed=seed, **opts))
        rows = [{"metric": name, "factor": str(f), "value": float(g)}
                for f, g in zip(details["factor"], details["gap"])]
        return [{"metric": name, "factor": "all", "value": float(np.nanmean(details["gap"]))},
                *rows]
    if name == "dci":
        out = dci(latents, factors, seed=seed, **opts)
        return [{"metric": f"dci_{k}", "factor": "all", "value": v} for k, v in out.items()]
    if name == "modularity":
        out = modularity_explicitness(latents, factors, seed=seed, **opts)
        return [{"metric": k, "factor": "all", "value": v} for k, v in out.items()]
    fn = betavae_score if name == "betavae" else factorvae_score
    out = fn(sampler, seed=seed, **opts)
    return [{"metric": f"{name}_score", "factor": "all", "value": float(out["eval_accuracy"])},
            {"metric": f"{name}_score_train", "factor": "all",
             "value": float(out["train_accuracy"])}]


def _representations(model, data, max_points: int, seed: int):
    """``(latents, factors, factor names, sampler)`` for a Dataset or a factor grid."""
    encode = lambda x: encoder_means(model, x)
    if hasattr(data, "index_of") and hasattr(data, "render"):
        sampler = GridSampler(data, encode)
        rng = np.random.default_rng(seed)
        latents, codes = sampler.draw(min(max_points, len(data)), rng)
        return latents, codes, list(sampler.factor_names), sampler
    factors = getattr(data, "factors_train", None)
    if factors is None:
        raise ValueError(
            f"data {getattr(data, 'name', type(data).__name__)!r} has no ground-truth factors: "
            "disentanglement metrics need them (e.g. pv.data.load('sprites'), "
            "load('dsprites', path=...) or a SpriteGrid)"
        )
    x, factors = data.x_train[:max_points], factors[:max_points]
    names = list(data.factor_names) if data.factor_names is not None else None
    latents = encode(x)
    return latents, factors, names, ArraySampler(latents, factors, factor_names=names)


def score(model, data, metrics=("mig", "dci", "sap"), *, seed: int = 0,
          max_points: int = 10000, options: dict | None = None) -> pd.DataFrame:
    """Disentanglement metrics of ``model`` on ``data`` as a tidy DataFrame.

    Parameters
    ----------
    model
        A trained model with an encoder (``model.encode(x).mean``).
    data : Dataset with factors, or SpriteGrid
        See the module docstring.
    metrics : sequence of str
        Any of ``"mig"``, ``"dci"``, ``"sap"``, ``"modularity"`` (modularity and
        explicitness), ``"betavae"``, ``"factorvae"``.
    seed : int, default 0
        Seeds the drawn points and every metric.
    max_points : int, default 10000
        Points for the array metrics (disentanglement_lib's MIG uses 10,000).
    options : dict, optional
        Keyword arguments per metric, e.g. ``{"factorvae": {"num_train": 1000}}``;
        each metric's defaults are disentanglement_lib's (see its docstring).

    Returns
    -------
    pandas.DataFrame
        Columns ``metric``, ``factor`` (a factor's name for per-factor terms, else
        ``"all"``) and ``value``.

    Examples
    --------
    An (untrained) VAE's encoder scored on freshly rendered 16 x 16 sprites:

    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=256, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> grid = pv.data.SpriteGrid(size=16, grid="small")
    >>> table = pv.metrics.score(model, grid, metrics=("mig", "sap"), max_points=200)
    >>> table.columns.tolist(), table["metric"].unique().tolist()
    (['metric', 'factor', 'value'], ['mig', 'sap'])
    >>> table["factor"].tolist()[:6]                 # the mean, then one row per factor
    ['all', 'shape', 'scale', 'orientation', 'pos_x', 'pos_y']
    >>> bool(table["value"].between(0, 1).all())
    True
    """
    names_asked = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in names_asked if m not in METRICS]
    if unknown or not names_asked:
        raise ValueError(f"metrics={names_asked!r} is invalid: pass one or more of "
                         f"{', '.join(METRICS)}")
    options = dict(options or {})
    stray = sorted(set(options) - set(names_asked))
    if stray:
        raise ValueError(f"options has keys {stray} for metrics not asked for: use keys among "
                         f"{names_asked}")
    seed = _checks.seed("seed", seed)
    max_points = _checks.positive_int("max_points", max_points, minimum=10)
    latents, factors, names, sampler = _representations(model, data, max_points, seed)
    rows = [row for name in METRICS if name in names_asked
            for row in _frames(name, latents, factors, names, sampler, seed, options)]
    return pd.DataFrame(rows, columns=["metric", "factor", "value"])

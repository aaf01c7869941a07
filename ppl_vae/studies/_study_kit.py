"""Helpers shared by the study modules: cached data and seeded training.

Not a study (the leading underscore hides it from :func:`ppl_vae.study.available_studies`).
Trials stay pure: every helper depends only on its arguments, and the caches hold
read-only copies of deterministic datasets (the digits split and the rendered
sprites do not depend on the trial's seed).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch

#: Where the paper sizes that train on MNIST find it (their protocols say so).
MNIST_NOTE = ("MNIST is read from `$PPL_VAE_MNIST`, else from `shared/data/mnist` beside the "
              "checkout (`pv.data.fetch_mnist()` downloads it), on every worker.")
#: Burda et al.'s (2016) one-stochastic-layer MNIST VAE, also Cremer et al.'s (2018):
#: 784-200-200-50 with tanh units and Bernoulli pixels, as ``pv.build("vae", data_dim=784,
#: **MNIST_VAE)`` overrides.
MNIST_VAE = {
    "latent_dim": 50,
    "decoder": {"hidden": [200, 200], "activation": "tanh"},
    "guide": {"hidden": [200, 200], "activation": "tanh"},
    "likelihood": {"kind": "bernoulli"},
}


@functools.lru_cache(maxsize=8)
def dataset(name: str, **options):
    """``pv.data.load(name, **options)``, loaded once per worker process; ``"mnist"``
    without a ``root`` comes from :func:`mnist_root` (see :func:`mnist`)."""
    import ppl_vae as pv

    if name == "mnist" and "root" not in options:
        return mnist(**options)
    return pv.data.load(name, **options)


def mnist_root() -> Path:
    """The folder with the four MNIST IDX files: ``$PPL_VAE_MNIST``, else
    ``shared/data/mnist`` beside the checkout (where the benchmarks and tests look)."""
    if os.environ.get("PPL_VAE_MNIST"):
        return Path(os.environ["PPL_VAE_MNIST"]).expanduser()
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"


def mnist(**options):
    """Real MNIST from :func:`mnist_root` (grey levels unless ``binarize=True``), cached.

    A missing folder or file is a ValueError that says where to put the files; a
    study never falls back to another dataset.
    """
    root = mnist_root()
    try:
        return dataset("mnist", root=str(root), **options)
    except ValueError as err:
        raise ValueError(
            f"{err} (this study needs the real MNIST files: set PPL_VAE_MNIST to the folder "
            f"that holds them, or put them in {str(root)!r})"
        ) from err


def rows(total: int, n: int, *, seed: int) -> np.ndarray:
    """Indices of ``min(n, total)`` rows drawn without replacement, seeded by ``seed``."""
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return order[: min(n, total)].numpy()


def subsample(x, n: int, *, seed: int) -> torch.Tensor:
    """``x[rows(len(x), n, seed=seed)]`` as a float32 tensor."""
    x = np.asarray(x, dtype=np.float32)
    return torch.as_tensor(x[rows(x.shape[0], n, seed=seed)])


def device() -> str | None:
    """The running trial's device (``pv.study.run(..., device=)``); None: the CPU."""
    from ppl_vae.study import trial_device

    return trial_device()


def train(spec, x, y=None, *, seed: int, steps: int, lr: float = 3e-3,
          batch_size: int = 128, lr_schedule=None, binarize: bool | str = False,
          device=None, **overrides):
    """Build ``spec`` with ``overrides`` (initial weights from ``seed``) and fit it by SVI.

    Parameters
    ----------
    spec : str or dict
        A preset name or spec for :func:`ppl_vae.build`.
    x : array [N, D], or a lazily indexed source
        Training data; a source such as :class:`ppl_vae.data.SpriteGrid` (``len(x)``
        and ``x[indices]``) is streamed batch by batch, never held whole.
    y : array [N], optional
        Labels (class-structured families).
    seed : int
        Seeds the initial weights, the minibatch order and the SVI draws.
    steps, lr, batch_size, lr_schedule, binarize
        Passed to :func:`ppl_vae.fit` (``binarize="dynamic"``: a fresh Bernoulli draw
        of the grey levels in ``x`` per minibatch).
    device : str, optional
        Where to train (:func:`ppl_vae.fit`'s ``device=``); the model stays there.

    Returns
    -------
    torch.nn.Module
        The trained model (in evaluation mode: no gradients are needed after).
    """
    import ppl_vae as pv

    if isinstance(x, np.ndarray | torch.Tensor | list):
        x = np.asarray(x, dtype=np.float32)
    model = pv.build(spec, data_dim=x[[0]].shape[1], seed=seed, **overrides)
    result = pv.fit(model, x, y, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                    lr_schedule=lr_schedule, binarize=binarize, progress=False, device=device)
    return result.model.eval()


def mlp(width: int | list[int], activation: str | None = None) -> dict:
    """Override for the hidden layers of a decoder or encoder.

    ``width``: one layer of that many units, or a list of layer widths;
    ``activation``: their nonlinearity (None: the preset's).
    """
    widths = [int(w) for w in width] if isinstance(width, list | tuple) else [int(width)]
    return {"hidden": widths, **({"activation": activation} if activation is not None else {})}


def config_value(df, key: str, default):
    """Configuration key ``key`` of a run's results table (its first row), or ``default``
    where the run's configurations leave the key out."""
    return df[key].iloc[0] if key in df else default


#: Rules of :func:`check_config`: an integer >= 1, a finite number > 0, a non-empty list
#: of integers >= 1 (an int ``m`` as a rule: an integer >= m).
COUNT, POSITIVE, COUNTS = 1, "positive", "counts"


def check_config(study: str, config, rules: dict) -> dict:
    """``config`` with the keys of ``rules`` checked, before a trial computes anything.

    A rule is :data:`COUNT` (or any int ``m``: an integer >= m), :data:`POSITIVE`,
    :data:`COUNTS` or a tuple of the allowed values. A missing key or a bad value is a ValueError naming the
    study, the key, the value and what to pass (numpy integers count as integers).
    """
    from ppl_vae import _checks

    if not isinstance(config, dict):
        raise ValueError(f"{study}: config={config!r} is invalid: pass a dict of settings")
    out = dict(config)
    for key, rule in rules.items():
        if key not in config:
            raise ValueError(f"{study}: config has no key {key!r}: add it (see the study's grid)")
        name, value = f"{study} config {key}", config[key]
        if isinstance(rule, int):
            out[key] = _checks.positive_int(name, value, minimum=rule)
        elif rule == POSITIVE:
            out[key] = _checks.positive_float(name, value)
        elif rule == COUNTS:
            values = value.tolist() if isinstance(value, np.ndarray) else value
            if not isinstance(values, list | tuple) or not values:
                raise ValueError(f"{name}={value!r} is invalid: pass a non-empty list of integers >= 1")
            out[key] = [_checks.positive_int(f"{name}[{i}]", v) for i, v in enumerate(values)]
        else:
            _checks.one_of(name, value, rule)
    return out

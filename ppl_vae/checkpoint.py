"""Checkpoints: spec + weights + package versions, loaded with ``weights_only=True``.

Only tensors and plain containers are stored, so loading never unpickles
arbitrary objects; a file that is not a ppl_vae checkpoint (including a pickle
that would run code) is refused with a ValueError before anything runs.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
from pathlib import Path

import pyro
import torch

from ppl_vae._version import __version__

FORMAT = "ppl_vae.checkpoint/1"


def versions() -> dict:
    return {"ppl_vae": __version__, "torch": str(torch.__version__), "pyro": str(pyro.__version__)}


def payload(model, training: dict | None = None) -> dict:
    """The dict stored on disk for ``model`` (plus optional training state)."""
    out = {
        "format": FORMAT,
        "spec": model.spec,
        "state_dict": model.state_dict(),
        "versions": versions(),
    }
    if training is not None:
        out["training"] = training
    return out


def write_atomic(obj: dict, path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def clean_stale(path) -> list[Path]:
    """Remove temporary files that an interrupted :func:`write_atomic` left for ``path``.

    They are named ``<name>.<random>.tmp`` next to ``path``; a write that was killed
    between creating and renaming one leaves it behind. Call this before writing
    ``path`` again (``pv.fit`` does at its start); returns the files removed.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = sorted(path.parent.glob(f"{glob_escape(path.name)}.*.tmp"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def read(path) -> dict:
    """Load and validate a checkpoint dict; ValueError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path={str(path)!r}: no such checkpoint file; check the path")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about foreign pickle protocols
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        useful = [ln for ln in lines if "Unsupported global" in ln or "WeightsUnpickler" in ln]
        first = (useful or lines or [type(err).__name__])[0]
        raise ValueError(
            f"{str(path)!r} is not a ppl_vae checkpoint and was not loaded "
            f"(only tensors and plain data are accepted): {first[:200]}"
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError(
            f"{str(path)!r} is not a ppl_vae checkpoint (no '{FORMAT}' marker): "
            "save models with pv.save(model, path)"
        )
    return obj


def save(model, path) -> Path:
    """Save ``model`` (spec, weights, versions) to ``path`` atomically."""
    if not hasattr(model, "spec") or not hasattr(model, "state_dict"):
        raise ValueError(f"model of type {type(model).__name__} is not a ppl_vae model")
    return write_atomic(payload(model), path)


def load(path, *, device=None):
    """Rebuild a model saved by :func:`save` (or a training checkpoint).

    Tensors are read onto the CPU (a checkpoint written on a GPU loads on a
    CPU-only machine); ``device`` ("auto", "cpu", "cuda[:N]") moves the model.
    """
    from ppl_vae import _device
    from ppl_vae.models import build

    dev = _device.resolve(device)
    obj = read(path)
    model = build(obj["spec"])
    model.load_state_dict(obj["state_dict"])
    return model.to(dev) if dev is not None else model

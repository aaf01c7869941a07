"""Where computations run: the ``device=`` option every computing entry point takes.

``device=None`` means "where the model is" (the device of its first parameter or
buffer; a program with no parameters runs where its data are); ``"auto"`` means
CUDA when available, else the CPU; anything else is a torch device string
(``"cpu"``, ``"cuda"``, ``"cuda:1"``) or ``torch.device``. Data follow the model's
device and floating dtype, moved once per call.
"""

from __future__ import annotations

import itertools

import torch

from ppl_vae import _checks


def _as(name: str, value) -> str:
    """``device='cpu'`` for an argument, ``--device cpu`` for a command-line flag."""
    return f"{name} {value}" if name.startswith("--") else f"{name}={_checks._short(value)}"


def resolve(device, *, name: str = "device") -> torch.device | None:
    """``None`` stays ``None``; ``"auto"`` picks CUDA when present; others are checked.

    ``name`` is what messages call the option (``"--device"`` on the command line).
    """
    if device is None:
        return None
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fallback = f"pass {_as(name, 'cpu')} or {_as(name, 'auto')}"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"{_as(name, device)} is not a device: pass 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{_as(name, device)} but no CUDA device is available here: {fallback}")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"{_as(name, device)} but only {torch.cuda.device_count()} CUDA device(s) exist: "
                "pass cuda:0 .. cuda:N-1"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"{_as(name, device)} but no MPS (Apple GPU) device is available here: {fallback}"
        )
    elif dev.type not in ("cpu", "mps"):
        raise ValueError(f"{_as(name, device)} is not supported: pass 'cpu' or 'cuda'")
    return dev


def of(obj) -> tuple[torch.device | None, torch.dtype | None]:
    """Device and floating dtype of a module's first parameter or buffer, else ``(None, None)``."""
    if isinstance(obj, torch.nn.Module):
        for tensor in itertools.chain(obj.parameters(), obj.buffers()):  # stops at the first
            if tensor.is_floating_point():
                return tensor.device, tensor.dtype
    return None, None


def place(owner, device=None):
    """Move ``owner`` (a module) to ``device`` if given; return the device and dtype to use."""
    dev = resolve(device)
    if dev is not None and isinstance(owner, torch.nn.Module):
        owner.to(dev)
    model_dev, dtype = of(owner)
    return (dev or model_dev), dtype


def move(x: torch.Tensor | None, device, dtype=None):
    """``x`` on ``device`` (and floating ``dtype``, labels keep theirs); ``None`` stays."""
    if x is None:
        return None
    if dtype is not None and x.is_floating_point():
        return x.to(device=device or x.device, dtype=dtype)
    return x.to(device) if device is not None else x

"""Resume that cannot lie: what a checkpoint records about its run, and the check.

A training checkpoint stores the options that decide the numbers of a run
(seed, lr, batch size, objective, optimizer, schedule, clipping, warm-up,
validation and early-stopping settings, fingerprints of the data). Resuming with
``resume=True`` compares them with the arguments given now and refuses any
difference with a ``ValueError`` naming both values. ``resume="override"`` says
explicitly that the arguments given now win; the differences are then reported
in a warning and recorded in the checkpoint.
"""

from __future__ import annotations

import hashlib
import warnings

import torch

RESUME_MODES = (False, True, "override")
# Options whose change keeps the optimizer's/scheduler's saved state meaningful.
STATE_KEYS = {"optimizer": ("optimizer",),
              "schedule": ("lr", "lr_schedule", "lr_trajectory", "optimizer")}


def fingerprint(x: torch.Tensor | None, y: torch.Tensor | None = None) -> str | None:
    """Shape plus a BLAKE2 digest of the bytes of ``x`` (and ``y``): equal data, equal string."""
    if x is None:
        return None
    digest = hashlib.blake2b(digest_size=12)
    for t in (x, y):
        if t is not None:
            digest.update(str(tuple(t.shape)).encode())
            digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return f"{tuple(x.shape)}:{digest.hexdigest()}"


def check_mode(resume) -> object:
    if not any(resume is m or (isinstance(m, str) and resume == m) for m in RESUME_MODES):
        raise ValueError(
            f"resume={resume!r} is invalid: pass False, True (continue the same run; every "
            "option must match the checkpoint) or 'override' (continue with the options given now)"
        )
    return resume


def differences(saved: dict, now: dict) -> dict:
    """``{key: (checkpoint value, value now)}`` for options recorded in both that differ."""
    return {k: (saved[k], now[k]) for k in now if k in saved and saved[k] != now[k]}


def check(saved: dict, now: dict, *, resume, checkpoint) -> dict:
    """Raise on differences unless ``resume == "override"``; return the differences."""
    diff = differences(saved, now)
    if not diff:
        return diff
    listed = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, a, b in
                       ((k, *v) for k, v in diff.items()))
    if resume == "override":
        warnings.warn(
            f"resume='override': continuing {str(checkpoint)!r} with changed options ({listed})",
            stacklevel=3,
        )
        return diff
    raise ValueError(
        f"resume=True: checkpoint={str(checkpoint)!r} was written by a run with different "
        f"options ({listed}). Pass the checkpoint's values to continue that run, "
        "resume='override' to continue it with the new values, or resume=False to start afresh"
    )


def keeps_state(diff: dict, which: str) -> bool:
    """Whether the saved optimizer (``which="optimizer"``) or scheduler state still applies."""
    return not any(k in diff for k in STATE_KEYS[which])


def plain(obj):
    """Options as plain data (tuples to lists) so they survive ``weights_only`` loading."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj

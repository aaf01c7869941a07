"""Process-wide switches the models consult while they run.

Penalty terms and objective weights (a β-VAE's scale on the KL terms) are part
of the *training objective*, not of log p(x, z). Inference utilities evaluate
log-weights inside :func:`no_penalties` so that models skip their
``pyro.factor`` penalty sites (which may also be expensive, e.g. the O(B^2)
total-correlation estimators) and drop their objective weights. Sites whose name starts with
``PENALTY_PREFIX`` are additionally ignored by the utilities, which covers
hand-written Pyro models that follow the same naming convention.
"""

from __future__ import annotations

import contextlib
import contextvars

PENALTY_PREFIX = "penalty"

_penalties_on = contextvars.ContextVar("ppl_vae_penalties_on", default=True)


def penalties_enabled() -> bool:
    return _penalties_on.get()


@contextlib.contextmanager
def no_penalties():
    token = _penalties_on.set(False)
    try:
        yield
    finally:
        _penalties_on.reset(token)

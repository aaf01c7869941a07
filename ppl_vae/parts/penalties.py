"""Penalty terms r(·) added to the objective as ``pyro.factor`` sites.

The lecture notes' L_new = −ELBO + λ₁ E_x[r₁(q(z|x))] + λ₂ r₂(q(z)): a penalty
on each posterior (r₁) or on the aggregate posterior (r₂), or on the model's
own parameters (the RD-VAE's repulsion between class means).
"""

from __future__ import annotations

from ppl_vae.parts.base import Penalty  # noqa: F401

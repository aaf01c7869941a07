"""Explicit, local randomness: every random public function takes ``seed``.

``seeded(seed)`` runs a block with torch's global generator (which Pyro's
samplers use) set to ``seed`` and restores the caller's generator state
afterwards, so library calls never disturb a user's own random stream. A seed
that is not an integer in ``[0, 2**63)`` (``1.5``, ``-3``, ``"abc"``) is a
ValueError here, so every public function that takes ``seed`` refuses it.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from ppl_vae import _checks


@contextlib.contextmanager
def seeded(seed: int | None):
    """Run the block with torch/numpy/python RNGs seeded; ``None`` leaves them alone."""
    if seed is None:
        yield
        return
    seed = _checks.seed("seed", seed)
    np_state = np.random.get_state()
    py_state = random.getstate()
    # fork every CUDA device's state too: torch.manual_seed seeds them all
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        np.random.seed(int(seed) % 2**32)
        random.seed(int(seed))
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


@contextlib.contextmanager
def isolated():
    """Run the block and then put every generator back as it was (torch, CUDA, numpy,
    python): code inside (a user's callback) can draw numbers without moving the
    stream of the code around it."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def generator(seed: int | None) -> torch.Generator:
    """A torch Generator seeded with ``seed`` (fresh entropy when ``None``)."""
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        # derived seeds (seed * k + step) may pass 2**63; torch takes any 64-bit value
        g.manual_seed(_checks.positive_int("seed", seed, minimum=0) % 2**64)
    return g

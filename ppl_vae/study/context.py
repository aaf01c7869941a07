"""What a running trial is told: :class:`TrialContext`, and how the executors hand it over.

A study declares the form its trial takes (``Study(..., takes_context=True)``):

- ``trial(config, seed)`` (the default, unchanged): the seed as an int; the device is
  still readable with :func:`~ppl_vae.study.trial_device`.
- ``trial(config, context)``: one :class:`TrialContext` with the seed, the device, the
  size preset the study runs at and a scratch folder made for this trial.

Nothing is inferred from the trial's signature: the study says which form it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrialContext:
    """Everything one trial may use besides its configuration.

    Attributes
    ----------
    seed : int
        The trial's seed (the global generators are already seeded with it).
    device : str or None
        Where to compute, to pass on as ``device=``; None means the CPU.
    size : str
        The size preset of the run (``"small"``, ``"default"`` or ``"paper"``).
    scratch_dir : Path or None
        A folder for this trial's own files (``<out>/<study>/scratch/<key>``), made by
        the executor before the trial starts; None when the trial runs outside a study.

    >>> ctx = TrialContext(seed=3, device=None, size="small")
    >>> ctx.seed, ctx.device, ctx.scratch_dir
    (3, None, None)
    """

    seed: int
    device: str | None = None
    size: str = "default"
    scratch_dir: Path | None = None


@dataclass(frozen=True)
class ContextTrial:
    """A ``trial(config, context)`` function with what its contexts share (size, scratch root).

    The executors call :meth:`call` with each trial's seed, key and device. Picklable
    when ``fn`` is (a module-level function), so it travels to worker processes.

    >>> import tempfile
    >>> def trial(config, context):
    ...     return {"seed": float(context.seed), "made": float(context.scratch_dir.is_dir())}
    >>> ct = ContextTrial(trial, size="small", scratch_root=Path(tempfile.mkdtemp()))
    >>> ct.call({}, 7, "k1", None)
    {'seed': 7.0, 'made': 1.0}
    """

    fn: Callable[[dict, TrialContext], dict]
    size: str = "default"
    scratch_root: Path | None = None

    def call(self, config: dict, seed: int, key: str, device: str | None) -> dict:
        scratch = None
        if self.scratch_root is not None:
            scratch = Path(self.scratch_root) / key
            scratch.mkdir(parents=True, exist_ok=True)
        context = TrialContext(seed=int(seed), device=device, size=self.size, scratch_dir=scratch)
        return self.fn(config, context)

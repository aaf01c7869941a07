"""A user's own Pyro model/guide pair, seen through the model contract ``pv.fit`` reads.

``pv.fit`` trains ppl_vae models, which declare what the trainer needs (the
``pv.models.Model`` contract). A pair written the way Pyro users write it — an
``nn.Module`` with ``model``/``guide`` methods, or ``(model, guide)`` callables whose
parameters live in modules (``pyro.module``, ``PyroModule``, autoguides) or in Pyro's
parameter store (``pyro.param``) — declares nothing, so :class:`PyroPair` reads it
off the program itself, through the same reader as ``pv.infer`` (one probe trace):

* the datapoint plate, its nesting, the latent sites, whether a discrete site is
  enumerated (then ``TraceEnum_ELBO``);
* whether the guide is **amortized**: it is run once more on a batch of another size;
  a guide whose parameters are sized by the data (``AutoNormal`` on local latents, a
  table of per-datapoint parameters) fails or changes its parameters there, and is
  then trained on the whole data set at every step (a minibatch would move rows'
  parameters that are not in it) and cannot score validation data;
* minibatches: every site inside the datapoint plate is scaled by N / B (Pyro's
  subsampling semantics), sites outside it — global point estimates — are not.

What the reader refuses (a latent shared by every datapoint, an observed site outside
the plate) is refused here too, with the reader's message.
"""

from __future__ import annotations

import torch
from pyro import poutine
from pyro.poutine.messenger import Messenger
from torch import nn

from ppl_vae import _checks
from ppl_vae.infer import _program


class _PlateScale(Messenger):
    """Multiply the scale of every site inside the plate ``name`` by ``factor``."""

    def __init__(self, name: str, factor: float):
        super().__init__()
        self.name, self.factor = name, factor

    def _process_message(self, msg):
        if msg["type"] == "sample" and any(f.name == self.name for f in msg["cond_indep_stack"]):
            msg["scale"] = self.factor * msg["scale"]


def _parameters(fn, *args) -> dict:
    """The unconstrained parameter-store tensors ``fn(*args)`` touches (after creating them)."""
    with poutine.trace(param_only=True) as tr, torch.no_grad():
        fn(*args)
    return {name: site["value"].unconstrained() for name, site in tr.trace.nodes.items()}


class PyroPair(nn.Module):
    """A foreign pair as a trainable model: the contract's members read off its program.

    ``PyroPair(module)`` for an object with ``model``/``guide`` methods, or
    ``PyroPair(model, guide)`` for two callables; ``x`` (and ``y``) is the training
    data, read once to learn the program's structure.
    """

    requires_labels = False
    streamable = False  # the probe above needs the data up front
    penalized = False  # a user's loss is its ELBO: the program says nothing else
    auxiliary_parts = ()
    class_structured = False
    partial_labels = False
    kl_weight = 1.0

    def __init__(self, model, guide=None, *, x, y=None):
        super().__init__()
        self.owner = model if isinstance(model, nn.Module) else None
        self.guide_module = guide if isinstance(guide, nn.Module) else None
        self.prog = _program.program(model, guide)
        x = _checks.data_tensor("x", x)
        self.data_dim = int(x.shape[-1]) if x.dim() > 1 else 1
        rows = x[: min(len(x), 8)]
        st = _program.structure(self.prog, x, y)
        self.structure = st
        self.max_plate_nesting = st.nesting
        self.enumerate = st.has_enumeration
        self.latent_sites = st.latents
        self.store = _parameters(self._elbo_program, x, y)
        self.data_plate = st.data_plate
        self.amortized = self._runs_on(rows, y)
        self.spec = {"pyro_pair": _qualname(model) + ("" if guide is None else f"+{_qualname(guide)}")}

    def _elbo_program(self, x, y):
        g = poutine.trace(self.prog.run_guide).get_trace(x, y)
        poutine.replay(self.prog.run_model, trace=g)(x, y)

    def _runs_on(self, rows, y) -> bool:
        """Whether the guide runs on other rows with the parameters it has (amortized):
        on a batch of another size its datapoint plate must take that size, its
        parameters keep their shapes, and the replayed model scores the draws."""
        if len(rows) < 2:
            return False
        sub = rows[:-1]
        ys = None if y is None else y[: len(sub)]
        before = {k: tuple(v.shape) for k, v in self.store.items()}
        try:
            with torch.no_grad():
                g = poutine.trace(self.prog.run_guide).get_trace(sub, ys)
                m = poutine.trace(poutine.replay(self.prog.run_model, trace=g)).get_trace(sub, ys)
                m.compute_log_prob()
            after = _parameters(self._elbo_program, sub, ys)
        except Exception:  # noqa: BLE001 - any failure on other rows means: not amortized
            return False
        sizes = {f.size for site in g.nodes.values() if site["type"] == "sample"
                 for f in site["cond_indep_stack"] if f.name == self.data_plate}
        shapes = {k: tuple(v.shape) for k, v in after.items()}
        return sizes <= {len(sub)} and shapes == before

    # -- the contract's program -------------------------------------------------------
    def _scaled(self, run, x, y, num_data):
        factor = 1.0 if num_data is None else num_data / x.shape[0]
        with _PlateScale(self.data_plate, factor):
            return run(x, y)

    def model(self, x, y=None, *, idx=None, num_data=None):
        return self._scaled(self.prog.run_model, x, y, num_data)

    def guide(self, x, y=None, *, idx=None, num_data=None):
        return self._scaled(self.prog.run_guide, x, y, num_data)

    # -- data and parameters ------------------------------------------------------------
    def check_data(self, x, y=None, *, name: str = "x"):
        x = _checks.data_tensor(name, x, dim=self.data_dim if self.data_dim > 1 else None)
        return x, y

    def initialize(self, x, y=None, *, seed=None) -> None:
        """Nothing data-sized to prepare: the pair's parameters exist after the probe."""

    def guide_fits(self, x) -> bool:
        return self.amortized

    def parameters(self, recurse: bool = True):
        seen = set()
        for p in [*super().parameters(recurse), *self.store.values()]:
            if id(p) not in seen:
                seen.add(id(p))
                yield p

    def state_dict(self, *args, **kwargs):
        out = super().state_dict(*args, **kwargs)
        for name, value in self.store.items():
            out[f"pyro_param_store.{name}"] = value.detach().clone()
        return out

    def load_state_dict(self, state_dict, strict: bool = True):
        state = dict(state_dict)
        for name, value in self.store.items():
            key = f"pyro_param_store.{name}"
            if key in state:
                with torch.no_grad():
                    value.copy_(state.pop(key))
        return super().load_state_dict(state, strict=strict)


def _qualname(obj) -> str:
    kind = obj if isinstance(obj, type) or callable(obj) and not isinstance(obj, nn.Module) else type(obj)
    return f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', type(obj).__name__)}"


def as_trainable(model, x, y=None):
    """``model`` when it keeps the ``pv.models.Model`` contract; a :class:`PyroPair` for a
    user's own pair (an object with ``model``/``guide``, or a ``(model, guide)`` tuple)."""
    from ppl_vae.models import Model

    if isinstance(model, Model):
        return model
    if isinstance(model, tuple) and len(model) == 2:
        return PyroPair(*model, x=x, y=y)
    if callable(getattr(model, "model", None)) and callable(getattr(model, "guide", None)):
        return PyroPair(model, x=x, y=y)
    raise ValueError(
        f"model of type {type(model).__name__} cannot be trained: pass a ppl_vae model "
        "(pv.build), an object with model and guide methods, or a (model, guide) tuple"
    )


__all__ = ["PyroPair", "as_trainable"]

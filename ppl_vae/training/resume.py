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
import numbers
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


#: The remedy when a checkpoint to resume from holds something this version cannot use.
RESUME_FIX = ("the file was edited or written by another version: pass resume=False to train "
              "afresh from the spec (pv.load(checkpoint) still reads its weights), or resume "
              "from a checkpoint this version wrote for this model")


def _bad_field(checkpoint, field: str, what: str) -> ValueError:
    return ValueError(f"checkpoint={str(checkpoint)!r}: its training state field {field!r} "
                      f"{what}; {RESUME_FIX}")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real)  # bool included: the 'diverged' column


def _check_best(best, checkpoint, weights=None) -> None:
    """The best-validation record: value (a number), step/stopped (None or an int), bad
    (an int >= 0), state (None or a state_dict of tensors: with ``weights``, the same
    names and shapes as those)."""
    if best is None:
        return
    ok = (_is_real(best.get("value", 0.0)) and _is_int(best.get("bad", 0)) and best.get("bad", 0) >= 0
          and all(best.get(k) is None or _is_int(best.get(k)) for k in ("step", "stopped"))
          and (best.get("state") is None or isinstance(best["state"], dict) and all(
              torch.is_tensor(v) for v in best["state"].values())))
    if not ok or set(best) - {"value", "step", "state", "bad", "stopped"}:
        raise _bad_field(checkpoint, "best", "is not a best-validation record (value, step, "
                                             "state, bad, stopped)")
    if best.get("state") is not None and weights is not None:
        _same_shapes(best["state"], weights, checkpoint, "best", "the checkpoint's weights")


def _same_shapes(tensors: dict, reference: dict, checkpoint, field: str, what: str) -> None:
    """Refuse ``tensors`` unless they have the names and shapes of ``reference``."""
    if set(tensors) != set(reference):
        odd = min(map(str, set(tensors) ^ set(reference)))
        raise _bad_field(checkpoint, field, f"holds other tensors than {what} (e.g. {odd!r})")
    for name, value in tensors.items():
        if value.shape != reference[name].shape:
            raise _bad_field(checkpoint, field, f"has {name!r} of shape {tuple(value.shape)}, "
                                                f"{what} {tuple(reference[name].shape)}")


#: The kinds of value a saved state is compared on, and their names in messages.
_KINDS = {bool: "a flag", (numbers.Real, torch.Tensor): "a number", str: "a name",
          dict: "a table", (list, tuple): "a list"}


def _layout_error(saved, fresh, where: str = "") -> str | None:
    """Where ``saved`` (a state read from a file) departs from ``fresh`` (the same object's
    state now): a number, flag or name where it has another, a list of another length.
    Keys only one side has, and None on either side, are let be (torch keeps the rest)."""
    if saved is None or fresh is None:
        return None
    if isinstance(fresh, dict) and isinstance(saved, dict):
        return next((e for k in fresh if k in saved
                     if (e := _layout_error(saved[k], fresh[k], f"{where}.{k}".lstrip(".")))),
                    None)
    if isinstance(fresh, (list, tuple)) and isinstance(saved, (list, tuple)):
        if len(saved) != len(fresh):
            return f"has {where} of {len(saved)} items, where this version keeps {len(fresh)}"
        return next((e for i, (a, b) in enumerate(zip(saved, fresh))
                     if (e := _layout_error(a, b, f"{where}[{i}]"))), None)
    kind = next((k for k in _KINDS if isinstance(fresh, k)), None)
    if kind is None or (isinstance(saved, kind) and isinstance(saved, bool) == isinstance(fresh, bool)):
        return None
    return f"has {where}={saved!r:.40}, where this version keeps {_KINDS[kind]}"


def load_state(target, saved: dict, checkpoint, field: str) -> None:
    """``target.load_state_dict(saved)`` (an optimizer or a schedule built for the run
    resumed) once ``saved`` has the layout of ``target``'s own state; else a ValueError
    naming ``field``, before torch would fail on it (at load or at a later step)."""
    error = _layout_error(saved, target.state_dict())
    if error is not None:
        raise _bad_field(checkpoint, field, error)
    target.load_state_dict(saved)


def _check_rng(saved: dict, checkpoint) -> None:
    state = saved.get("rng")
    size = torch.get_rng_state().numel()
    if state is not None and not (torch.is_tensor(state) and state.dtype == torch.uint8
                                  and state.shape == (size,)):
        got = (f"a {state.dtype} tensor of shape {tuple(state.shape)}" if torch.is_tensor(state)
               else type(state).__name__)
        raise _bad_field(checkpoint, "rng", f"is {got}, not torch's CPU generator state "
                                            f"(a uint8 tensor of {size} bytes)")
    if state is not None:
        try:  # a scratch generator: the global one is set only when training resumes
            torch.Generator().set_state(state)
        except RuntimeError as err:
            raise _bad_field(checkpoint, "rng", f"holds {size} bytes that are not a generator "
                                                f"state ({err})") from None
    cuda = saved.get("cuda_rng")
    if cuda is not None and not (isinstance(cuda, (list, tuple)) and all(
            torch.is_tensor(s) and s.dtype == torch.uint8 and s.dim() == 1 for s in cuda)):
        raise _bad_field(checkpoint, "cuda_rng", "is not a list of CUDA generator states "
                                                 "(uint8 tensors)")


def _check_history(saved: dict, step: int, checkpoint) -> None:
    rows, columns = saved.get("rows", []), saved.get("columns")
    if not isinstance(rows, (list, tuple)):
        raise _bad_field(checkpoint, "rows", f"is {type(rows).__name__}, not a list of rows")
    if not rows:
        return
    if not (isinstance(columns, (list, tuple)) and columns and all(isinstance(c, str) for c in columns)
            and {"step", "loss", "time"} <= set(columns) and len(set(columns)) == len(columns)):
        raise _bad_field(checkpoint, "columns", f"is {columns!r:.120}, not a list of distinct "
                                                "column names with step, loss and time")
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != len(columns):
            raise _bad_field(checkpoint, "rows", f"row {i} is {row!r:.80}, not {len(columns)} "
                                                 "values (one per column)")
        bad = next((v for v in row if not _is_real(v)), None)
        if bad is not None:
            raise _bad_field(checkpoint, "rows", f"row {i} holds {bad!r:.40}, not a number")
        at = row[list(columns).index("step")]
        if not (_is_int(at) and 1 <= at <= step):
            raise _bad_field(checkpoint, "rows", f"row {i} is for step {at!r}, outside 1..{step}")


def _check_optimizer(state, params, checkpoint, field: str = "optimizer") -> None:
    """The saved optimizer state: torch's layout, and (with ``params``) the same number of
    parameters and per-parameter buffers of each parameter's shape."""
    if state is None:
        return
    if not (isinstance(state, dict) and isinstance(state.get("state"), dict)
            and isinstance(state.get("param_groups"), (list, tuple))
            and all(isinstance(g, dict) and isinstance(g.get("params"), (list, tuple))
                    for g in state["param_groups"])):
        raise _bad_field(checkpoint, field, "is not an optimizer state_dict (a dict of "
                                                  "'state' and 'param_groups')")
    for group in state["param_groups"]:
        bad = next((k for k, v in group.items() if k != "params" and not _is_setting(k, v)), None)
        if bad is not None:
            raise _bad_field(checkpoint, field, f"has {bad}={group[bad]!r:.40} in a "
                                                      "parameter group, not a number")
    for i, buffers in state["state"].items():
        bad = next((k for k, v in buffers.items() if not (torch.is_tensor(v) or _is_real(v))),
                   None) if isinstance(buffers, dict) else None
        if bad is not None:
            raise _bad_field(checkpoint, field, f"has {bad}={buffers[bad]!r:.40} for "
                                                      f"parameter {i!r}, not a tensor or number")
    if params is None:
        return
    params = list(params)
    ids = [i for g in state["param_groups"] for i in g["params"]]
    if len(ids) != len(params):
        raise _bad_field(checkpoint, field, f"holds {len(ids)} parameters, the model "
                                                  f"{len(params)}")
    shape_of = {i: tuple(p.shape) for i, p in zip(ids, params)}
    for i, buffers in state["state"].items():
        if i not in shape_of or not isinstance(buffers, dict):
            raise _bad_field(checkpoint, field, f"has state for parameter {i!r}, which "
                                                      "its groups do not list")
        for key in PARAM_SHAPED & set(buffers):
            value = buffers[key]
            if not torch.is_tensor(value) or tuple(value.shape) != shape_of[i]:
                got = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
                raise _bad_field(checkpoint, field, f"has {key} of shape {got} for a "
                                                          f"parameter of shape {shape_of[i]}")
            if not value.is_floating_point():
                raise _bad_field(checkpoint, field, f"has {key} of dtype {value.dtype}, "
                                                          "not floating point")


def _is_setting(key: str, value) -> bool:
    """A parameter group's setting: a number (``lr``, ``eps``, ...; a tensor too) or a pair
    of numbers (``betas``) where :data:`NUMERIC_SETTINGS` says so; else anything plain (a
    flag, None, a name such as LBFGS's ``line_search_fn``)."""
    if torch.is_tensor(value) or (_is_real(value) and not isinstance(value, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_real(v) and not isinstance(v, bool) for v in value)
    return key not in NUMERIC_SETTINGS and (value is None or isinstance(value, (bool, str)))


#: Optimizer buffers that have their parameter's shape (Adam, AdamW, ClippedAdam, SGD).
PARAM_SHAPED = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer"}
#: Parameter-group settings that must be numbers (the others may also be flags or None).
NUMERIC_SETTINGS = {"lr", "initial_lr", "eps", "weight_decay", "betas", "momentum",
                    "dampening", "clip_norm", "lrd"}
#: Fields every version's training state has held (the first wrote exactly these).
REQUIRED_FIELDS = ("step", "seed", "rng", "optimizer", "columns", "rows")
#: Fields of a checkpoint's training state and the types they must have (None allowed
#: where the run had no such thing).
_FIELD_TYPES = {"options": dict, "scheduler": dict, "best": dict, "overrides": (list, tuple)}


def check_saved_training(saved_training, checkpoint, *, params=None, weights=None,
                         auxiliary=None) -> None:
    """Refuse a checkpoint's training state that resuming could not use, before any of it is.

    ``saved_training`` is the ``"training"`` entry of a checkpoint read for
    ``resume=True``; ``params`` (optional), the model's parameters in the optimizer's
    order, lets the optimizer state's buffers be compared with their shapes, and
``weights`` (optional, the checkpoint's state_dict) the best model's tensors, and
    ``auxiliary`` (optional), the parameters of each of the model's auxiliary parts (a
    list of lists), the field ``auxiliary`` (their optimisers) as ``optimizer``. A
    ValueError names the checkpoint and the field: a training state that is not a
    dict, a field every version wrote that is missing (step, seed, rng, optimizer,
    columns, rows), a step that is not an integer >= 0, an RNG state of the wrong type or
    size, history rows that are not numbers (or for steps past the saved step), an
    optimizer state of another layout, other shapes or settings that are not
    numbers, a seed outside 0..2**63-1, a best model of other tensors, overrides that
    are not records of a step and its changes.
    """
    if saved_training is None:
        return
    if not isinstance(saved_training, dict):
        raise _bad_field(checkpoint, "training", f"is {type(saved_training).__name__} "
                                                 f"({saved_training!r:.40}), not a dict")
    missing = [k for k in REQUIRED_FIELDS if k not in saved_training]
    if missing:
        raise _bad_field(checkpoint, missing[0], "is missing (every version wrote "
                                                 f"{', '.join(REQUIRED_FIELDS)})")
    step = saved_training.get("step", 0)
    if not (_is_int(step) and step >= 0):
        raise _bad_field(checkpoint, "step", f"is {step!r}, not an integer >= 0")
    seed = saved_training.get("seed", 0)
    if not (_is_int(seed) and 0 <= seed < 2**63):
        raise _bad_field(checkpoint, "seed", f"is {seed!r}, not an integer seed")
    for field, kind in _FIELD_TYPES.items():
        value = saved_training.get(field)
        if value is not None and not isinstance(value, kind):
            raise _bad_field(checkpoint, field, f"is {type(value).__name__}, not "
                                                f"{getattr(kind, '__name__', 'a list')}")
    bad = next((o for o in saved_training.get("overrides") or [] if not (
        isinstance(o, dict) and _is_int(o.get("step")) and isinstance(o.get("changed"), dict))),
        None)
    if bad is not None:
        raise _bad_field(checkpoint, "overrides", f"holds {bad!r:.40}, not a record of a step "
                                                  "and its changed options")
    _check_rng(saved_training, checkpoint)
    _check_best(saved_training.get("best"), checkpoint, weights)
    _check_history(saved_training, int(step), checkpoint)
    _check_optimizer(saved_training.get("optimizer"), params, checkpoint)
    _check_auxiliary(saved_training.get("auxiliary"), auxiliary, checkpoint)


def _check_auxiliary(states, auxiliary, checkpoint) -> None:
    """The auxiliary parts' optimizer states: one per part, each as :func:`_check_optimizer`."""
    if states is None:
        return
    if not isinstance(states, (list, tuple)) or (auxiliary is not None
                                                 and len(states) != len(auxiliary)):
        want = "a list" if auxiliary is None else f"a list of {len(auxiliary)}"
        raise _bad_field(checkpoint, "auxiliary", f"is {states!r:.60}, not {want} optimizer "
                                                  "state(s), one per auxiliary part")
    for i, state in enumerate(states):
        _check_optimizer(state, None if auxiliary is None else auxiliary[i], checkpoint,
                         field="auxiliary")


def upgrade(saved_options: dict) -> dict:
    """Stored options of earlier versions in today's form (the bound's K was
    ``num_particles``)."""
    bound = saved_options.get("objective")
    if isinstance(bound, dict) and "num_particles" in bound:
        bound = dict(bound)
        bound["num_samples"] = bound.pop("num_particles")
        saved_options["objective"] = bound
    return saved_options

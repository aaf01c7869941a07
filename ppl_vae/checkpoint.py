"""Checkpoints: spec + weights + package versions, loaded with ``weights_only=True``.

Only tensors and plain containers are stored, so loading never unpickles
arbitrary objects; a file that is not a ppl_vae checkpoint (including a pickle
that would run code) is refused with a ValueError before anything runs.
"""

from __future__ import annotations

import errno
import os
import tempfile
import warnings
from pathlib import Path

import pyro
import torch

from ppl_vae import _checks
from ppl_vae._version import __version__

FORMAT = "ppl_vae.checkpoint/1"


def versions() -> dict:
    return {"ppl_vae": __version__, "torch": str(torch.__version__), "pyro": str(pyro.__version__)}


def payload(model, training: dict | None = None, *, spec: dict | None = None) -> dict:
    """The dict stored on disk for ``model`` (plus optional training state); ``spec``
    replaces ``model.spec`` (a user's module has none)."""
    out = {
        "format": FORMAT,
        "spec": model.spec if spec is None else spec,
        "state_dict": model.state_dict(),
        "versions": versions(),
    }
    if training is not None:
        out["training"] = training
    return out


def check_target(path, *, name: str = "path") -> Path:
    """Raise a ValueError unless ``path`` can be (re)placed by a checkpoint file.

    Refused: a folder, a path under a file, and anything but a regular file
    (a symlink, a device such as ``/dev/full``, a FIFO) — an atomic rename would
    replace the link or node itself, not write through it. ``name`` is the
    argument the messages blame.
    """
    path = Path(path)
    if path.is_symlink():
        raise ValueError(
            f"{name}={str(path)!r} is a symbolic link: saving would replace the link, not its "
            f"target; pass the real path ({os.path.realpath(path)!r}) or a new file name"
        )
    if path.is_dir():
        raise ValueError(f"{name}={str(path)!r} is a folder: pass a file path such as "
                         f"{str(path / 'model.pt')!r}")
    if path.exists() and not path.is_file():
        raise ValueError(
            f"{name}={str(path)!r} is not a regular file (a device, FIFO or socket): pass a "
            "path to a new or existing regular file"
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(
                    f"{name}={str(path)!r} is inside {str(parent)!r}, which is a file, not a "
                    "folder: choose another path"
                )
            break
    return path


def check_checkpoint_path(path) -> Path:
    """Check ``fit(checkpoint=path)`` before training starts; return it as a Path.

    A symbolic link is followed: the checkpoint is read from and written (atomically) to
    the file it names, so the link stays valid; a link to nothing (or a loop) is refused.
    Then the refusals of :func:`save` (a folder, a FIFO or device, a path under a file),
    plus a path that is not a string or path-like, and a folder that this process may
    not write into (``os.access``, which also sees a folder made immutable or a
    read-only file system). Each is a ValueError naming ``checkpoint``.
    """
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)) or str(path) == "":
        raise ValueError(
            f"checkpoint={path!r} is invalid: pass a file path such as 'run/checkpoint.pt' "
            "(or None for no checkpoint)"
        )
    if Path(path).is_symlink():
        try:
            path = Path(path).resolve(strict=True)
        except (OSError, RuntimeError):  # RuntimeError: a loop (Python < 3.13)
            raise ValueError(
                f"checkpoint={str(path)!r} is a symbolic link to {os.readlink(path)!r}, which "
                "does not exist (or loops): pass the path of the real file, or a new file name"
            ) from None
    path = check_target(path, name="checkpoint")
    folder = next((p for p in path.parents if p.exists()), Path("."))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(
            f"checkpoint={str(path)!r} cannot be written: the folder {str(folder)!r} is not "
            "writable by this user; pass a path in a writable folder"
        )
    return path


def write_atomic(obj: dict, path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``.

    A write that fails (a full disk, no permission) leaves the previous file at
    ``path`` untouched and raises an OSError that names ``path`` and the cause.
    """
    path = check_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise OSError(
            err.errno, f"cannot write checkpoint {str(path)!r}: {err.strerror or err}; "
            "check the folder exists and is writable"
        ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        Path(tmp).unlink(missing_ok=True)
        raise _write_error(path, err) from None
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


def _write_error(path: Path, err: BaseException) -> OSError:
    """An OSError for a failed checkpoint write; torch reports a full disk as a RuntimeError."""
    code = getattr(err, "errno", None)
    text = str(err)
    full = code == errno.ENOSPC or any(
        s in text for s in ("unexpected pos", "No space left", "file write failed")
    )
    if full:
        return OSError(
            errno.ENOSPC, f"disk full while writing checkpoint {str(path)!r}: free space on "
            f"that disk or save elsewhere; the previous {path.name} (if any) is unchanged"
        )
    reason = getattr(err, "strerror", None) or (text.splitlines() or [type(err).__name__])[0][:200]
    return OSError(
        code or errno.EIO, f"cannot write checkpoint {str(path)!r} ({reason}); the previous "
        f"{path.name} (if any) is unchanged"
    )


def read(path) -> dict:
    """Load and validate a checkpoint dict; ValueError for anything else.

    The file's size is checked against the memory budget (``$PPL_VAE_MEMORY_BUDGET``)
    before it is read; only tensors and plain containers are unpickled.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path={path!r} is invalid: pass the path of a checkpoint file")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path={str(path)!r}: no such checkpoint file; check the path")
    _checks.within_budget(
        f"checkpoint {str(path)!r}", path.stat().st_size, _checks.memory_budget(),
        "pass a ppl_vae checkpoint", option=False,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about foreign pickle protocols
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError as err:
        raise ValueError(
            f"checkpoint {str(path)!r} cannot be read ({err.strerror}): check its permissions"
        ) from None
    except MemoryError:
        raise ValueError(
            f"{str(path)!r} is not a ppl_vae checkpoint and was not loaded (it claims more "
            "memory than it holds)"
        ) from None
    except Exception as err:  # noqa: BLE001 - any failure to unpickle means the same answer
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        useful = [ln for ln in lines if "Unsupported global" in ln or "WeightsUnpickler" in ln]
        first = (useful or lines or [type(err).__name__])[0]
        if isinstance(err, (KeyError, IndexError, TypeError, AttributeError)):
            first = f"unreadable data ({type(err).__name__}: {first})"
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


def save(model, path, *, factory: str | None = None) -> Path:
    """Save ``model`` (spec, weights, versions) to ``path`` atomically.

    ``path`` must be a new or existing regular file (not a folder, symlink or
    device); a failed write leaves an existing file unchanged. A user's own
    ``nn.Module`` (no ppl_vae spec) is saved as its weights plus the name of an
    importable factory that builds it, ``factory="package.module:make_model"``;
    :func:`load` rebuilds it only when the caller names that factory again (a
    file never makes ppl_vae import code by itself).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=6, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pv.save(model, Path(tmp) / "model.pt")
    ...     print(path.name, path.is_file())
    model.pt True
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path={path!r} is invalid: pass a file path such as 'model.pt'")
    if factory is not None:
        _factory_parts(factory)
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"model of type {type(model).__name__} is not a torch nn.Module: "
                             "only a module's weights can be saved with factory=")
        return write_atomic(payload(model, spec={FACTORY_KEY: factory}), path)
    if not hasattr(model, "spec") or not isinstance(model.spec, dict):
        raise ValueError(
            f"model of type {type(model).__name__} is not a ppl_vae model: save your own "
            "module as pv.save(model, path, factory='package.module:make_model') (a function "
            "that builds it), and load it with pv.load(path, factory=...)"
        )
    return write_atomic(payload(model), path)


#: The spec key of a checkpoint holding a user's module built by a named factory.
FACTORY_KEY = "factory"


def _factory_parts(factory) -> tuple[str, str]:
    if not isinstance(factory, str) or factory.count(":") != 1 or not all(factory.split(":")):
        raise ValueError(
            f"factory={factory!r} is invalid: pass 'package.module:function', a function "
            "that takes no arguments and returns the module"
        )
    module, attr = factory.split(":")
    return module, attr


def _from_factory(path, saved: str, factory, state: dict):
    """The user's module rebuilt by ``factory`` (which must be the one it was saved with)."""
    import importlib

    if factory is None:
        raise ValueError(
            f"{str(path)!r} holds a user's module saved with factory={saved!r}: pass "
            f"pv.load(path, factory={saved!r}) to rebuild it (a file never imports code by itself)"
        )
    if factory != saved:
        raise ValueError(
            f"factory={factory!r} differs from the one {str(path)!r} was saved with "
            f"({saved!r}): pass factory={saved!r}"
        )
    module, attr = _factory_parts(factory)
    try:
        make = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"factory={factory!r} cannot be imported ({err}): check the name, and "
                         "that its package is installed") from None
    model = make()
    try:
        model.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError) as err:
        raise _bad(path, f"its weights do not match what {factory} builds ({_first_line(err)})") from None
    return model


def _unregistered(spec: dict) -> str | None:
    """``'prior.kind='laplace''`` for the first part of ``spec`` no registered class has."""
    from ppl_vae import registry

    family = spec.get("family")
    if isinstance(family, str) and family not in registry.names("family"):
        return f"family={family!r}"
    tables = [(k, spec.get(k)) for k in ("prior", "likelihood", "decoder", "guide")]
    tables += [(f"penalty[{i}]", t) for i, t in enumerate(spec.get("penalty") or [])]
    for where, table in tables:
        kind = table.get("kind") if isinstance(table, dict) else None
        part = where.split("[")[0]
        if isinstance(kind, str) and kind not in registry.names(part):
            return f"{where}.kind={kind!r}"
    return None


#: The remedy of :func:`_bad` (training passes its own: resume=False).
SAVE_FIX = "save models with pv.save(model, path) and do not edit the file"


def _bad(path, what: str, fix: str = SAVE_FIX) -> ValueError:
    return ValueError(f"{str(path)!r} is not a usable ppl_vae checkpoint: {what}; {fix}")


def _first_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return (lines[1] if len(lines) > 1 and lines[0].endswith(":") else lines[0])[:200] if lines else type(err).__name__


def load(path, *, device=None, factory: str | None = None):
    """Rebuild a model saved by :func:`save` (or a training checkpoint).

    A user's module saved with ``factory=`` is rebuilt by calling that factory, which
    the caller names again (``pv.load(path, factory="package.module:make_model")``).

    The stored spec must be a dict (data, never a path to read); the stored
    tensors are checked against the shapes that spec implies — on a model built
    on the ``meta`` device, which allocates nothing — before the real model is built.
    Tensors are read onto the CPU (a checkpoint written on a GPU loads on a
    CPU-only machine); ``device`` ("auto", "cpu", "cuda[:N]") moves the model.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import torch
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=6, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     again = pv.load(pv.save(model, Path(tmp) / "model.pt"))
    >>> again.spec == model.spec
    True
    >>> all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
    ...                                        again.state_dict().values()))
    True
    """
    from ppl_vae import _device
    from ppl_vae.models.build import build, skeleton

    dev = _device.resolve(device)
    spec, state = contents(path, read(path))
    if set(spec) == {FACTORY_KEY}:
        model = _from_factory(path, spec[FACTORY_KEY], factory, state)
        return model.to(dev) if dev is not None else model
    missing = _unregistered(spec)
    if missing is not None:
        raise ValueError(
            f"{str(path)!r} names {missing}, a part that is not registered in this process: "
            "import the module that registers it (@pv.register) before pv.load — on the "
            "command line, --import MODULE"
        )
    try:
        _, shell = skeleton(spec)
    except ValueError as err:
        raise _bad(path, f"its spec is invalid ({err})") from None
    if shell is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # copying into meta tensors is a no-op
                shell.load_state_dict(state)
        except (RuntimeError, ValueError, KeyError) as err:
            if not isinstance(err, RuntimeError) or "loading state_dict" in str(err):
                raise _bad(path, f"its weights do not match its spec ({_first_line(err)})") from None
            # another error: a part that needs real values; the real load below checks
    model = load_weights(build(spec), state, path)
    return model.to(dev) if dev is not None else model


def contents(path, obj: dict, *, fix: str = SAVE_FIX) -> tuple[dict, dict]:
    """``(spec, state_dict)`` of a checkpoint dict read from ``path``; a ValueError naming
    the field when the spec is not a dict or the state_dict not a dict of tensors."""
    spec, state = obj.get("spec"), obj.get("state_dict")
    if not isinstance(spec, dict):
        raise _bad(path, f"its spec is {type(spec).__name__}, not a dict", fix)
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()
    ):
        raise _bad(path, "its state_dict is missing or holds something other than tensors", fix)
    return spec, state


def load_weights(model, state: dict, path, *, fix: str = SAVE_FIX):
    """``model`` with ``state`` loaded; a ValueError naming ``path`` when they do not match."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError) as err:
        raise _bad(path, f"its weights do not match its spec ({_first_line(err)})", fix) from None
    return model

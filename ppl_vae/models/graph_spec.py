"""Model graphs in a spec: ``[latent.NAME]``, ``[input.NAME]``, ``[decoder] parents``, the guide.

A spec with a ``latent`` table declares a directed acyclic graph of latent variables::

    [latent.z2]                 # a latent; its name is its Pyro site name
    dim = 50
    prior = { kind = "standard_normal" }

    [latent.z1]
    dim = 100
    parents = ["z2"]            # p(z1 | z2): a latent_prior part (ppl_vae.parts.graph_priors)
    prior = { kind = "normal", hidden = [100, 100], activation = "tanh", scale = "net" }

    [decoder]                   # p(x | parents)
    parents = ["z1"]

``[input.NAME]`` declares an observed covariate (``kind = "categorical"`` with
``num_classes``, or ``"real"`` with ``dim``) that priors and the decoder may name as
parents; ``[latent.NAME] kind = "categorical"`` (``num_classes``) is a discrete root
latent, observed when labels are passed and enumerated when not; its ``classify = α``
adds α · log q(y | x) per labelled datapoint to the training objective (Kingma et al.
2014's classification term, Eq. 9), as a ``penalty_classify`` factor. Their values are the
``y`` argument of the model, so a graph holds at most one of them.

``[guide]`` (kind ``amortized``) gives every latent its own encoder, in an order:
categorical latents first, then the continuous ones ``bottom_up`` (children before
parents, the default: q(z1 | x) q(z2 | z1, x)) or ``top_down`` (q(z2 | x) q(z1 | z2, x)).
Each encoder reads x, the inputs, the categorical latents and its neighbours in the
graph that the guide has already drawn; ``[guide.NAME]`` overrides ``hidden``,
``activation``, ``covariance``, ``flow`` and ``given`` (what the encoder reads) for one.
``kind = "local"`` instead gives every continuous latent free per-datapoint parameters
(``covariance``, ``init_scale``, a shared ``flow``), as the one-latent ``local`` guide.

:func:`resolve` validates all of it (a cycle, an unknown parent, an unused latent:
a ValueError naming it) and returns the resolved tables.
"""

from __future__ import annotations

from ppl_vae import _checks
from ppl_vae import spec as spec_mod

LATENT_KINDS = ("continuous", "categorical")
INPUT_KINDS = ("categorical", "real")
GUIDE_ORDERS = ("bottom_up", "top_down")
GUIDE_KINDS = ("amortized", "local")
_GUIDE_KEYS = ("hidden", "activation", "covariance", "flow")
#: Names a latent or input cannot take (the observation, and keys of the [guide] table).
RESERVED = frozenset({"x", "kind", "order", *_GUIDE_KEYS})
#: Top-level keys of a graph spec.
TOP_KEYS = ("family", "data_dim", "seed", "beta", "latent", "input", "decoder", "likelihood",
            "guide", "objective", "penalty")


def _name(where: str, name) -> str:
    if not isinstance(name, str) or not name.isidentifier() or name in RESERVED \
            or name.startswith("penalty"):
        raise ValueError(
            f"{where} name {name!r} is invalid: use an identifier other than "
            f"{', '.join(sorted(RESERVED))} and not starting with 'penalty'"
        )
    return name


def _names(where: str, value) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}={value!r} is invalid: pass a list of names, e.g. ['z2']")
    if len(set(value)) != len(value):
        raise ValueError(f"{where}={list(value)!r} names a parent twice: list each once")
    return list(value)


def _table(where: str, table) -> dict:
    if not isinstance(table, dict):
        raise ValueError(f"[{where}] must be a table, got {table!r}")
    return table


def _inputs(tables) -> dict:
    out = {}
    for name, table in _table("input", tables).items():
        where = f"input.{_name('input', name)}"
        table = _table(where, table)
        kind = _checks.one_of(f"{where}.kind", table.get("kind"), INPUT_KINDS)
        if kind == "categorical":
            spec_mod.check_keys(table, {"kind", "num_classes"}, f"{where}.")
            out[name] = {"kind": kind, "num_classes": _checks.positive_int(
                f"{where}.num_classes", table.get("num_classes"), minimum=2,
                fix="pass the number of classes, an integer >= 2")}
        else:
            spec_mod.check_keys(table, {"kind", "dim"}, f"{where}.")
            out[name] = {"kind": kind, "dim": _checks.positive_int(f"{where}.dim", table.get("dim"))}
    return out


def _latent(name: str, table) -> dict:
    where = f"latent.{name}"
    table = _table(where, table)
    kind = _checks.one_of(f"{where}.kind", table.get("kind", "continuous"), LATENT_KINDS)
    parents = _names(f"{where}.parents", table.get("parents", []))
    if kind == "categorical":
        spec_mod.check_keys(table, {"kind", "num_classes", "parents", "class_weights", "classify"},
                            f"{where}.")
        if parents:
            raise ValueError(
                f"{where}.parents={parents!r}: a categorical latent is a root of the graph "
                f"(p(y) = Cat(pi)); drop its parents"
            )
        classes = _checks.positive_int(f"{where}.num_classes", table.get("num_classes"), minimum=2,
                                       fix="pass the number of classes, an integer >= 2")
        weights = _checks.one_of(f"{where}.class_weights", table.get("class_weights", "uniform"),
                                 ("uniform", "learned"))
        classify = _checks.finite_number(f"{where}.classify", table.get("classify", 0.0), minimum=0)
        return {"kind": kind, "num_classes": classes, "parents": [], "class_weights": weights,
                "classify": classify}
    spec_mod.check_keys(table, {"kind", "dim", "parents", "prior"}, f"{where}.")
    if "dim" not in table:
        raise ValueError(f"[{where}] has no dim: add dim = <its size>, e.g. dim = 8")
    dim = _checks.positive_int(f"{where}.dim", table["dim"])
    default = {"kind": "normal"} if parents else {"kind": "standard_normal"}
    prior = table.get("prior", default)
    flow = None
    if isinstance(prior, dict) and "flow" in prior:
        prior = dict(prior)
        flow = prior.pop("flow")
    prior = spec_mod.resolve_part("latent_prior", prior, where=f"{where}.prior")
    if flow is not None:  # checked where it is built (parts.flows); kept as written
        prior["flow"] = flow
    return {"kind": kind, "dim": dim, "parents": parents, "prior": prior}


def width(node: dict) -> int:
    """The width of a latent's or input's value as a parent (one-hot for categorical)."""
    return node["num_classes"] if node["kind"] == "categorical" else node["dim"]


def topological(latents: dict) -> list[str]:
    """Latent names, parents first (ties in declaration order); ValueError naming a cycle."""
    order, done = [], set()

    def visit(name, path):
        if name in done:
            return
        if name in path:
            cycle = path[path.index(name):] + [name]
            raise ValueError(
                f"the latent graph has a cycle: {' -> '.join(cycle)} (each is a parent of the "
                "next); a model graph must be acyclic, drop one of these parents"
            )
        for parent in latents[name]["parents"]:
            if parent in latents:
                visit(parent, path + [name])
        done.add(name)
        order.append(name)

    for name in latents:
        visit(name, [])
    return order


def _check_parents(where: str, parents, latents: dict, inputs: dict) -> None:
    for parent in parents:
        if parent not in latents and parent not in inputs:
            raise ValueError(
                f"{where} names {parent!r}, which is neither a latent nor an input (latents: "
                f"{', '.join(latents)}; inputs: {', '.join(inputs) or 'none'}): declare "
                f"[latent.{parent}] or [input.{parent}], or fix the name"
            )


def _check_used(latents: dict, inputs: dict, decoder_parents) -> None:
    used = set(decoder_parents)
    for node in latents.values():
        used.update(node["parents"])
    for name in [*latents, *inputs]:
        if name not in used:
            table = "latent" if name in latents else "input"
            raise ValueError(
                f"{table} {name!r} is unused: no latent names it as a parent and it is not a "
                f"decoder parent; add it to [decoder] parents or to a latent's parents, or "
                f"remove [{table}.{name}]"
            )


def _check_label_carriers(latents: dict, inputs: dict) -> None:
    carriers = [*inputs, *(n for n, t in latents.items() if t["kind"] == "categorical")]
    if len(carriers) > 1:
        raise ValueError(
            f"the graph has {len(carriers)} label-carrying variables ({', '.join(carriers)}), but "
            "the model takes one y argument: declare at most one input or categorical latent"
        )


def _decoder(raw: dict, latents: dict, inputs: dict, order: list[str]) -> dict:
    table = dict(_table("decoder", raw.get("decoder")))
    if "parents" in table:
        parents = _names("decoder.parents", table.pop("parents"))
    else:  # the latents no other latent depends on
        parents = [n for n in order if not any(n in t["parents"] for t in latents.values())]
    if not parents:
        raise ValueError("decoder.parents=[] is invalid: name the latents x depends on")
    _check_parents("decoder.parents", parents, latents, inputs)
    return {**spec_mod.resolve_part("decoder", table, where="decoder"), "parents": parents}


def guide_sequence(latents: dict, order: list[str], direction: str) -> list[str]:
    """The guide's order: categorical latents, then the continuous ones in ``direction``."""
    discrete = [n for n in order if latents[n]["kind"] == "categorical"]
    continuous = [n for n in order if latents[n]["kind"] != "categorical"]
    return discrete + (continuous[::-1] if direction == "bottom_up" else continuous)


def _default_given(name: str, latents: dict, inputs: dict, earlier: list[str]) -> list[str]:
    given = ["x", *inputs]
    if latents[name]["kind"] == "categorical":
        return given
    for other in earlier:
        node = latents[other]
        neighbour = other in latents[name]["parents"] or name in node["parents"]
        if node["kind"] == "categorical" or neighbour:
            given.append(other)
    return given


def _guide(raw: dict, latents: dict) -> dict:
    """The resolved ``[guide]``: the shared settings, ``order``, and per latent only the keys
    its ``[guide.NAME]`` table writes (so an override of the shared settings reaches every
    latent that does not set its own)."""
    table = dict(_table("guide", raw.get("guide") or {"kind": "amortized"}))
    kind = _checks.one_of("guide.kind", table.get("kind"), GUIDE_KINDS)
    if kind == "local":
        return _local_guide(table, latents)
    direction = _checks.one_of("guide.order", table.pop("order", "bottom_up"), GUIDE_ORDERS)
    overrides = {name: dict(_table(f"guide.{name}", table.pop(name))) for name in list(table)
                 if name in latents}
    out = {**spec_mod.resolve_part("guide", table, where="guide"), "order": direction}
    for name, over in overrides.items():
        spec_mod.check_keys(over, {*_GUIDE_KEYS, "given"}, f"guide.{name}.")
        if "given" in over:
            over["given"] = _names(f"guide.{name}.given", over["given"])
        out[name] = over
    return out


def _local_guide(table: dict, latents: dict) -> dict:
    """``guide.kind = "local"``: free parameters q(z | θᵢ) per training datapoint for every
    latent, mean-field across latents (no order, nothing read but the row index)."""
    for name, node in latents.items():
        if node["kind"] == "categorical":
            raise ValueError(
                f"guide.kind='local' cannot serve the categorical latent {name!r}: summing it "
                "out needs q(y | x) from an encoder; set guide.kind = 'amortized'"
            )
        if node["prior"]["kind"] == "vamp":
            raise ValueError(
                f"latent.{name}.prior.kind='vamp' pushes pseudo-inputs through an encoder, which "
                "guide.kind='local' does not have; set guide.kind = 'amortized'"
            )
    # the resolved spec writes the default order back, which must read again
    if table.get("order", "bottom_up") == "bottom_up":
        table.pop("order", None)
    extra = sorted(k for k in table if k in latents or k == "order")
    if extra:
        raise ValueError(
            f"guide.kind='local' takes no {extra}: a local guide has no encoders to order or "
            "override; drop those keys (or set guide.kind = 'amortized')"
        )
    return {**spec_mod.resolve_part("guide", table, where="guide"), "order": "bottom_up"}


def encoders(spec: dict) -> dict:
    """Each latent's encoder settings ``{name: {hidden, activation, covariance, flow, given}}``:
    its ``[guide.NAME]`` keys over the shared ``[guide]`` ones; ``given`` (what it reads)
    by default x, the input, the categorical latents and the graph neighbours drawn before
    it. A ValueError names a ``given`` entry the encoder cannot read."""
    latents, inputs, guide = spec["latent"], spec["input"], spec["guide"]
    sequence = guide_sequence(latents, topological(latents), guide["order"])
    if guide["kind"] == "local":  # one parameter table per latent; x gives the rows
        shared = {k: v for k, v in guide.items() if k not in ("kind", "order")}
        return {name: {**shared, "given": ["x"]} for name in sequence}
    out = {}
    for i, name in enumerate(sequence):
        over = guide.get(name, {})
        allowed = ["x", *inputs, *sequence[:i]]
        given = over.get("given", _default_given(name, latents, inputs, sequence[:i]))
        for g in given:
            if g not in allowed:
                raise ValueError(
                    f"guide.{name}.given names {g!r}, which the encoder of {name!r} cannot read: "
                    f"in the guide order {sequence} it may read {allowed}"
                )
        if not given:
            raise ValueError(f"guide.{name}.given=[] is invalid: the encoder must read something")
        out[name] = {**{k: over.get(k, guide[k]) for k in _GUIDE_KEYS}, "given": list(given)}
    return out


def _check_vamp(latents: dict, settings: dict) -> None:
    for name, node in latents.items():
        if node["kind"] == "continuous" and node["prior"]["kind"] == "vamp" \
                and settings[name]["given"] != ["x"]:
            raise ValueError(
                f"latent.{name}.prior.kind='vamp' pushes pseudo-inputs through the encoder of "
                f"{name!r}, which must read x alone, but it reads {settings[name]['given']}: set "
                f"guide.{name}.given = ['x'] (or guide.order so that it is encoded first)"
            )


def _check_objective(objective: dict, penalties: list) -> None:
    terms = [k for k in ("mi", "tc", "dimwise_kl") if objective[k] != 0.0]
    if terms or penalties:
        what = ", ".join(f"objective.{k}" for k in terms) or "[[penalty]]"
        raise ValueError(
            f"{what} is not defined on a model graph (the minibatch decomposition and the "
            "penalties read one latent z): drop it, or declare the model with latent_dim "
            "and [prior] instead of [latent.*] tables"
        )


def resolve(raw: dict, *, objective_of) -> dict:
    """The resolved graph spec from a raw one (merged onto its family's preset).

    ``objective_of(raw) -> (objective, beta, penalties)`` resolves the ``[objective]``
    table the family's way.
    """
    spec_mod.check_keys(raw, set(TOP_KEYS), "")
    for table in ("likelihood", "decoder"):
        if table not in raw:
            raise ValueError(f"spec has no [{table}] table; add one with a 'kind' key")
    inputs = _inputs(raw.get("input", {}))
    latents = {}
    for name, table in _table("latent", raw["latent"]).items():
        if name in inputs:
            raise ValueError(f"{name!r} is both a latent and an input: rename one")
        latents[_name("latent", name)] = _latent(name, table)
    if not latents:
        raise ValueError("[latent] declares no latent: add a [latent.NAME] table with dim = ...")
    for name, node in latents.items():
        _check_parents(f"latent.{name}.parents", node["parents"], latents, inputs)
    order = topological(latents)
    decoder = _decoder(raw, latents, inputs, order)
    _check_used(latents, inputs, decoder["parents"])
    _check_label_carriers(latents, inputs)
    guide = _guide(raw, latents)
    objective, beta, penalties = objective_of(raw)
    _check_objective(objective, penalties)
    out = {
        "family": raw["family"],
        "data_dim": _checks.positive_int("data_dim", raw.get("data_dim", 64)),
        "seed": _checks.seed("seed", raw.get("seed", 0)),
        "latent": latents, "input": inputs, "decoder": decoder,
        "likelihood": spec_mod.resolve_part("likelihood", raw["likelihood"], where="likelihood"),
        "guide": guide, "objective": objective, "beta": beta, "penalty": [],
    }
    _check_vamp(latents, encoders(out))
    return out

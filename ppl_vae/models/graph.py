"""A model graph as a Pyro program: latents in ancestral order, x given its parents.

From a resolved graph spec (:mod:`ppl_vae.models.graph_spec`)::

    model:  with plate("data"):
                for z in topological order:   z ~ p(z | parents(z))   (site z, weight kl)
                x ~ p(x | f[parents(x)])                              (site x, observed)
    guide:  with plate("data"):
                for z in the guide order:     z ~ q(z | given(z))     (site z, weight kl)

Parents enter a network concatenated in the order their list names them (a categorical
value as a one-hot row). A categorical latent is observed (``obs=y``) when labels are
passed; otherwise the guide draws it from q(y | x) marked for parallel enumeration, so
``TraceEnum_ELBO`` (training) and ``pv.infer`` sum over its classes exactly. The
``[objective] kl`` weight scales every continuous latent site of model and guide; a
categorical latent's sites are not scaled (enumeration needs one scale on every factor
that touches the enumerated variable).
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro import poutine
from torch import nn

from ppl_vae import _checks, _device, _runtime, _seed, registry
from ppl_vae.models import graph_spec
from ppl_vae.parts.base import Context
from ppl_vae.parts.graph_priors import ClassPrior, FlowLatent, LatentContext
from ppl_vae.parts.guides import AmortizedGuide, LocalGuide
from ppl_vae.parts.networks import mlp
from ppl_vae.parts.objective import Objective


class Classifier(nn.Module):
    """q(y | given) = Cat(softmax(MLP(given))): the encoder of a categorical latent."""

    def __init__(self, in_dim: int, num_classes: int, hidden, activation: str, where: str):
        super().__init__()
        self.net = mlp(in_dim, hidden, num_classes, activation, where=where)

    def distribution(self, given: torch.Tensor) -> dist.Distribution:
        return dist.Categorical(logits=self.net(given))


class GraphModel(nn.Module):
    """A Pyro model/guide pair for a model graph (build with ``pv.build``)."""

    max_plate_nesting = 1
    enumerate = False
    requires_labels = False
    amortized = True  # one encoder per latent
    streamable = True
    data_plate = "data"
    class_structured = False  # a class latent's prior is ClassPrior, not a Gaussian per class
    partial_labels = False

    def __init__(self, spec: dict, parts: dict):
        super().__init__()
        self.spec = spec
        self.latents, self.inputs = spec["latent"], spec["input"]
        self.nodes = {**self.inputs, **self.latents}
        self.order = graph_spec.topological(self.latents)
        self.guide_order = graph_spec.guide_sequence(self.latents, self.order,
                                                     spec["guide"]["order"])
        #: What each latent's encoder reads (x, the input, latents drawn before it).
        self.given = {name: s["given"] for name, s in graph_spec.encoders(spec).items()}
        carriers = [*self.inputs, *(n for n in self.order
                                    if self.latents[n]["kind"] == "categorical")]
        self.label = carriers[0] if carriers else None
        self.priors = nn.ModuleDict(parts["priors"])
        self.encoders = nn.ModuleDict(parts["encoders"])
        self.decoder = parts["decoder"]
        self.likelihood = parts["likelihood"]
        self.objective: Objective = parts["objective"]
        for name, prior in self.priors.items():
            if prior.needs_encoder:
                prior.attach(self.encoders[name].distribution)

    # -- sizes -------------------------------------------------------------
    @property
    def data_dim(self) -> int:
        return self.spec["data_dim"]

    @property
    def num_classes(self) -> int | None:
        """Classes of the labels ``y`` (a categorical input or latent), else None."""
        node = self.nodes.get(self.label)
        return node["num_classes"] if node and node["kind"] == "categorical" else None

    @property
    def latent_sites(self) -> tuple[str, ...]:
        """The continuous latent sites, which carry the KL weight."""
        return tuple(n for n in self.order if self.latents[n]["kind"] != "categorical")

    @property
    def kl_weight(self) -> float:
        """``objective.kl``: the weight of every latent's KL term in the training loss."""
        return self.objective.kl

    @property
    def penalized(self) -> bool:
        """The loss adds objective terms to the ELBO (graphs refuse them today)."""
        return self.objective.active

    @property
    def auxiliary_parts(self) -> tuple:
        """Penalties with an optimiser of their own: none (graphs take no penalties)."""
        return self.objective.auxiliary_parts

    # -- the Pyro program ----------------------------------------------------
    def _plate(self, x, idx, num_data):
        size = num_data if num_data is not None else x.shape[0]
        return pyro.plate("data", size, subsample=idx, dim=-1)

    def _kl_scale(self) -> float:
        return self.kl_weight if _runtime.penalties_enabled() else 1.0

    def _inputs(self, y) -> dict:
        if not self.inputs:
            return {}
        if y is None:
            raise ValueError(
                f"the model is conditioned on input {self.label!r}: pass its values as y="
            )
        return {self.label: y}

    def _parent_value(self, name: str, values: dict) -> torch.Tensor:
        value = values[name]
        node = self.nodes.get(name)
        if node is not None and node["kind"] == "categorical":
            return F.one_hot(value.long(), node["num_classes"]).to(self._dtype())
        return value

    def _dtype(self) -> torch.dtype:
        return _device.of(self)[1] or torch.get_default_dtype()

    def concat(self, names, values: dict) -> torch.Tensor:
        """The values of ``names`` concatenated on the last dim, batch dims broadcast."""
        parts = [self._parent_value(n, values) for n in names]
        if len(parts) == 1:
            return parts[0]
        shape = torch.broadcast_shapes(*(p.shape[:-1] for p in parts))
        return torch.cat([p.expand(*shape, p.shape[-1]) for p in parts], dim=-1)

    def _latent_sites(self, y) -> dict:
        """Every latent drawn from its prior in ancestral order (inside the data plate)."""
        values = self._inputs(y)
        for name in self.order:
            node = self.latents[name]
            if node["kind"] == "categorical":
                values[name] = pyro.sample(name, self.priors[name].distribution(), obs=y)
                continue
            parents = self.concat(node["parents"], values) if node["parents"] else None
            with poutine.scale(scale=self._kl_scale()):
                values[name] = pyro.sample(name, self.priors[name].distribution(parents))
        return values

    def _px(self, values: dict) -> dist.Distribution:
        return self.likelihood.distribution(
            self.decoder(self.concat(self.spec["decoder"]["parents"], values)))

    def model(self, x, y=None, *, idx=None, num_data=None):
        """p(x, z₁, …) for a batch ``x [B, D]``; ``y`` the labels or inputs, if any."""
        with self._plate(x, idx, num_data):
            values = self._latent_sites(y)
            pyro.sample("x", self._px(values), obs=x)
            if y is not None and _runtime.penalties_enabled():
                self._classify_site(x, y, values)
        return values

    def _classify_site(self, x, y, values) -> None:
        """α · log q(y | x) on labelled data: ``[latent.y] classify = α`` (a penalty factor,
        so the inference utilities leave it out of log p(x))."""
        node = self.latents.get(self.label)
        if node is None or not node.get("classify"):
            return
        given = self.concat(self.given[self.label], {"x": x, **values})
        q = self.encoders[self.label].distribution(given)
        pyro.factor(f"{_runtime.PENALTY_PREFIX}_classify", node["classify"] * q.log_prob(y))

    def guide(self, x, y=None, *, idx=None, num_data=None):
        """q(z₁, … | x): one amortized encoder per latent, in the guide order (or, with a
        local guide, the parameters of the rows ``idx``)."""
        with self._plate(x, idx, num_data):
            values = {"x": x, **self._inputs(y)}
            for name in self.guide_order:
                given = self.concat(self.given[name], values)
                if self.latents[name]["kind"] == "categorical":
                    q = self.encoders[name].distribution(given)
                    values[name] = y if y is not None else pyro.sample(
                        name, q, infer={"enumerate": "parallel"})
                    continue
                q = self.encoders[name].distribution(given, idx)  # idx: a local guide's rows
                with poutine.scale(scale=self._kl_scale()):
                    values[name] = pyro.sample(name, q)
        return values

    # -- using the model -----------------------------------------------------
    def decode(self, z, *, latent: str | None = None, y=None) -> dist.Distribution:
        """p(x | ·) from the values of some latents.

        ``z`` is a dict ``{name: value}``, or one latent's values ``[M, dim]``: of
        ``latent`` (by default the decoder's only parent). Latents not given take their
        prior mean given their parents, in ancestral order (exact for the decoder's
        parents; for a latent further up, e.g. ``latent="z2"``, the mean of p(z1 | z2)
        is decoded: the usual way to look at a hierarchy's upper layer). Labels or
        inputs the decoder needs come as ``y``.
        """
        parents = self.spec["decoder"]["parents"]
        if not isinstance(z, dict):
            if latent is None and len(parents) != 1:
                raise ValueError(
                    f"the decoder reads {parents}: pass decode({{name: value}}) or latent=<name>"
                )
            z = {latent or parents[0]: z}
        values = self._given(z)
        rows = next(iter(values.values())).shape[0]
        if y is not None:
            values[self.label] = self._check_labels(y, rows)
        elif self.label is not None and self.label not in values:
            raise ValueError(f"decoding needs the values of {self.label!r}: pass y= (or it in z)")
        for name in self.order:
            if name not in values:
                parents_of = self.latents[name]["parents"]
                pa = self.concat(parents_of, values) if parents_of else None
                values[name] = self.priors[name].distribution(pa).mean
        return self._px(values)

    def _given(self, z: dict) -> dict:
        """The values of ``z`` checked against the graph and moved to the model."""
        device, dtype = _device.of(self)
        values = {}
        for name, value in z.items():
            if name not in self.nodes:
                raise ValueError(f"decode: {name!r} is not a latent or input of the model graph "
                                 f"({', '.join(self.nodes)})")
            value = torch.as_tensor(value)
            if self.nodes[name]["kind"] == "categorical":
                values[name] = _device.move(value, device)
                continue
            width = graph_spec.width(self.nodes[name])
            if value.shape[-1] != width:
                raise ValueError(
                    f"decode: {name} has {value.shape[-1]} columns but the latent has dim {width}"
                )
            values[name] = _device.move(value, device, dtype)
        return values

    @torch.no_grad()
    def sample(self, n: int, *, noise: bool = False, seed: int | None = None, y=None):
        """Ancestral samples ``[n, D]`` through the whole graph: decoder means (plus noise)."""
        n = _checks.positive_int("n", n)
        if y is not None:
            y = self._check_labels(y, n)
        with _seed.seeded(seed), pyro.plate("data", n, dim=-1):
            px = self._px(self._latent_sites(y))
            return px.sample() if noise else px.mean

    # -- hooks used by pv.fit and pv.infer -------------------------------------
    def _check_labels(self, y, n: int) -> torch.Tensor:
        node = self.nodes.get(self.label)
        if node is None:
            raise ValueError(
                "y was given, but the model graph has no input or categorical latent: drop y"
            )
        device, dtype = _device.of(self)
        if node["kind"] == "categorical":
            labels = _checks.label_tensor("y", y, n=n, num_classes=node["num_classes"])
            return _device.move(labels, device)
        values = _checks.data_tensor("y", y, dim=node["dim"])
        if values.shape[0] != n:
            raise ValueError(f"y has {values.shape[0]} rows but x has {n}: pass one row per datapoint")
        return _device.move(values, device, dtype)

    def check_data(self, x, y=None, *, name="x"):
        """Validated ``x`` (and ``y``) on the model's device and dtype; ValueError on bad input."""
        x = _checks.data_tensor(name, x, dim=self.data_dim)
        self.likelihood.check_data(x, name)
        if y is not None:
            y = self._check_labels(y, x.shape[0])
        return _device.move(x, *_device.of(self)), y

    def initialize(self, x, y=None, *, seed=None):
        """Nothing to prepare: every encoder is amortized."""

    def guide_fits(self, x) -> bool:
        """Always: every encoder is amortized."""
        return True

    def exact_log_prob(self, x, y=None) -> torch.Tensor:
        """Closed-form log p(x) ``[N]`` of a linear-Gaussian graph (log p(x | y) given inputs,
        log p(x, y) given the labels of a categorical latent); NotImplementedError naming
        what is not linear-Gaussian otherwise."""
        from ppl_vae.models.graph_exact import log_marginal

        return log_marginal(self, x, y)


class ConditionalGraphModel(GraphModel):
    """A model graph with an input (a conditional VAE): every call needs ``y``."""

    requires_labels = True


class SemiSupervisedGraphModel(GraphModel):
    """A model graph with a categorical latent, enumerated when unlabelled (M2)."""

    enumerate = True
    partial_labels = True  # y = -1 marks an unlabelled row


class LocalGraphModel(GraphModel):
    """A model graph whose guide holds free parameters per training datapoint for every
    latent (``guide.kind = "local"``): sized to the data by :meth:`initialize`."""

    amortized = False
    streamable = False

    def initialize(self, x, y=None, *, seed=None):
        """Size every latent's local parameters to the rows of ``x``."""
        for encoder in self.encoders.values():
            encoder.initialize(x)

    def guide_fits(self, x) -> bool:
        """True when the local parameters are sized for exactly ``len(x)`` datapoints."""
        return all(encoder.fits(x) for encoder in self.encoders.values())


class LocalConditionalGraphModel(LocalGraphModel, ConditionalGraphModel):
    """A conditional model graph (an input) with a local guide."""


def _encoder(spec: dict, name: str, table: dict, widths: dict):
    node = spec["latent"][name]
    in_dim = sum(widths[g] for g in table["given"])
    if node["kind"] == "categorical":
        return Classifier(in_dim, node["num_classes"], table["hidden"], table["activation"],
                          where=f"guide.{name}")
    if spec["guide"]["kind"] == "local":
        return LocalGuide(Context(in_dim, node["dim"]), covariance=table["covariance"],
                          init_scale=table["init_scale"], flow=table["flow"])
    return AmortizedGuide(Context(in_dim, node["dim"]), hidden=table["hidden"],
                          activation=table["activation"], covariance=table["covariance"],
                          flow=table["flow"])


def _options(table: dict, drop=("kind",)) -> dict:
    return {k: v for k, v in table.items() if k not in drop}


def build_graph(spec: dict) -> GraphModel:
    """The model of a resolved graph spec (its parts drawn from the current random state)."""
    latents, data_dim = spec["latent"], spec["data_dim"]
    widths = {"x": data_dim, **{n: graph_spec.width(t) for n, t in
                                {**spec["input"], **latents}.items()}}
    priors = {}
    for name in graph_spec.topological(latents):
        node = latents[name]
        if node["kind"] == "categorical":
            priors[name] = ClassPrior(node["num_classes"], node["class_weights"], f"latent.{name}")
            continue
        parents = [spec["input"].get(p) or latents[p] for p in node["parents"]]
        classes = parents[0]["num_classes"] if len(parents) == 1 and \
            parents[0]["kind"] == "categorical" else None
        ctx = LatentContext(name, node["dim"], sum(widths[p] for p in node["parents"]), data_dim,
                            classes)
        priors[name] = registry.get("latent_prior", node["prior"]["kind"])(
            ctx, **_options(node["prior"], ("kind", "flow")))
        if "flow" in node["prior"]:
            priors[name] = FlowLatent(priors[name], node["prior"]["flow"],
                                      where=f"latent.{name}.prior.flow")
    encoders = {name: _encoder(spec, name, table, widths)
                for name, table in graph_spec.encoders(spec).items()}
    decoder_in = sum(widths[p] for p in spec["decoder"]["parents"])
    # the likelihood first: the decoder outputs its params_per_dim blocks of data_dim values
    likelihood = registry.get("likelihood", spec["likelihood"]["kind"])(
        Context(data_dim, decoder_in), **_options(spec["likelihood"]))
    parts = {
        "priors": priors,
        "encoders": encoders,
        "decoder": registry.get("decoder", spec["decoder"]["kind"])(
            Context(data_dim, decoder_in, params_per_dim=likelihood.params_per_dim),
            **_options(spec["decoder"], ("kind", "parents"))),
        "likelihood": likelihood,
        "objective": Objective(spec["objective"], []),
    }
    local = spec["guide"]["kind"] == "local"
    if spec["input"]:
        cls = LocalConditionalGraphModel if local else ConditionalGraphModel
    elif any(t["kind"] == "categorical" for t in latents.values()):
        cls = SemiSupervisedGraphModel  # a local guide is refused for it in graph_spec
    else:
        cls = LocalGraphModel if local else GraphModel
    return cls(spec, parts)

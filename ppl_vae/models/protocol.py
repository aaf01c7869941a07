"""What a ppl_vae model offers: the contract ``pv.fit``, ``pv.infer`` and the CLI rely on.

Every built-in model (:class:`~ppl_vae.models.latent.LatentVariableModel` and its
subclasses, :class:`~ppl_vae.models.gmm.GaussianMixture`) declares each member
below itself, capability flags included, as class attributes; callers read them
directly instead of probing with ``getattr`` defaults. A new model class is
checked with ``isinstance(model, pv.models.Model)`` (the test suite does this for
every preset). See ``docs/design.md``, "The model contract".
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Model(Protocol):
    """A Pyro model/guide pair built from a spec.

    Capabilities (class attributes)
    -------------------------------
    max_plate_nesting : int
        Plates nested in :meth:`model` (the ``data`` plate counts as one); passed
        to the ELBO.
    enumerate : bool
        True when the model has discrete sites marked for parallel enumeration, so
        training uses ``TraceEnum_ELBO`` instead of ``Trace_ELBO``.
    requires_labels : bool
        True when training needs class labels ``y``.
    amortized : bool
        True when the guide can score data it was not trained on (an encoder, or no
        per-datapoint parameters): validation data and new points.
    streamable : bool
        True when training can fetch its data batch by batch (nothing data-sized is
        prepared from the whole set up front: no local parameters, no k-means start).
    latent_sites : tuple of str
        The latent sites whose terms the KL weight (and KL warm-up) scales.
    penalized : bool
        True when the training loss adds terms or penalties to the ELBO (only the
        ELBO can then be optimised).
    auxiliary_parts : tuple
        Parts that train parameters of their own with an optimiser of their own
        (``Penalty.auxiliary``, e.g. FactorVAE's discriminator): ``pv.fit`` keeps their
        parameters out of the model's optimiser and calls their ``auxiliary_step``.
    kl_weight : float
        The weight of the KL term in the training loss (β; 1 for the plain ELBO).
    data_dim : int
        The dimension D of a datapoint ``x`` (rows are ``[N, D]``).
    data_plate : str
        The name of the plate that holds the datapoints (``"data"`` in ppl_vae's models).
    class_structured : bool
        True when the prior holds one Gaussian per class (``model.prior.class_means``,
        ``class_log_posterior``): classification and latent out-of-domain scores.
    partial_labels : bool
        True when the labels may be missing for some rows (``y = -1``): the label is a
        latent, observed where given and summed out where not (M2); ``pv.fit`` then
        draws one batch of labelled and one of unlabelled rows per step.

    Examples
    --------
    >>> import ppl_vae as pv
    >>> model = pv.build("vae", data_dim=4, latent_dim=2, decoder={"hidden": [8]},
    ...                  guide={"hidden": [8]})
    >>> isinstance(model, pv.models.Model)                   # the contract, checked at run time
    True
    >>> model.latent_sites, model.amortized, model.requires_labels, model.enumerate
    (('z',), True, False, False)
    """

    max_plate_nesting: int
    enumerate: bool
    requires_labels: bool
    spec: dict
    amortized: bool
    streamable: bool
    latent_sites: tuple
    penalized: bool
    auxiliary_parts: tuple
    kl_weight: float
    data_dim: int
    data_plate: str
    class_structured: bool
    partial_labels: bool

    def model(self, x, y=None, *, idx=None, num_data=None):
        """The generative program: datapoints in ``pyro.plate("data")``, latent ``"z"``,
        observed ``"x"``; penalties as ``pyro.factor`` sites named ``penalty_*``."""

    def guide(self, x, y=None, *, idx=None, num_data=None):
        """q(z | x) with the same plate as :meth:`model`."""

    def decode(self, z) -> torch.distributions.Distribution:
        """p(x | z) as a Distribution over x."""

    def sample(self, n: int, *, noise: bool = False, seed: int | None = None):
        """Ancestral samples ``[n, D]``: decoder means (plus likelihood noise if asked)."""

    def check_data(self, x, y=None, *, name: str = "x"):
        """``(x, y)`` as validated tensors; a ValueError names what is wrong and the fix."""

    def initialize(self, x, y=None, *, seed: int | None = None) -> None:
        """Prepare data-sized state before training (local guide parameters, k-means start)."""

    def guide_fits(self, x) -> bool:
        """True when :meth:`guide` can be evaluated on ``x`` as it is (an amortized or
        empty guide, or local parameters sized for exactly these rows)."""

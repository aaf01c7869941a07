"""The Gaussian mixture: a discrete latent z ∈ {1..C}, marginalised exactly.

    Pr(z = n) = λₙ,   Pr(x | z = n) = Norm_x[μₙ, diag σₙ²],   Pr(x) = Σₙ λₙ Norm_x[μₙ, σₙ²]

The site ``z`` is enumerated (``TraceEnum_ELBO``), so the guide is empty and
the ELBO equals the exact log-likelihood. Training starts from k-means++
centres to avoid collapsed components.
"""

from __future__ import annotations

import math

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from torch import nn

from ppl_vae import _checks, _device, _seed


class GaussianMixture(nn.Module):
    """A diagonal-covariance Gaussian mixture as a Pyro model with an enumerated latent.

    Examples
    --------
    >>> import torch
    >>> import ppl_vae as pv
    >>> gmm = pv.build("gmm", data_dim=2, num_components=3)
    >>> type(gmm).__name__, gmm.weights.shape
    ('GaussianMixture', torch.Size([3]))
    >>> x = gmm.sample(10, noise=True, seed=0)
    >>> x.shape, gmm.responsibilities(x).shape             # p(component | x) per row
    (torch.Size([10, 2]), torch.Size([10, 3]))
    >>> bool(torch.allclose(gmm.responsibilities(x).sum(-1), torch.ones(10)))
    True
    """

    max_plate_nesting = 1
    enumerate = True
    requires_labels = False
    amortized = True  # the guide is empty: new points are scored as they are
    streamable = False  # the k-means++ start needs the whole set
    latent_sites = ()  # the assignment is summed out: no KL term to weight
    penalized = False
    auxiliary_parts = ()
    kl_weight = 1.0
    data_plate = "data"
    class_structured = False  # its components are clusters of x, not classes of a latent
    partial_labels = False

    def __init__(self, spec: dict):
        super().__init__()
        self.spec = spec
        d, c = spec["data_dim"], spec["num_components"]
        self.data_dim, self.num_components = d, c
        self.num_classes = None
        self.logits = nn.Parameter(torch.zeros(c))
        self.loc = nn.Parameter(torch.randn(c, d))
        self.log_scale = nn.Parameter(torch.zeros(c, d))

    @property
    def weights(self) -> torch.Tensor:
        """Mixture weights λ."""
        return torch.softmax(self.logits, -1)

    def component(self, z: torch.Tensor):
        return dist.Normal(self.loc[z], self.log_scale[z].exp()).to_event(1)

    def model(self, x, y=None, *, idx=None, num_data=None):
        size = num_data if num_data is not None else x.shape[0]
        with pyro.plate("data", size, subsample=idx, dim=-1):
            z = pyro.sample(
                "z", dist.Categorical(logits=self.logits), infer={"enumerate": "parallel"}
            )
            pyro.sample("x", self.component(z), obs=x)

    def guide(self, x, y=None, *, idx=None, num_data=None):
        """Empty: z is summed out exactly in the model."""

    def marginal(self) -> torch.distributions.Distribution:
        """Pr(x) = Σₙ λₙ Norm_x[μₙ, σₙ²] as a torch Distribution."""
        comps = torch.distributions.Independent(
            torch.distributions.Normal(self.loc, self.log_scale.exp()), 1
        )
        return torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(logits=self.logits), comps
        )

    @torch.no_grad()
    def responsibilities(self, x) -> torch.Tensor:
        """Posterior Pr(z = n | x), ``[N, C]``."""
        x = _checks.data_tensor("x", x, dim=self.data_dim)
        x = x.to(self.loc)
        joint = self.component(torch.arange(self.num_components, device=x.device)).log_prob(
            x.unsqueeze(1)
        )
        return torch.softmax(joint + torch.log_softmax(self.logits, -1), -1)

    def decode(self, z):
        return self.component(torch.as_tensor(z, dtype=torch.long, device=self.loc.device))

    @torch.no_grad()
    def sample(self, n, *, noise=False, seed=None):
        n = _checks.positive_int("n", n)
        _checks.rows_within_budget("n", n, self.data_dim)
        with _seed.seeded(seed):
            z = dist.Categorical(logits=self.logits).sample((n,))
            px = self.decode(z)
            return px.sample() if noise else px.mean

    def check_data(self, x, y=None, *, name="x"):
        x = _checks.data_tensor(name, x, dim=self.data_dim)
        return _device.move(x, self.loc.device, self.loc.dtype), None

    def guide_fits(self, x) -> bool:
        """Always: the guide is empty (z is enumerated in the model)."""
        return True

    @torch.no_grad()
    def initialize(self, x, y=None, *, seed=None):
        """k-means++ centres, per-cluster scales and weights from the nearest-centre split."""
        from sklearn.cluster import kmeans_plusplus

        c = self.num_components
        if x.shape[0] < c:
            raise ValueError(
                f"x has {x.shape[0]} rows but num_components={c}: pass more data or fewer components"
            )
        xn = x.detach().double().cpu().numpy()
        centres, _ = kmeans_plusplus(xn, c, random_state=np.random.RandomState(seed or 0))
        centres = torch.as_tensor(centres, device=x.device)
        for _ in range(10):  # a few Lloyd steps tidy up the seeding
            assign = torch.cdist(x.double(), centres).argmin(1)
            centres = torch.stack(
                [x[assign == k].double().mean(0) if (assign == k).any() else centres[k] for k in range(c)]
            )
        assign = torch.cdist(x.double(), centres).argmin(1)
        floor = 1e-3 + 1e-2 * float(x.std())
        scales = torch.stack(
            [
                x[assign == k].std(0, unbiased=False).clamp_min(floor)
                if (assign == k).sum() > 1
                else torch.full((self.data_dim,), floor + float(x.std()), device=x.device)
                for k in range(c)
            ]
        )
        counts = torch.bincount(assign, minlength=c).double() + 1.0
        self.loc.copy_(centres.float())
        self.log_scale.copy_(scales.log().float())
        self.logits.copy_(counts.log().float() - math.log(float(counts.sum())))

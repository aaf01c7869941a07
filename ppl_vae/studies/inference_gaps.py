"""How much of log p(x) − ELBO is the approximation gap, and how much the amortization gap?

Cremer, Li & Duvenaud (2018, "Inference Suboptimality in Variational
Autoencoders", Table 2) split the gap of a trained VAE's amortized ELBO L[q] into

    log p(x) − L[q]  =  (log p(x) − L[q*])  +  (L[q*] − L[q])
                         approximation gap     amortization gap

where q = q_φ(z|x) is the encoder's distribution and q* the best member of the
same variational family for each datapoint separately, on a subset of training
points and a subset of test points of binarized MNIST, for a fully factorised
Gaussian guide (FFG) and a flow guide, and again with a larger encoder.

One trial trains one VAE — guide family ``"gaussian"`` (FFG) or ``"flow"`` (the
Gaussian pushed through ``flow_layers`` planar flows whose parameters are
functions of x), encoder widths ``encoder_hidden`` — and then, on a seeded subset
of ``n_eval`` training points and one of ``n_eval`` test points, reports per
subset (suffix ``_train`` / ``_test``, means over the subset's points, nats):

- ``elbo_amortized``: L[q], ``elbo_particles`` draws per point;
- ``elbo_local``: L[q*]. q* comes from :func:`ppl_vae.infer.fit_local_guide`:
  Adam on every point's own Gaussian (μᵢ, σᵢ) — for the flow family also on a
  planar flow of its own with the same number of layers, built from Pyro's
  conditional transforms with a per-datapoint parameter table — the decoder
  held fixed, started exactly at q(z|xᵢ) (``init="encoder"``);
- ``log_px``: log p̂(x), per point the best of importance sampling with
  K = ``num_samples`` and AIS (below); ``log_px_is`` and ``log_px_ais`` the two
  estimates alone, ``ais_won_share`` the share of points where AIS gave the larger;
- ``approximation_gap``, ``amortization_gap``, their sum ``total_gap`` and
  ``amortization_share`` = amortization / total;
- ``share_unreliable``: the share of points whose PSIS k̂ (of the better IS
  proposal) exceeds the sample-size threshold, so IS alone may be far too low there
  (AIS, which has no k̂, is the check on those points);
- ``local_improved_share``: the share of points where q*'s ELBO beat the encoder's.

log p̂(x) is, per datapoint, the largest of three estimates: IS with the encoder
and IS with q* as proposal, and annealed importance sampling
(:func:`ppl_vae.infer.ais`, Neal 2001: ``ais_steps`` HMC steps on a sigmoid schedule,
``ais_chains`` chains per point, started at q* for the FFG and at the prior for the
flow family, whose planar flows have no inverse, so log q*(z) cannot be evaluated at
the points HMC moves to). Each is a stochastic lower bound
(E log p̂ ≤ log p(x), Burda et al., 2016), so the largest is the tightest; a log p̂
that is too low shrinks the approximation gap, and in 50 dimensions the encoder
alone is often a poor proposal (k̂ above threshold). (The maximum of noisy
estimates is biased upward by at most their noise, which at K = 5000 is far
smaller than that downward bias.) ``ais_steps`` 0 (a configuration that leaves the
key out) skips AIS: log p̂ is then the better IS estimate, as before AIS was added. The two ELBOs use common random numbers (the
same seeds, ``elbo_chunk`` particles per pass), so their difference, the
amortization gap, carries little Monte Carlo noise; neither is floored, so a
q* that ends below q (a failed local search) shows as a negative gap rather
than being hidden.

Data. ``digits``: the bundled 8×8 digits thresholded at 0.5 (the loader's
fixed binarization, the same images in training and evaluation). ``mnist``:
real MNIST (``$PPL_VAE_MNIST``, else ``shared/data/mnist`` beside the checkout;
a missing folder fails the trial, never a switch to another dataset) as grey
levels; training binarizes every minibatch afresh (``pv.fit(binarize="dynamic")``,
as Burda et al. and ``benchmarks/mnist_iwae.py``), and each evaluation subset is
one fixed Bernoulli draw of its grey-level images, seeded by the trial's seed —
a sample from the distribution the model was trained on, where a threshold
would give images of a kind it never saw. "Training point" therefore means the
grey-level image was in the training set. The MNIST model is Burda et al.'s
784-200-200-50 tanh VAE (``_common.MNIST_VAE``), trained with Adam, batch 100
and the IWAE paper's rate schedule.

Sizes: ``small_grid`` (digits, seconds; the CI test), ``grid`` (the default:
MNIST, FFG and flow with the standard and a larger encoder; one trial takes
1.5 (FFG, standard encoder) to 4 minutes (flow, larger encoder) on one CPU core) and ``paper_grid`` (Cremer et al.'s protocol as
far as we can infer it); the protocol (``PROTOCOL``) says how each differs from
the paper.

Hypothesis: as Cremer et al. found on MNIST, (a) the amortization gap is the
larger part of the gap of the FFG, on training and on test points; (b) the
larger encoder shrinks the amortization gap while the approximation gap barely
moves; (c) flow parameters help amortization: with the same encoder, the flow
guide's amortization gap is smaller than the FFG's.
"""

from __future__ import annotations

import sys

import torch

from ppl_vae.studies import _study_kit as _common
from ppl_vae.study import Study, TrialContext

SUBSETS = ("train", "test")
#: Keys a configuration may leave out, with the values the study used before it ran AIS
#: (``ais_steps`` 0: log p̂ from importance sampling alone).
OPTIONAL = {"ais_steps": 0, "ais_chains": 16}


def _model_and_data(config: dict, seed: int, device):
    """Train the configured VAE; return it with the grey-level (or binary) train/test arrays."""
    mnist = config["dataset"] == "mnist"
    if mnist:
        data = _common.mnist()
    elif config["dataset"] == "digits":
        data = _common.dataset("digits", binarize=True)
    else:
        raise ValueError(f"dataset={config['dataset']!r} is not one of 'digits', 'mnist'")
    guide = {"hidden": list(config["encoder_hidden"]), "activation": "tanh"}
    if config["guide"] == "flow":
        guide["flow"] = {"kind": "planar", "layers": config["flow_layers"],
                         "hidden": list(config["flow_hidden"])}
    elif config["guide"] != "gaussian":
        raise ValueError(f"guide={config['guide']!r} is not one of 'gaussian', 'flow'")
    model = _common.train(
        "vae", data.x_train, seed=seed, steps=config["steps"], lr=config["lr"],
        batch_size=config["batch_size"], device=device, latent_dim=config["latent_dim"],
        decoder={"hidden": list(config["decoder_hidden"]), "activation": "tanh"}, guide=guide,
        likelihood={"kind": "bernoulli"}, lr_schedule="iwae_paper",
        binarize="dynamic" if mnist else False,
    )
    return model, {"train": data.x_train, "test": data.x_test}, mnist


#: Particles per ELBO pass: [particles, N, D] tensors stay ~300 MB at N = 1000, D = 784.
ELBO_CHUNK = 100


def _subset(x, config: dict, seed: int, binarize: bool) -> torch.Tensor:
    """``n_eval`` seeded rows of ``x``; grey levels become one Bernoulli draw (seed + 1)."""
    rows = _common.subsample(x, config["n_eval"], seed=seed)
    if not binarize:
        return rows
    return torch.bernoulli(rows, generator=torch.Generator().manual_seed(seed + 1))


def _elbo(model, x, guide, particles: int, seed: int, device) -> torch.Tensor:
    """Per-point ELBO ``[N]`` over ``particles`` draws, ``ELBO_CHUNK`` per pass; pass j is
    seeded ``seed + j``, so two guides given the same seed share their random numbers."""
    import ppl_vae as pv

    total = 0.0
    for j, start in enumerate(range(0, particles, ELBO_CHUNK)):
        n = min(ELBO_CHUNK, particles - start)
        total = total + n * pv.infer.elbo(model, x, guide=guide, num_particles=n, seed=seed + j,
                                          device=device)
    return total / particles


def _gaps(model, x, config: dict, seed: int, device) -> dict[str, float]:
    """The gaps on one subset (see the module docstring). Random streams: the subset
    ``seed``, its binarization ``seed + 1``, q* ``seed + 2``, IS ``seed + 3`` and ``+ 4``,
    AIS ``seed + 5``, the ELBO passes ``100 * seed + 10**6 + j``."""
    import ppl_vae as pv

    on = {"device": device}
    flow = {"kind": "planar", "layers": config["flow_layers"]} if config["guide"] == "flow" \
        else None
    local = pv.infer.fit_local_guide(model, x, steps=config["local_steps"], lr=config["local_lr"],
                                     num_particles=config["local_particles"], seed=seed + 2,
                                     init="encoder", flow=flow, **on)
    particles, k = config["elbo_particles"], config["num_samples"]
    elbo_seed = 100 * seed + 10**6
    elbo_amortized = _elbo(model, x, None, particles, elbo_seed, device)  # [N]
    elbo_local = _elbo(model, x, local, particles, elbo_seed, device)  # common random numbers
    is_encoder = pv.infer.log_likelihood(model, x, num_samples=k, seed=seed + 3, **on)
    is_local = pv.infer.log_likelihood(model, x, guide=local, num_samples=k, seed=seed + 4, **on)
    use_local = is_local.log_px > is_encoder.log_px
    log_px_is = torch.where(use_local, is_local.log_px, is_encoder.log_px)
    reliable = torch.where(use_local, is_local.reliable, is_encoder.reliable)
    log_px, extra = log_px_is, {}
    if config["ais_steps"]:  # per point the larger estimate; start: see the module docstring
        start = {"guide": local, "init": "guide"} if flow is None else {"init": "prior"}
        ais = pv.infer.ais(model, x, num_steps=config["ais_steps"],
                           num_chains=config["ais_chains"], seed=seed + 5, **start, **on).log_px
        ais = ais.to(log_px_is)
        use_ais = ais > log_px_is
        log_px = torch.where(use_ais, ais, log_px_is)
        extra = {"log_px_is": float(log_px_is.mean()), "log_px_ais": float(ais.mean()),
                 "ais_won_share": float(use_ais.float().mean())}
    approximation = (log_px - elbo_local).mean()
    amortization = (elbo_local - elbo_amortized).mean()
    total = approximation + amortization
    return {
        **extra,
        "log_px": float(log_px.mean()),
        "elbo_local": float(elbo_local.mean()),
        "elbo_amortized": float(elbo_amortized.mean()),
        "approximation_gap": float(approximation),
        "amortization_gap": float(amortization),
        "total_gap": float(total),
        "amortization_share": float(amortization / total),
        "share_unreliable": float((~reliable).float().mean()),
        "local_improved_share": float((elbo_local > elbo_amortized).float().mean()),
    }


def trial(config: dict, context: TrialContext) -> dict[str, float]:
    """Train one VAE; its gaps on a training subset and a test subset (suffix _train/_test)."""
    config = _common.check_config("inference_gaps", {**OPTIONAL, **config}, {
        "dataset": ("digits", "mnist"), "guide": ("gaussian", "flow"), "n_eval": _common.COUNT,
        "elbo_particles": _common.COUNT, "num_samples": _common.COUNT,
        "local_steps": _common.COUNT, "local_particles": _common.COUNT,
        "local_lr": _common.POSITIVE, "steps": _common.COUNT, "ais_steps": 0,
        "ais_chains": _common.COUNT})
    seed, device = context.seed, context.device
    model, arrays, binarize = _model_and_data(config, seed, device)
    out = {}
    for i, subset in enumerate(SUBSETS):
        sub_seed = seed + 1000 * (i + 1)
        x = _subset(arrays[subset], config, sub_seed, binarize)
        gaps = _gaps(model, x, config, sub_seed, device)
        out.update({f"{name}_{subset}": value for name, value in gaps.items()})
    return out


def _label(row) -> str:
    family = "FFG" if row["guide"] == "gaussian" else f"flow ×{row['flow_layers']}"
    return f"{family}, encoder {'-'.join(str(w) for w in row['encoder_hidden'])}"


def analyze(df, out_dir) -> None:
    """``gaps.png``: approximation and amortization gap per configuration, train and test
    side by side, seeds as dots."""
    from ppl_vae import plots

    parts = df["metric"].str.extract(r"^(approximation_gap|amortization_gap)_(train|test)$")
    gaps = df[parts[0].notna()].copy()
    gaps["gap"] = parts[0].dropna().str.replace("_", " ")
    gaps["subset"] = parts[1].dropna()
    gaps["configuration"] = gaps.apply(_label, axis=1)
    dataset = ", ".join(sorted(gaps["dataset"].unique()))
    plots.metric_bars(gaps, path=out_dir / "gaps.png", x="configuration", hue="subset",
                      panel="gap", title=f"Inference gaps on {dataset} (nats)")


# -- sizes ---------------------------------------------------------------------------------
_MNIST = {"dataset": "mnist", "latent_dim": _common.MNIST_VAE["latent_dim"],
          "decoder_hidden": _common.MNIST_VAE["decoder"]["hidden"],
          "flow_layers": 4, "flow_hidden": [100], "batch_size": 100, "lr": 1e-3}
_STANDARD, _LARGER = _common.MNIST_VAE["guide"]["hidden"], [500, 500]
_DEFAULT = {**_MNIST, "steps": 6000, "n_eval": 100, "local_steps": 1000, "local_lr": 0.003,
            "local_particles": 10, "elbo_particles": 1000, "num_samples": 5000,
            "ais_steps": 500, "ais_chains": 8}
_PAPER = {**_MNIST, "steps": 3280 * 600, "n_eval": 1000, "local_steps": 10_000,
          "local_lr": 1e-3, "local_particles": 50, "elbo_particles": 1000, "num_samples": 5000,
          "ais_steps": 5000, "ais_chains": 16}
_SMALL = {"dataset": "digits", "latent_dim": 2, "decoder_hidden": [32], "flow_layers": 2,
          "flow_hidden": [16], "batch_size": 100, "lr": 3e-3, "steps": 25, "n_eval": 12,
          "local_steps": 60, "local_lr": 0.01, "local_particles": 8, "elbo_particles": 8,
          "num_samples": 64, "ais_steps": 50, "ais_chains": 4}


def _configs(base: dict, encoders) -> list[dict]:
    """FFG and flow at each encoder width (the first, FFG at ``encoders[0]``, is the reference)."""
    return [{**base, "guide": guide, "encoder_hidden": list(enc)}
            for enc in encoders for guide in ("gaussian", "flow")]


GRID = _configs(_DEFAULT, [_STANDARD, _LARGER])
PAPER_GRID = _configs(_PAPER, [_STANDARD, _LARGER])
PROTOCOL = """\
Cremer, Li & Duvenaud (2018, Table 2 and its "larger encoder" rows). Their protocol as the
authors' released code (github.com/lxuechen/inference-suboptimality) sets it up — the
paper's tables could not be read where this study was written, so no published values
are stored with it and the report prints none: binarized MNIST, a 784-200-200-50 VAE
with Bernoulli pixels, trained with Adam in batches of 100 at rate 1e-3 with the IWAE
paper's schedule over 3,280 epochs; the gaps on 1,000 training and 1,000 test points; q*
by Adam at rate 1e-3 on each point; log p̂(x) from IWAE (K = 5000) and AIS; the flow
guide an auxiliary-variable flow of two coupling steps; the larger encoder two hidden
layers of 500 units.

What every size here does differently: tanh units as in Burda et al. (the authors' code
also has ELU: our reading); dynamic binarization in training and one seeded Bernoulli
draw of each evaluation subset (they used a fixed binarization of MNIST: our reading);
seeded random subsets instead of the first points; q* started at the encoder's q(z|x)
(their code starts it at the prior, mean 0 and unit variance, the flow from fresh
parameters, and runs 100 copies per point) — which finds the local optimum nearest the
encoder and so probably gives a smaller amortization gap than theirs; q* for a fixed
number of Adam steps with the rate decayed to a tenth instead of a convergence test;
Adam's default ε (their code: 1e-4) and no KL warm-up (their code can warm up over 400
epochs); log p̂ = per point the best of
IS with the encoder, IS with q* as proposal and AIS started at q* (FFG) or the prior
(flow; the numbers of AIS steps and chains below are our choice); planar flows (four layers,
hypernetwork width 100) instead of the auxiliary flow, which the package does not have —
so the flow rows test the direction of the paper's flow result, not its size.

- **small** (`--small`, CI, seconds): the bundled 8×8 digits (fixed threshold), latent 2,
  25 training steps, 12 + 12 points, q* 60 steps, K = 64, AIS 50 steps × 4 chains; FFG
  and flow. Checks the plumbing only.
- **default**: MNIST with the paper's architecture; FFG and flow with the standard
  (200-200) and the larger (500-500) encoder; 10 epochs instead of 3,280, so the gaps are
  those of an early model, not of a converged one; 100 + 100 points per trial instead of
  1,000 + 1,000 (three seeds: 300 + 300); q* 1,000 steps at rate 3e-3 with 10 draws;
  ELBOs with 1,000 draws, K = 5000; AIS 500 steps × 8 chains. Before AIS, a trial took
  93 s (FFG, standard encoder) to 244 s (flow, larger encoder) on one CPU core (measured
  once each, torch with one thread, on a shared and loaded 2-core machine), a quarter to
  two thirds of it training; AIS adds an estimated 3 min (50 steps × 16 chains on 100
  MNIST points took 20 s on that loaded core; not measured at the full setting).
- **paper** (`--paper`, meant for `--device cuda` or `--executor ray`): the paper's sizes
  with the differences above: 3,280 epochs, 1,000 + 1,000 points, q* 10,000 steps at rate
  1e-3 with 50 draws, K = 5000, AIS 5,000 steps × 16 chains.

The default and paper sizes read MNIST from `$PPL_VAE_MNIST`, else from `shared/data/mnist`
beside the checkout; a trial without the files fails with a message saying so.
"""

STUDY = Study(
    name="inference_gaps",
    question=__doc__,
    trial=trial,
    takes_context=True,  # trial(config, context)
    grid=GRID,
    small_grid=_configs(_SMALL, [[16]]),
    paper_grid=PAPER_GRID,
    protocol=PROTOCOL,
    # Published values go here as Reference(metric=..., value=..., where={config key: value},
    # source="Cremer et al. (2018), Table 2") once they have been read from the paper;
    # none are typed in from memory.
    references=[],
    detail_metrics=["local_improved_share"],
    analyze=analyze,
    default_seeds=3,
)

if __name__ == "__main__":  # the script form of `ppl-vae study <name>`
    from ppl_vae.cli import main

    raise SystemExit(main(["study", STUDY.name, *sys.argv[1:]]))

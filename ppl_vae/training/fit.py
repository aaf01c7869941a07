"""``pv.fit``: stochastic variational inference with minibatches.

The loss is Pyro's ``Trace_ELBO`` (``TraceEnum_ELBO`` when the model
enumerates a discrete latent) through ``differentiable_loss``, or the IWAE /
Rényi bound (:mod:`ppl_vae.training.bounds`), optimised with a torch
optimiser over the model's own ``nn.Module`` parameters — so no global
parameter store is involved and two models never share weights. The options
are one :class:`~ppl_vae.training.config.FitConfig`; the run is a
:class:`~ppl_vae.training.trainer.Trainer`. With the defaults the loop is the
plain Adam + ELBO loop, number for number.
"""

from __future__ import annotations

from ppl_vae.training import pair
from ppl_vae.training import resume as resume_mod
from ppl_vae.training.config import FitConfig, normalize
from ppl_vae.training.history import FitResult
from ppl_vae.training.trainer import Trainer


def fit(
    model,
    x=None,
    y=None,
    *,
    x_val=None,
    y_val=None,
    checkpoint=None,
    resume: bool | str = False,
    callbacks=(),
    log_dir=None,
    device=None,
    config: FitConfig | None = None,
    **options,
) -> FitResult:
    """Train ``model`` on ``x`` (and labels ``y``) by SVI.

    Every option but the data, ``checkpoint``, ``resume``, ``callbacks``,
    ``log_dir``, ``device`` and ``config`` is a field of
    :class:`~ppl_vae.training.FitConfig` (one default and one check each).

    >>> import ppl_vae as pv
    >>> data = pv.data.load("digits", binarize=True)
    >>> model = pv.build("vae", latent_dim=2, decoder={"hidden": [16]}, guide={"hidden": [16]})
    >>> result = pv.fit(model, data.x_train, steps=20, progress=False)
    >>> len(result.history), list(result.history.columns[:3])
    (20, ['step', 'loss', 'time'])

    Parameters
    ----------
    model
        A ppl_vae model (``pv.build``): anything that keeps the contract
        ``pv.models.Model``; or a user's own Pyro pair — an object with
        ``model``/``guide`` methods, or a ``(model, guide)`` tuple — whose contract is
        read off its program (:class:`ppl_vae.training.pair.PyroPair`): trained with
        ``Trace_ELBO`` (``TraceEnum_ELBO`` when a site is enumerated), minibatch sites
        in the datapoint plate scaled by N / B.
    x : array [N, D], or a lazily indexed dataset
        Training data; checked against the model (dimension, support, finiteness).
        An object with ``len(x)`` and ``x[indices] -> array [B, D]`` (e.g.
        ``pv.data.SpriteGrid``: dSprites' 737,280 images rendered on demand) is
        streamed: each minibatch is fetched, checked and moved when it is needed
        (amortized guides only).
    y : array [N] of int, optional
        Labels, for class-structured models.
    steps, batch_size, lr
        Optimiser steps (in total, a resumed run included), minibatch size, base
        learning rate.
    seed : int
        Seeds minibatch order and all sampling: the same seed gives the same
        history, bit for bit, on the same machine.
    progress : bool
        Show a tqdm bar with the running loss (minus the bound, as in the history)
        on a terminal or in a notebook; nothing is written into a log file or a pipe.
    checkpoint : path, optional
        Written atomically every ``checkpoint_every`` steps and at the end; stale
        temporary files of an interrupted write (``<name>.*.tmp``) are removed at
        the start. With ``x_val`` the best model so far is also kept at
        ``<stem>.best.pt``. A symbolic link is followed to its file; a folder, a
        FIFO or device, a dangling link and a folder that cannot be written are
        refused before training starts.
    resume : False, True or "override"
        ``True`` continues from ``checkpoint`` (if it exists) up to ``steps``: every
        option that decides the numbers (seed, lr, batch size, objective, optimizer,
        schedule, clipping, warm-up, validation settings, the training and
        validation data) must equal the checkpoint's, else a ValueError names
        both values. ``"override"`` continues with the options given now (a
        warning lists the changes; optimizer moments are kept when the
        optimizer is unchanged, the schedule restarts when lr or schedule
        changed). ``steps`` below the checkpoint's step is always an error.
    checkpoint_every : int
        Steps between checkpoints.
    num_particles : int
        ELBO particles per step (and K of a string ``"iwae"``/``"renyi"`` bound
        when above 1).
    validate : bool
        Pyro's distribution argument checks during training. Off by default:
        the data are validated up front, and the checks cost about half of a
        step of a small model.
    bound : "elbo", "iwae", "renyi" or dict
        The bound maximised; ``{"kind": "iwae", "num_samples": K}`` is the
        IWAE bound of order K (Burda et al., 2016; K = 5 for the bare string),
        ``{"kind": "renyi", "alpha": a}`` the Rényi bound of order a. IWAE and
        Rényi are refused for enumerated models, penalties and β ≠ 1.
        (``objective=`` is its former name, accepted with a DeprecationWarning.)
    optimizer : "adam", "adamw", "clipped_adam", dict or torch optimizer class
        ``{"kind": "adamw", "weight_decay": 0.01}`` passes options; a class is
        called as ``cls(params, lr=lr)``.
    lr_schedule : None, "iwae_paper" or callable
        A factory ``lambda opt: torch.optim.lr_scheduler.X(opt, ...)``; its
        ``step()`` runs after every optimiser step (``ReduceLROnPlateau`` steps
        on each validation with the monitored bound). ``"iwae_paper"``: the rate
        is divided by 10^(1/7) after 3^i passes over the data, i = 0..6
        (:func:`ppl_vae.training.iwae_paper_boundaries`).
    clip_norm : float, optional
        Clip the global gradient norm to this value (``grad_norm`` is logged before).
    kl_warmup : int
        Steps over which the KL weight rises linearly from 0 to the model's β.
    x_val, y_val : array, optional
        Validation data: ``val_elbo`` every ``eval_every`` steps (and ``val_iwae``
        with ``val_iwae=K`` samples), the best model kept.
    eval_every : int
        Steps between validations (at multiples of it).
    val_iwae : int, optional
        Also log the IWAE bound of order K on the validation data (and monitor
        it for early stopping instead of ``val_elbo``).
    early_stopping : None, int or dict
        Patience: stop after this many validations without improvement
        (``{"patience": 5, "min_delta": 0.1}``); the returned model then holds the
        best validated weights.
    callbacks : sequence
        Objects with any of ``on_start``, ``on_step``, ``on_validation``,
        ``on_checkpoint``, ``on_end``, ``on_close`` (:mod:`ppl_vae.training.callbacks`).
        They observe: each gets its own copy of what it is passed and runs with the
        random generators restored afterwards.
    log_dir : path, optional
        Stream ``history.csv`` there (every column of the returned history; every
        row so far, even when the run ends by an exception), and TensorBoard events
        when the ``tensorboard`` package is installed (``ppl_vae[tensorboard]``).
    config : FitConfig, optional
        The options as one object (:class:`ppl_vae.training.FitConfig`); keyword
        options given as well replace its fields.
    device : str or torch.device, optional
        Where to train: ``None`` (where the model is), ``"auto"`` (CUDA when
        available), ``"cpu"``, ``"cuda[:N]"``. The model and the data are moved
        there once, before the first step.
    binarize : False or "dynamic"
        ``"dynamic"``: ``x`` holds grey levels in [0, 1] and every minibatch is a
        fresh Bernoulli draw of them (dynamic binarization, as in Burda et al.,
        2016), from the run's seeded stream (so resuming stays bit-identical).
    sync_every : int, optional
        Steps between reads of the loss and gradient norm back to the host (each
        read waits for the device's queue). ``None``: 1 on the CPU, 50 on a GPU
        (CUDA, MPS). Between reads they stay on the device, and the history rows,
        the non-finite check, the ``diverged`` flag, ``on_step`` callbacks and the
        progress bar catch up at the next read — every ``sync_every`` steps, before
        each validation and checkpoint, and at the end; the numbers, the rows and
        their order are those of ``sync_every=1``. A non-finite loss still raises
        naming its own (first) step and keeps the last good checkpoint; with
        ``sync_every=1`` it stops before that step's update, above 1 the model in
        memory may have taken it and up to ``sync_every - 1`` further steps
        (irrelevant, as training stops). ``time`` is taken per step when the step
        has been queued, which on a GPU may run ahead of the computation. An
        ``on_step`` callback that looks at the model itself (not the row) sees it as
        it is at the read, up to ``sync_every - 1`` steps later.
    """

    options = normalize(options)
    if config is None:
        config = FitConfig(**options)
    elif not isinstance(config, FitConfig):
        raise ValueError(f"config={config!r} is invalid: pass a pv.training.FitConfig or None")
    elif options:
        config = config.replace(**options)
    resume = resume_mod.check_mode(resume)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path> to resume from")
    if isinstance(model, str):
        raise ValueError(
            f"model={model!r} is text: pass a model built with pv.build and then the data, "
            "e.g. pv.fit(pv.build('vae'), pv.data.load('digits', binarize=True).x_train)")
    if x is None:
        raise ValueError("x is missing: pass the training data as pv.fit(model, x), e.g. "
                         "x = pv.data.load('digits', binarize=True).x_train")
    trainable = pair.as_trainable(model, x, y)
    if isinstance(trainable, pair.PyroPair) and not trainable.amortized and config.batch_size < len(x):
        raise ValueError(
            f"batch_size={config.batch_size} is below the {len(x)} rows, but the guide's "
            "parameters are sized by the data (e.g. AutoNormal on per-datapoint latents), so a "
            f"minibatch would update rows it does not hold: pass batch_size>={len(x)} (the whole "
            "set at every step), or use an amortized guide (an encoder)"
        )
    trainer = Trainer(trainable, config, checkpoint=checkpoint, callbacks=callbacks,
                      log_dir=log_dir, device=device)
    trainer.prepare(x, y, x_val, y_val)
    trainer.resume(resume)
    result = trainer.run()
    result.model = model  # the user's own object, trained in place
    return result

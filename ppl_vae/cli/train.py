"""``ppl-vae train`` — train a model from a spec on a dataset; ``ppl-vae sample``.

Training options come from the spec's ``[training]`` table (the options of
``pv.training.FitConfig`` and ``val_fraction``), and a flag given on the command
line wins over the table; pv.fit's own defaults fill the rest.
"""

from __future__ import annotations

from ppl_vae.cli import _shared

# [training] keys: every FitConfig option (its defaults are pv.fit's) but the three
# the command line sets with flags of its own, plus the command line's own keys.
FLAGGED = ("progress", "validate", "binarize")
CLI_KEYS = {"val_fraction": 0.0, "alpha": None}


def training_keys() -> tuple[str, ...]:
    from ppl_vae.training import FitConfig

    return (*(k for k in FitConfig.option_names() if k not in FLAGGED), *CLI_KEYS, "objective")


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model from a spec on a dataset")
    p.add_argument("--spec", default="vae", help="preset name or TOML file (default: vae)")
    p.add_argument("--data", default="digits", help="dataset name or file (default: digits)")
    p.add_argument("--steps", type=int, help="optimiser steps (default 2000)")
    p.add_argument("--batch-size", type=int, help="minibatch size (default 128)")
    p.add_argument("--lr", type=float, help="base learning rate (default 1e-3)")
    p.add_argument("--seed", type=int, help="seed of minibatches and sampling (default 0)")
    p.add_argument("--bound", "--objective", dest="bound", choices=("elbo", "iwae", "renyi"),
                   help="bound to maximise (default elbo; --objective is its former name)")
    p.add_argument("--num-particles", type=int, help="particles per step (K of iwae/renyi)")
    p.add_argument("--alpha", type=float, help="order of the renyi objective (default 0.5)")
    p.add_argument("--optimizer", choices=("adam", "adamw", "clipped_adam"), help="default adam")
    p.add_argument("--lr-schedule", choices=("none", "iwae_paper"),
                   help="learning-rate schedule (a torch scheduler: [training] lr_schedule table)")
    p.add_argument("--clip-norm", type=float, help="clip the gradient norm to this value")
    p.add_argument("--kl-warmup", type=int, help="steps of linear KL warm-up from 0 to beta")
    p.add_argument("--val-fraction", type=float,
                   help="hold out this fraction of the training data for validation")
    p.add_argument("--eval-every", type=int, help="steps between validations (default 200)")
    p.add_argument("--val-iwae", type=int, metavar="K", help="also log the validation IWAE bound of order K")
    p.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                   help="stop after PATIENCE validations without improvement")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default 200)")
    p.add_argument("--sync-every", type=int, metavar="N",
                   help="read the loss back from the device every N steps (default: 1 on CPU, 50 on a GPU)")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs to OUT/logs")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when training diverged")
    p.add_argument("--out", default="ppl_vae_out/train", help="output folder")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="spec override, e.g. latent_dim=4"
    )
    p.add_argument(
        "--binarize",
        choices=("auto", "yes", "no"),
        default="auto",
        help="threshold data at 0.5 (auto: when the likelihood is bernoulli)",
    )
    p.add_argument("--classes", help="keep only these classes (relabelled), e.g. 0-4")
    p.add_argument("--test-fraction", type=float, default=None,
                   help="for a data file without x_test: the fraction of its rows held out "
                        "as its test split, never trained on (default 0.2)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.pt (every option must match the checkpoint)")
    p.add_argument("--override", action="store_true",
                   help="with --resume: continue with the options given now where they differ")
    p.add_argument("--no-progress", action="store_true")
    _shared.add_threads_option(p)
    _shared.add_device_option(p)
    p.set_defaults(func=run)


def prepare(spec, data_name, overrides, binarize="auto", classes=None, test_fraction=None):
    """Resolve the spec against the data: returns (spec dict, Dataset)."""
    from ppl_vae import registry
    from ppl_vae import spec as spec_mod

    raw = spec_mod.merge(spec_mod.load(spec), overrides)
    training = raw.pop("training", None) or {}
    raw = spec_mod.with_family_defaults(raw)
    flag = {"auto": True if spec_mod.needs_binary(raw) else None, "yes": True, "no": None}[binarize]
    data = _shared.load_data(data_name, binarize=flag, test_fraction=test_fraction)
    classes = _shared.parse_classes(classes)
    if classes is not None:
        if data.y_train is None:
            raise ValueError(f"--classes given but --data={data_name!r} has no labels")
        data = data.subset(classes=classes, relabel=True)
    raw["data_dim"] = data.data_dim
    family = registry.get("family", raw["family"], where="family")
    if "num_classes" in family.top_keys:  # class-structured families
        if data.y_train is None:
            raise ValueError(f"spec family {raw['family']!r} needs labels; --data={data_name!r} has none")
        raw["num_classes"] = int(data.num_classes)
    if training:
        spec_mod.check_keys(training, dict.fromkeys(training_keys()), "training.")
        raw["training"] = training
    return raw, data


def training_options(args, table: dict) -> dict:
    """pv.fit options: command-line flags over the spec's [training] table (pv.fit's own
    defaults for the rest), and the command line's ``val_fraction``."""
    from ppl_vae.training.config import normalize

    table = dict(table)
    cli = {key: table.pop(key, default) for key, default in CLI_KEYS.items()}
    table = normalize(table, where="training.")
    out = {}
    for key in (*table, *(k for k in training_keys() if k not in CLI_KEYS)):
        flag = getattr(args, key, None)
        if flag is not None:
            out[key] = flag
        elif key in table:
            out[key] = table[key]
    out.pop("objective", None)
    for key, value in list(cli.items()):
        flag = getattr(args, key, None)
        cli[key] = flag if flag is not None else value
    if out.get("lr_schedule") == "none":
        out["lr_schedule"] = None
    bound = out.get("bound", "elbo")
    if isinstance(bound, str) and bound != "elbo":
        out["bound"] = {"kind": bound}
        if out.get("num_particles", 1) > 1:
            out["bound"]["num_samples"] = out["num_particles"]
        if cli["alpha"] is not None:
            out["bound"]["alpha"] = cli["alpha"]
    out["val_fraction"] = cli["val_fraction"]
    return out


def _split(data, fraction: float, seed: int):
    """(x, y, x_val, y_val): a seeded hold-out of ``fraction`` of the training data."""
    import torch

    from ppl_vae import _checks, _seed

    x, y = data.x_train, data.y_train
    if not fraction:
        return x, y, None, None
    fraction = _checks.fraction("--val-fraction", fraction)
    perm = torch.randperm(len(x), generator=_seed.generator(seed)).numpy()
    cut = len(x) - max(1, round(fraction * len(x)))
    train, val = perm[:cut], perm[cut:]
    pick = (lambda a, i: None if a is None else a[i])
    return pick(x, train), pick(y, train), pick(x, val), pick(y, val)


def _cli_training_error(err, args, out):
    """The same stop, worded for the command line (flags, not Python arguments)."""
    from ppl_vae.training import TrainingError

    where = (
        f"the last good checkpoint (step {err.last_saved}) is at {out}/checkpoint.pt: "
        "continue from it with --resume (and --override for a new --lr)"
        if err.last_saved
        else "no checkpoint was written yet (one is written every --checkpoint-every steps)"
    )
    return TrainingError(
        f"loss became {err.value} at step {err.step}: training stopped. Try a lower --lr "
        f"({args.lr if args.lr is not None else 'default'} now), a larger --batch-size, "
        f"--clip-norm, or a likelihood with a larger scale; {where}",
        step=err.step, value=err.value, checkpoint=err.checkpoint, last_saved=err.last_saved,
    )


def run(args) -> int:
    import ppl_vae as pv
    from ppl_vae import plots
    from ppl_vae.training import TrainingError

    _shared.apply_threads(args)
    raw, data = prepare(args.spec, args.data, _shared.parse_overrides(args.set), args.binarize,
                        args.classes, args.test_fraction)
    if (note := _shared.split_note(data, args.test_fraction)) is not None:
        print(note)
    options = training_options(args, raw.pop("training", {}))
    fraction = options.pop("val_fraction")
    config = pv.training.FitConfig(**options, progress=not args.no_progress)  # checked first
    model = pv.build(raw)
    out = _shared.output_dir(args.out)
    labelled = model.requires_labels
    x, y, x_val, y_val = _split(data, fraction, config.seed)
    if not labelled:
        y = y_val = None
    if args.override and not args.resume:
        raise ValueError("--override only applies with --resume")
    try:
        result = pv.fit(
            model, x, y, config=config, x_val=x_val, y_val=y_val,
            checkpoint=out / "checkpoint.pt", resume="override" if args.override else args.resume,
            log_dir=out / "logs" if args.tensorboard else None, device=_shared.device_of(args),
        )
    except TrainingError as err:
        raise _cli_training_error(err, args, out) from None
    pv.save(result.model, out / "model.pt")
    _shared.write_json(model.spec, out / "spec.json")
    result.history.to_csv(out / "history.csv", index=False)
    extra = [c for c in ("val_elbo", "val_iwae") if c in result.history]
    plots.training_curve(result.history, path=out / "training_curve.png", extra=extra,
                         title=f"{raw['family']} on {data.name}")
    done = int(result.history["step"].iloc[-1]) if len(result.history) else 0
    stopped = f", early stop at step {result.stopped_at}" if result.stopped_at else ""
    print(f"trained {raw['family']} on {data.name} ({len(x)} points, {done} steps{stopped}); "
          f"final loss {result.final_loss:.3f} nats/datapoint")
    print(f"wrote {out}/model.pt, spec.json, history.csv, training_curve.png")
    if result.diverged:
        print(f"warning: training diverged (final loss {result.final_loss:.4g} nats/datapoint, "
              f"first {result.history['loss'].iloc[0]:.4g}); try a lower --lr or --clip-norm")
        if args.strict:
            return 1
    return 0

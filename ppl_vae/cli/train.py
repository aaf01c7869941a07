"""``ppl-vae train`` — train a model from a spec on a dataset; ``ppl-vae sample``."""

from __future__ import annotations

from ppl_vae.cli import _common


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model from a spec on a dataset")
    p.add_argument("--spec", default="vae", help="preset name or TOML file (default: vae)")
    p.add_argument("--data", default="digits", help="dataset name or file (default: digits)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
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
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--no-progress", action="store_true")
    _common.add_threads_option(p)
    p.set_defaults(func=run)


def prepare(spec, data_name, overrides, binarize="auto", classes=None):
    """Resolve the spec against the data: returns (spec dict, Dataset)."""
    from ppl_vae import registry
    from ppl_vae import spec as spec_mod

    raw = spec_mod.with_family_defaults(spec_mod.merge(spec_mod.load(spec), overrides))
    flag = {"auto": True if _common.needs_binary(raw) else None, "yes": True, "no": None}[binarize]
    data = _common.load_data(data_name, binarize=flag)
    classes = _common.parse_classes(classes)
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
    return raw, data


def run(args) -> int:
    import ppl_vae as pv
    from ppl_vae import plots

    _common.apply_threads(args)
    raw, data = prepare(args.spec, args.data, _common.parse_overrides(args.set), args.binarize, args.classes)
    model = pv.build(raw)
    out = _common.output_dir(args.out)
    y = data.y_train if model.requires_labels else None
    result = pv.fit(
        model, data.x_train, y, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        seed=args.seed, progress=not args.no_progress, checkpoint=out / "checkpoint.pt",
        resume=args.resume,
    )
    pv.save(result.model, out / "model.pt")
    _common.write_json(model.spec, out / "spec.json")
    result.history.to_csv(out / "history.csv", index=False)
    plots.training_curve(result.history, path=out / "training_curve.png", title=f"{raw['family']} on {data.name}")
    print(f"trained {raw['family']} on {data.name} ({len(data.x_train)} points, {args.steps} steps); "
          f"final loss {result.final_loss:.3f} nats/datapoint")
    print(f"wrote {out}/model.pt, spec.json, history.csv, training_curve.png")
    return 0

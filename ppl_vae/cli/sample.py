"""``ppl-vae sample`` — a PNG grid of ancestral samples from a trained model."""

from __future__ import annotations

from ppl_vae.cli import _shared


def register(sub) -> None:
    p = sub.add_parser("sample", help="ancestral samples from a trained model as a PNG grid")
    p.add_argument("checkpoint", help="a file written by pv.save / ppl-vae train")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--noise", action="store_true", help="add likelihood noise to the decoder mean")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--source", choices=("prior", "aggregate"), default="prior",
        help="z from the prior or from the aggregated posterior of --data",
    )
    p.add_argument("--data", help="dataset for --source aggregate (default: digits)")
    p.add_argument("--out", default="ppl_vae_out/sample/samples.png",
                   help="PNG path (default: ppl_vae_out/sample/samples.png; .csv when the "
                        "samples are not images)")
    _shared.add_device_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import ppl_vae as pv
    from ppl_vae import plots

    model = pv.load(args.checkpoint, device=_shared.device_of(args))
    if args.source == "prior":
        x = model.sample(args.n, noise=args.noise, seed=args.seed)
    else:
        data = _shared.load_for(model.spec, args.data or "digits")
        x = pv.infer.sample_aggregate_posterior(model, data.x_train, args.n, noise=args.noise, seed=args.seed)
    shape = _shared.image_shape_for(x.shape[1])
    path = _shared.file_path(args.out)
    if shape is None:
        path = path.with_suffix(".csv")
        import pandas as pd

        pd.DataFrame(x.cpu().numpy()).to_csv(path, index=False)
    else:
        plots.image_grid(x, image_shape=shape, path=path, title=f"{args.n} samples ({args.source})")
    print(f"wrote {path}")
    return 0

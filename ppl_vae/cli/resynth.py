"""``ppl-vae resynth`` — move test digits along an attribute vector (the notes' Figure 17.13).

The attribute vector is the mean latent projection of the training images of
class ``--to`` minus that of class ``--from``; the first ``--n`` test images of
class ``--from`` are projected, moved by each of ``--scales`` times the vector,
and decoded (decoder means), one row per image.
"""

from __future__ import annotations

from ppl_vae.cli import _shared
from ppl_vae.cli.evaluate import model_data, parse_list


def register(sub) -> None:
    p = sub.add_parser("resynth", help="resynthesis grid along an attribute vector between classes")
    p.add_argument("checkpoint", help="a file written by pv.save / ppl-vae train")
    p.add_argument("--data", default="digits", help="a labelled dataset (default: digits)")
    p.add_argument("--from", dest="source", type=int, default=1, help="class the vector starts at")
    p.add_argument("--to", dest="target", type=int, default=7, help="class the vector points to")
    p.add_argument("--n", type=int, default=6, help="test images (rows)")
    p.add_argument(
        "--scales",
        default="-2,-1,0,1,2",
        help="multiples of the vector (columns); write --scales=-2,0,2",
    )
    p.add_argument("--method", choices=("mean", "map"), default="mean", help="projection")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="ppl_vae_out/resynth/resynth.png",
                   help="PNG path (default: ppl_vae_out/resynth/resynth.png)")
    _shared.add_device_option(p)
    p.set_defaults(func=run)


def _class_rows(x, y, label: int, flag: str, name: str):
    if y is None:
        raise ValueError(
            f"--data={name!r} has no labels: resynth needs a labelled dataset like digits"
        )
    rows = x[y == label]
    if len(rows) == 0:
        raise ValueError(
            f"{flag}={label} is not a class of --data={name!r}: "
            f"pick one of {sorted(set(y.tolist()))}"
        )
    return rows


def run(args) -> int:
    import ppl_vae as pv
    from ppl_vae import plots

    if args.n < 1:
        raise ValueError(f"--n={args.n} is invalid: pass an integer >= 1")
    scales = parse_list("--scales", args.scales, float, example="-2,-1,0,1,2")
    model = pv.load(args.checkpoint, device=_shared.device_of(args))
    x_train, y_train, data = model_data(model, args.data, "train")
    x_test, y_test = data.x_test, data.y_test  # same dataset: load it once
    model.check_data(x_test)
    x_a = _class_rows(x_train, y_train, args.source, "--from", args.data)
    x_b = _class_rows(x_train, y_train, args.target, "--to", args.data)
    shape = _shared.image_shape_for(data.data_dim, data.image_shape)
    if shape is None:
        raise ValueError(f"--data={args.data!r} is not image data: resynth draws image grids")
    project = {"method": args.method, "seed": args.seed}
    vector = pv.infer.attribute_vector(model, x_a, x_b, **project)
    x = _class_rows(x_test, y_test, args.source, "--from", args.data)[: args.n]
    images = pv.infer.resynthesize(model, x, vector, scales=scales, **project)
    path = _shared.file_path(args.out)
    plots.resynthesis_grid(
        images,
        image_shape=shape,
        path=path,
        scales=scales,
        original=x,
        title=f"class {args.source} → {args.target} (attribute vector, {args.method} projection)",
    )
    print(f"attribute vector {args.source} → {args.target}: |v| = {float(vector.norm()):.3f}")
    print(f"wrote {path}")
    return 0

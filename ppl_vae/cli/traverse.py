"""``ppl-vae traverse`` — a latent traversal grid (lecture notes, Fig. 17.14) as a PNG.

    ppl-vae traverse runs/tcvae/model.pt --data sprites --out traversal.png

One row per latent dimension sorted by its average KL over the data, columns
from −k to +k around the posterior mean of one datapoint.
"""

from __future__ import annotations

import math

from ppl_vae.cli import _shared


def register(sub) -> None:
    p = sub.add_parser("traverse", help="write a latent traversal grid (rows sorted by KL)")
    p.add_argument("checkpoint", help="a model saved by pv.save / ppl-vae train")
    p.add_argument("--data", required=True, help="dataset name or file, e.g. sprites")
    p.add_argument("--out", default="ppl_vae_out/traverse/traversal.png",
                   help="PNG path (default: ppl_vae_out/traverse/traversal.png)")
    p.add_argument("--k", type=float, default=3.0, help="columns span [-k, k] (default 3)")
    p.add_argument("--steps", type=int, default=7, help="number of columns (default 7)")
    p.add_argument("--index", type=int, default=None, help="datapoint to start from")
    p.add_argument("--seed", type=int, default=0, help="seeds the datapoint when --index is not set")
    p.add_argument("--max-rows", type=int, default=None, help="keep the top rows by KL")
    p.add_argument("--max-points", type=int, default=2000,
                   help="datapoints used for the KL ordering (default 2000)")
    p.add_argument("--size", type=int, default=None,
                   help="image side for rendered data (sprites); default: from the model's data_dim")
    p.add_argument("--binarize", action="store_true", help="threshold the data at 0.5")
    _shared.add_threads_option(p)
    _shared.add_device_option(p)
    p.set_defaults(func=run)


def _load(args, data_dim: int):
    from ppl_vae import data as pv_data

    options = {"binarize": True} if args.binarize else {}
    if args.size is not None:
        options["size"] = args.size
    elif "size" in pv_data.options(args.data) and math.isqrt(data_dim) ** 2 == data_dim:
        options["size"] = math.isqrt(data_dim)
    data = _shared.load_data(args.data, **options)
    x = data.x_test if data.x_test is not None and len(data.x_test) else data.x_train
    if x.shape[1] != data_dim:
        raise ValueError(
            f"--data={args.data!r} has {x.shape[1]} values per datapoint but the model was "
            f"built for data_dim={data_dim}: pass the data it was trained on"
        )
    return data, x


def run(args) -> int:
    import torch

    import ppl_vae as pv
    from ppl_vae.analysis.traversals import traversal_images

    _shared.apply_threads(args)
    if args.max_points < 2:
        raise ValueError(f"--max-points={args.max_points} is invalid: pass an integer >= 2")
    model = pv.load(args.checkpoint, device=_shared.device_of(args))
    data, x = _load(args, model.data_dim)
    x = torch.as_tensor(x)
    if len(x) > args.max_points:
        keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(args.seed))
        x = x[keep[: args.max_points]]
    tr = traversal_images(
        model, x, index=args.index, k=args.k, steps=args.steps,
        max_rows=args.max_rows, seed=args.seed,
    )
    shape = data.image_shape
    if shape is None:
        side = math.isqrt(model.data_dim)
        shape = (side, side) if side * side == model.data_dim else None
    if shape is None:
        raise ValueError(
            f"--data={args.data!r} has no image shape and data_dim={model.data_dim} is not a "
            "square: traversals can only be drawn for image data"
        )
    family = model.spec.get("family", "model")
    tr.plot(_shared.file_path(args.out), image_shape=shape, title=f"{family} traversals on {data.name}")
    print(f"wrote {args.out}: {len(tr.dims)} rows (dims {tr.dims}, by KL), "
          f"{args.steps} columns in [-{args.k:g}, {args.k:g}] around datapoint {tr.index}")
    return 0

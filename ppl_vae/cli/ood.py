"""``ppl-vae ood`` — classification accuracy and out-of-domain AUROC of a class-structured model.

Loads a trained RD-VAE (``ppl-vae train --spec rdvae --classes 0-4``), splits the
test set of ``--data`` into in-domain (``--in-classes``, relabelled 0..C-1 as in
training) and out-of-domain rows (every other class), and reports the latent
classification accuracy on the in-domain rows and the OOD AUROC of every
score method of ``pv.analysis.evaluate_ood``. Writes ``ood.csv``, ``latent_scatter.png`` (first two
principal directions of the encoder means, OOD points marked) and
``subclasses.png`` (k-means sub-classes of one in-domain class).
"""

from __future__ import annotations

import numpy as np

from ppl_vae.cli import _shared


def register(sub) -> None:
    p = sub.add_parser(
        "ood", help="accuracy and out-of-domain AUROC of a trained class-structured model (rdvae)"
    )
    p.add_argument("checkpoint", help="a file written by pv.save / ppl-vae train")
    p.add_argument(
        "--data", default="digits", help="labelled dataset name or file (default: digits)"
    )
    p.add_argument(
        "--in-classes",
        required=True,
        help="the in-domain classes the model was trained on, e.g. 0-4",
    )
    p.add_argument(
        "--method", action="append",
        help="score method of pv.analysis.ood_score (repeatable; default: every method)",
    )
    p.add_argument("--num-samples", type=int, default=256, help="importance samples for log_px")
    p.add_argument(
        "--subclass", type=int, default=0, help="in-domain class (relabelled id) to split"
    )
    p.add_argument("--num-clusters", type=int, default=3, help="sub-classes to find")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="ppl_vae_out/ood", help="output folder")
    _shared.add_threads_option(p)
    _shared.add_device_option(p)
    p.set_defaults(func=run)


def split_domains(data, classes):
    """``(in_train, in_test, x_out)``: in-domain subsets (relabelled) and OOD test rows."""
    if data.y_test is None:
        raise ValueError(f"--data={data.name!r} has no labels: pass a labelled dataset")
    inside = data.subset(classes=classes, relabel=True)
    x_out = data.x_test[~np.isin(data.y_test, classes)]
    if len(inside.x_test) == 0 or len(x_out) == 0:
        raise ValueError(
            f"--in-classes={classes} leaves {len(inside.x_test)} in-domain and {len(x_out)} "
            "out-of-domain test rows: keep some classes out (e.g. --in-classes 0-4 on digits)"
        )
    return inside, x_out


def run(args) -> int:
    import torch
    from sklearn.decomposition import PCA

    import ppl_vae as pv
    from ppl_vae import plots
    from ppl_vae.analysis import find_subclasses, subclass_figure
    from ppl_vae.analysis.ood import METHODS, evaluate_ood

    _shared.apply_threads(args)
    model = pv.load(args.checkpoint, device=_shared.device_of(args))
    if not model.class_structured:
        raise ValueError(
            f"checkpoint {args.checkpoint!r} holds a {model.spec['family']!r} model without "
            "class Gaussians: train a class-structured model (--spec rdvae)"
        )
    methods = args.method or list(METHODS)
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"--method={m!r} is not recognised; valid: {', '.join(METHODS)}")
    classes = _shared.parse_classes(args.in_classes)
    if len(classes) != model.num_classes:
        raise ValueError(
            f"--in-classes={args.in_classes!r} names {len(classes)} classes but the model has "
            f"num_classes={model.num_classes}: pass the classes it was trained on"
        )
    data = _shared.load_for(model.spec, args.data)
    inside, x_out = split_domains(data, classes)
    out = _shared.output_dir(args.out)

    y_in = torch.as_tensor(inside.y_test)
    accuracy = float((model.predict(inside.x_test, seed=args.seed) == y_in).float().mean())
    table = evaluate_ood(model, inside.x_test, x_out, methods=methods,
                         num_samples=args.num_samples, seed=args.seed)
    table.insert(0, "accuracy", accuracy)
    table.insert(0, "n_out", len(x_out))
    table.insert(0, "n_in", len(inside.x_test))
    table.to_csv(out / "ood.csv", index=False)

    with torch.no_grad():
        codes = model.encode(np.concatenate([inside.x_test, x_out])).mean.cpu().numpy()
    z2 = PCA(n_components=2, random_state=args.seed).fit_transform(codes)
    ood_mask = np.arange(len(codes)) >= len(inside.x_test)
    labels = np.concatenate([inside.y_test, np.zeros(len(x_out), dtype=np.int64)])
    plots.latent_scatter(
        z2,
        labels=labels,
        ood_mask=ood_mask,
        class_names={i: str(c) for i, c in enumerate(classes)},
        class_means=True,
        xlabel="PC 1",
        ylabel="PC 2",
        path=out / "latent_scatter.png",
        title=f"{data.name}: in-domain {args.in_classes}, OOD crosses",
    )
    sub = find_subclasses(
        model,
        inside.x_train,
        inside.y_train,
        label=args.subclass,
        num_clusters=args.num_clusters,
        seed=args.seed,
    )
    shape = _shared.image_shape_for(model.data_dim, data.image_shape)
    if shape is not None:
        subclass_figure(
            sub,
            inside.x_train,
            image_shape=shape,
            path=out / "subclasses.png",
            title=f"sub-classes of class {classes[args.subclass]}",
        )
    sub.to_frame().to_csv(out / "subclasses.csv", index=False)

    print(
        f"in-domain accuracy ({len(inside.x_test)} test points, classes {classes}): {accuracy:.3f}"
    )
    _shared.print_table(table[["method", "auroc", "score_in_mean", "score_out_mean", "default"]])
    print(f"wrote {out}/ood.csv, latent_scatter.png, subclasses.png")
    return 0

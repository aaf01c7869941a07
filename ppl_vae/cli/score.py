"""``ppl-vae score`` — disentanglement metrics of a trained model (``pv.metrics.score``).

Prints a table (metric, factor or 'all', value) and writes ``OUT/score.csv``. The
data must carry ground-truth factors: ``sprites`` (rendered; ``--size`` must match
the model), ``dsprites`` / ``shapes3d`` (``--path`` to the published file), or an
``.npz`` with ``factors``.
"""

from __future__ import annotations

from ppl_vae.cli import _shared


def register(sub) -> None:
    p = sub.add_parser("score", help="disentanglement metrics (MIG, DCI, SAP, ...) of a model")
    p.add_argument("checkpoint", help="a file written by pv.save / ppl-vae train")
    p.add_argument("--data", default="sprites", help="dataset with factors (default: sprites)")
    p.add_argument("--path", default=None, help="the data file, for --data dsprites/shapes3d")
    p.add_argument("--subset", action="store_true",
                   help="accept a --path file with fewer rows than published")
    p.add_argument("--size", type=int, default=None, help="image side, for --data sprites")
    p.add_argument("--metrics", default="mig,dci,sap",
                   help="comma-separated: mig, dci, sap, modularity, betavae, factorvae "
                        "(default: mig,dci,sap)")
    p.add_argument("--max-points", type=int, default=10000,
                   help="points for the array metrics (default 10000, as disentanglement_lib)")
    p.add_argument("--num-votes", type=int, default=None,
                   help="training points of the BetaVAE/FactorVAE scores (evaluation: half "
                        "as many; default disentanglement_lib's 10000 and 5000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="ppl_vae_out/score", help="output folder")
    _shared.add_threads_option(p)
    p.set_defaults(func=run)


def parse_metrics(text: str) -> list[str]:
    from ppl_vae.metrics.score import METRICS

    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in METRICS]
    if bad or not names:
        raise ValueError(f"--metrics={text!r} is invalid: pass names among "
                         f"{','.join(METRICS)}, separated by commas")
    return list(dict.fromkeys(names))


def _options(metrics: list[str], num_votes) -> dict:
    if num_votes is None:
        return {}
    if num_votes < 2:
        raise ValueError(f"--num-votes={num_votes} is invalid: pass an integer >= 2")
    votes = {"num_train": num_votes, "num_eval": max(1, num_votes // 2)}
    return {m: votes for m in ("betavae", "factorvae") if m in metrics}


def run(args) -> int:
    import ppl_vae as pv

    _shared.apply_threads(args)
    metrics = parse_metrics(args.metrics)
    options = _options(metrics, args.num_votes)
    if args.size is not None and args.data != "sprites":
        raise ValueError(f"--size={args.size} is only for --data sprites, not {args.data!r}")
    model = pv.load(args.checkpoint)
    if args.subset and args.path is None:
        raise ValueError("--subset is for a --path file (--data dsprites or shapes3d)")
    data = _shared.load_for(model.spec, args.data, path=args.path, size=args.size,
                            subset=args.subset or None)
    if data.factors_train is None:
        raise ValueError(f"--data={args.data!r} has no ground-truth factors: pass a dataset "
                         "with factors (sprites, dsprites, shapes3d, or an .npz with factors)")
    model.check_data(data.x_train[:1])  # a size mismatch becomes a one-line error
    out = _shared.output_dir(args.out)
    table = pv.metrics.score(model, data, metrics, seed=args.seed, max_points=args.max_points,
                             options=options)
    print(f"{model.spec['family']} on {data.name} ({min(args.max_points, data.n_train)} "
          "training rows):")
    _shared.print_table(table)
    table.to_csv(out / "score.csv", index=False)
    print(f"wrote {out / 'score.csv'}")
    return 0

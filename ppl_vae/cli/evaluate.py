"""``ppl-vae evaluate`` — ELBO against importance-sampled log p(x) for a trained model.

For each K in ``--ks``: the per-datapoint IWAE bound of order K (Burda et al.,
2016), the mean importance-sampling ESS, and the share of datapoints whose
PSIS k̂ exceeds 0.7 (Vehtari et al., 2024), next to the ELBO and, where the
model has one, the exact log p(x). Writes ``OUT/evaluate.csv``.

``--ais T1,T2,...`` adds annealed importance sampling with each number of steps
(``OUT/ais.csv``) and, with ``--bdmc N``, BDMC bounds on N points simulated from the
model; both go into the figure ``OUT/ais.png`` (log p̂ against steps, with the band).
"""

from __future__ import annotations

import math

import pandas as pd

from ppl_vae.cli import _shared
from ppl_vae.infer.importance import check_budget

SPLITS = ("train", "test", "all")


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="ELBO vs importance-sampled log p(x), with diagnostics")
    p.add_argument("checkpoint", help="a file written by pv.save / ppl-vae train")
    p.add_argument("--data", default="digits", help="dataset name or file (default: digits)")
    p.add_argument("--split", choices=SPLITS, default=None,
                   help="rows to score: all (default for an .npz file: every row it holds), "
                        "test (default for a named data set) or train")
    p.add_argument("--test-fraction", type=float, default=None,
                   help="share of an .npz file without x_test (or of a named data set) held "
                        "out as its test split (default 0.2), for --split test/train")
    p.add_argument("--ks", default="1,10,100,1000", help="importance samples K, comma-separated")
    p.add_argument("--max-points", type=int, default=None, help="evaluate the first N points only")
    p.add_argument("--chunk-size", type=int, default=None, help="particles per pass (memory)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ais", default=None, metavar="STEPS",
                   help="also estimate log p(x) by AIS with these annealing steps, comma-separated")
    p.add_argument("--ais-chains", type=int, default=16, help="AIS chains per datapoint")
    p.add_argument("--bdmc", type=int, default=0, metavar="N",
                   help="with --ais: BDMC bounds on N points simulated from the model")
    p.add_argument("--out", default="ppl_vae_out/evaluate", help="output folder")
    _shared.add_threads_option(p)
    _shared.add_device_option(p)
    p.set_defaults(func=run)


def parse_list(flag: str, text: str, convert=float, *, example: str = "1,2,3") -> list:
    """``"1,10,100"`` -> ``[1, 10, 100]`` via ``convert``; ValueError naming ``flag``."""
    try:
        values = [convert(t) for t in text.split(",") if t.strip()]
    except ValueError:
        values = []
    if not values:
        raise ValueError(
            f"{flag}={text!r} is invalid: pass values separated by commas, e.g. {example}"
        )
    return values


def parse_ks(text: str) -> list[int]:
    """``--ks`` as sorted distinct integers >= 1."""
    ks = parse_list("--ks", text, int, example="1,10,100")
    if min(ks) < 1:
        raise ValueError(
            f"--ks={text!r} is invalid: every K must be an integer >= 1, e.g. 1,10,100"
        )
    return sorted(set(ks))


def default_split(name: str) -> str:
    """``"all"`` for an ``.npz`` file (score every row it holds), else ``"test"``."""
    from pathlib import Path

    path = Path(name).expanduser()
    return "all" if path.suffix == ".npz" and path.is_file() else "test"


def model_data(model, name: str, split: str = "train", max_points: int | None = None,
               test_fraction: float | None = None):
    """``(x, y, dataset)`` of ``split`` (``"all"``: train and test rows together) from
    ``--data``, binarized when the model needs 0/1 data."""
    import numpy as np

    data = _shared.load_for(model.spec, name, test_fraction=test_fraction)
    if split == "all":
        x = np.concatenate([data.x_train, data.x_test])
        y = None if data.y_train is None else np.concatenate([data.y_train, data.y_test])
    else:
        x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    if max_points is not None:
        if max_points < 1:
            raise ValueError(f"--max-points={max_points} is invalid: pass an integer >= 1")
        x = x[:max_points]
        y = None if y is None else y[:max_points]
    model.check_data(x)  # dimension / support mismatches become one-line errors
    return x, y, data


def describe_rows(split: str, n: int, data, test_fraction: float | None) -> str:
    """What was scored, e.g. ``all 350 rows`` or ``test split: 70 of 350 rows``."""
    total = len(data.x_train) + len(data.x_test)
    if split == "all":
        return f"all {total} rows" if n == total else f"the first {n} of all {total} rows"
    held = f", test_fraction {test_fraction:g}" if test_fraction is not None else ""
    return f"{split} split{held}: {n} of {total} rows"


def _guide_for(model, x, seed: int):
    """The model's guide, or a fitted local guide when its parameters belong to other data."""
    import ppl_vae as pv

    if model.guide_fits(x):
        return None
    print(f"the model's guide is local: fitting q(z|θᵢ) to these {len(x)} points first ...")
    return pv.infer.fit_local_guide(model, x, steps=300, seed=seed, init="prior")


def evaluate(model, x, *, ks, seed: int = 0, chunk_size=None, split: str = "test") -> pd.DataFrame:
    """One row per K: elbo, log_px (IWAE_K), its standard error, ESS and the k̂ shares.

    Where K is too small for a k̂ fit at any point (K < ~25: every point "cannot tell"),
    ``khat_threshold`` and ``share_unreliable`` are NaN (printed n/a), not 0.
    """
    import ppl_vae as pv

    y = None
    guide = _guide_for(model, x, seed)
    elbo = pv.infer.elbo(model, x, y, guide=guide, num_particles=10, seed=seed)
    try:
        exact = float(pv.infer.exact_log_likelihood(model, x).mean())
    except NotImplementedError:
        exact = math.nan
    rows = []
    for k in ks:
        res = pv.infer.log_likelihood(
            model, x, y, guide=guide, num_samples=k, chunk_size=chunk_size, seed=seed + k
        )
        s = res.summary()
        told = s["share_cannot_tell"] < 1  # else K is too small to fit k̂ anywhere
        rows.append(
            {
                "split": split,
                "n": len(x),
                "K": k,
                "elbo": float(elbo.mean()),
                "log_px": s["log_px"],
                "log_px_se": s["log_px_se"],
                "ess_mean": s["ess_mean"],
                "khat_threshold": s["khat_threshold"] if told else math.nan,
                "share_unreliable": s["share_unreliable"] if told else math.nan,
                "share_cannot_tell": s["share_cannot_tell"],
                "exact_log_px": exact,
            }
        )
    return pd.DataFrame(rows)


def ais_table(model, x, *, steps, chains: int, bdmc: int = 0, seed: int = 0) -> pd.DataFrame:
    """One row per number of annealing steps: AIS log p̂ (mean, s.e., ESS, acceptance) and,
    with ``bdmc`` > 0, the mean BDMC bounds and gap on that many simulated points."""
    import ppl_vae as pv

    rows = []
    for t in steps:
        s = pv.infer.ais(model, x, num_steps=t, num_chains=chains, seed=seed).summary()
        row = {"steps": t, "chains": chains, "ais": s["log_px"], "ais_se": s["log_px_se"],
               "ess_mean": s["ess_mean"], "acceptance": s["acceptance_mean"]}
        if bdmc:
            b = pv.infer.bdmc(model, bdmc, num_steps=t, num_chains=chains, seed=seed).summary()
            row.update(bdmc_lower=b["lower"], bdmc_upper=b["upper"], bdmc_gap=b["gap"])
        rows.append(row)
    return pd.DataFrame(rows)


def _parse_ais(args) -> list[int] | None:
    if args.ais is None:
        if args.bdmc:
            raise ValueError("--bdmc needs --ais STEPS (the annealing steps to run it with)")
        return None
    steps = parse_list("--ais", args.ais, int, example="100,1000")
    if min(steps) < 1:
        raise ValueError(f"--ais={args.ais!r} is invalid: every number of steps must be >= 1")
    if args.ais_chains < 1:
        raise ValueError(f"--ais-chains={args.ais_chains} is invalid: pass an integer >= 1")
    if args.bdmc < 0:
        raise ValueError(f"--bdmc={args.bdmc} is invalid: pass 0 (off) or a number of points")
    return sorted(set(steps))


def _write_ais(model, x, steps, args, table, out) -> None:
    import ppl_vae as pv

    frame = ais_table(model, x, steps=steps, chains=args.ais_chains, bdmc=args.bdmc,
                      seed=args.seed)
    print("annealed importance sampling (log p̂ is a stochastic lower bound):")
    _shared.print_table(frame)
    frame.to_csv(out / "ais.csv", index=False)
    best = table.iloc[-1]
    reference = {f"IWAE K={int(best['K'])}": best["log_px"], "ELBO": best["elbo"]}
    pv.plots.ais_vs_steps(frame, path=out / "ais.png", reference=reference)
    print(f"wrote {out / 'ais.csv'} and {out / 'ais.png'}")


def run(args) -> int:
    import ppl_vae as pv

    _shared.apply_threads(args)
    ks = parse_ks(args.ks)
    ais_steps = _parse_ais(args)
    if args.chunk_size is not None and args.chunk_size < 1:
        raise ValueError(f"--chunk-size={args.chunk_size} is invalid: pass an integer >= 1")
    model = pv.load(args.checkpoint, device=_shared.device_of(args))
    split = args.split or default_split(args.data)
    if split == "all" and args.test_fraction is not None:
        raise ValueError(f"--test-fraction={args.test_fraction} needs --split test or train "
                         f"(--data={args.data!r} is scored whole)")
    x, _, data = model_data(model, args.data, split, args.max_points, args.test_fraction)
    rows = model.check_data(x)[0]
    for k in ks:
        check_budget("--ks", k, rows, chunk=args.chunk_size or 1,
                     fix="pass smaller --ks values, or fewer points with --max-points")
    out = _shared.output_dir(args.out)
    table = evaluate(model, x, ks=ks, seed=args.seed, chunk_size=args.chunk_size, split=split)
    print(
        f"{model.spec['family']} on {data.name} "
        f"({describe_rows(split, len(x), data, args.test_fraction)}), nats per datapoint:"
    )
    _shared.print_table(table)
    table.to_csv(out / "evaluate.csv", index=False)
    print(f"wrote {out / 'evaluate.csv'}")
    if ais_steps:
        _write_ais(model, x, ais_steps, args, table, out)
    return 0

"""``blindspot experiment NAME --tier cpu|gpu``: run a named experiment.

``blindspot experiment table1 --tier cpu`` trains the seven Table 1 conditions for three seeds
and writes ``results/table1-cpu/``. ``--tier converged --workers 2`` trains them, plus the
inter-loop-norm fix, 2,000 steps each into ``results/table1-converged/`` (about 76 min on 2
idle cores), judging each run's convergence. ``--tier gpu`` runs the paper-scale presets within a
ten-minute H200 budget into ``results/table1-gpu/``; ``--tier gpu --rehearse`` runs the same
code path tiny on a CPU. A machine without network (such as a GPU node) needs the corpus
prepared beforehand: ``BLINDSPOT_CACHE=.cache blindspot experiment table1 --tier gpu
--prepare`` here, then carry ``.cache`` along.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from blindspot.experiments import EXPERIMENTS

    p = argparse.ArgumentParser(prog="blindspot experiment", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help=f"experiment: {', '.join(EXPERIMENTS)}")
    p.add_argument("--tier", default="cpu", help="cpu (minutes on 2 cores), converged (table1: "
                   "about 76 min on 2 cores) or gpu (one H200)")
    p.add_argument("--out", "--out-table", dest="out",
                   help="output folder (default results/<name>-<tier>)")
    p.add_argument("--out-diag", help="gpu-validation: diagnostics folder "
                   "(default results/diagnostics-gpu)")
    p.add_argument("--seeds", type=int, nargs="+", help="override the tier's seeds")
    p.add_argument("--conditions", nargs="+", help="only these conditions")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied to every run (repeatable)")
    p.add_argument("--arms", nargs="+", help="sensitivity, growth-law: only these arms")
    p.add_argument("--phase", help="growth-law: the phase to train (1, 2); growth-law-predict: "
                   "the phase to predict (1, 2, or paper: the paper's 44M and 129M runs)")
    p.add_argument("--contrast", help="table1: a named contrast grid (gpt2: blindspot 0.1's "
                   "init and recipe, into results/table1-<tier>-gpt2)")
    p.add_argument("--rehearse", action="store_true",
                   help="gpu and converged tiers: tiny model, a few steps, on CPU (checks the "
                        "code path)")
    p.add_argument("--prepare", action="store_true",
                   help="only fetch and tokenize the tier's corpus into the cache, then exit")
    p.add_argument("--progress", action="store_true", help="show a progress bar per run")
    p.add_argument("--workers", type=int, default=1,
                   help="train in this many single-threaded processes (2 suits 2 cores)")
    p.add_argument("--shard", help=argparse.SUPPRESS)  # I/N: the runs one worker trains
    p.add_argument("--scratch", default="runs",
                   help="folder for resumable training state (default runs/)")
    args = p.parse_args(argv)
    if args.name not in EXPERIMENTS:
        print(f"error: unknown experiment {args.name!r}; valid: {', '.join(EXPERIMENTS)}",
              file=sys.stderr)
        return 2
    tiers = ("cpu", "gpu", "converged") if args.name == "table1" else ("cpu", "gpu")
    if args.tier not in tiers:
        print(f"error: unknown tier {args.tier!r} for {args.name}; valid tiers: "
              f"{', '.join(tiers)}", file=sys.stderr)
        return 2
    from blindspot.train.checkpoint import CheckpointError
    from blindspot.train.config import ConfigError, load_config
    from blindspot.train.data import DataError

    try:
        if args.prepare:
            from blindspot.train.data import prepared_data

            size = "44m" if args.tier == "gpu" else "cpu"
            data = prepared_data(load_config(f"{size}-per_loop-norm", args.overrides))
            print(f"prepared {len(data.train):,} training and {len(data.val):,} validation "
                  f"tokens ({data.tokenizer_key})")
            return 0
        extra = {}
        if args.arms:
            if args.name not in ("sensitivity", "growth-law"):
                raise ValueError("--arms applies to sensitivity and growth-law only")
            extra["arms"] = tuple(args.arms)
        if args.phase is not None:
            if not args.name.startswith("growth-law"):
                raise ValueError("--phase applies to growth-law and growth-law-predict only")
            if args.phase not in ("1", "2", "paper") or (
                    args.phase == "paper" and args.name == "growth-law"):
                raise ValueError(f"--phase {args.phase!r}: valid phases are 1 and 2 (and "
                                 f"'paper' for growth-law-predict)")
            extra["phase"] = args.phase if args.phase == "paper" else int(args.phase)
        if args.contrast:
            if args.name != "table1":
                raise ValueError("--contrast applies to table1 only")
            extra["contrast"] = args.contrast
        if args.out_diag:
            if args.name != "gpu-validation":
                raise ValueError("--out-diag applies to gpu-validation only")
            extra["diagnostics_out"] = args.out_diag
        shard = None
        if args.shard:
            i, n = (int(x) for x in args.shard.split("/"))
            shard = (i, n)
        EXPERIMENTS[args.name](args.tier, args.out,
                               seeds=tuple(args.seeds) if args.seeds else None,
                               conditions=tuple(args.conditions) if args.conditions else None,
                               overrides=tuple(args.overrides), rehearse=args.rehearse,
                               progress=args.progress, workers=args.workers, shard=shard,
                               scratch=args.scratch, **extra)
    except (ConfigError, ValueError, DataError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``blindspot diagnose CHECKPOINT [CHECKPOINT ...] [--out DIR]``: every diagnostic of a
trained looped model, written as JSON tables (with run cards) and a figure.

With one checkpoint the tables go to ``--out`` (default
``results/diagnostics-<cpu|gpu>/<run>/``, where <run> is the run's folder name for a
training run's ``checkpoint.pt``, e.g. ``tiny-seed0``, and the file name otherwise); with
several, or a folder of ``*.pt`` files, to ``--out/<run>/``, and ``--out/summary.json``
collects the headline numbers of each. A line per checkpoint says where it wrote.
``--extrapolate 30`` records 30 loops (the GPU Lemma 2 decomposition). Exit status 0 on
success, 2 on bad arguments or an unusable checkpoint (the message names it and the fix).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def checkpoints(paths: list[str]) -> list[Path]:
    """The checkpoint files named, folders expanded to their ``*.pt`` files (sorted)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            pts = sorted(p.glob("*.pt"))
            if not pts:
                raise FileNotFoundError(f"folder {p} holds no *.pt checkpoint")
            found += pts
        else:
            found.append(p)  # load_model names it if it does not exist
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="blindspot diagnose", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="+", help="checkpoint file(s) or folder(s) of *.pt")
    p.add_argument("--out", metavar="DIR", help="output folder (see above)")
    p.add_argument("--windows", type=int, metavar="N",
                   help="validation windows to diagnose (default: the training batch size)")
    p.add_argument("--extrapolate", type=int, metavar="K",
                   help="loops to record, >= the trained depth (default 2K)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: auto)")
    p.add_argument("--halting-target", type=float, default=1.01, metavar="R",
                   help="calibrated halting: target perplexity relative to full depth")
    p.add_argument("--no-toy", action="store_true", help="skip the toy-model prediction")
    p.add_argument("--no-figure", action="store_true", help="do not write diagnostics.png")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no tables printed")
    args = p.parse_args(argv)

    import torch

    from blindspot.diagnostics.checkpoint import (
        default_out,
        diagnose_checkpoint,
        unique_run_names,
    )
    from blindspot.train.checkpoint import CheckpointError
    from blindspot.train.data import DataError

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        ckpts = checkpoints(args.checkpoint)
        names = unique_run_names(ckpts)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    diagnosed = {}
    for name, ckpt in zip(names, ckpts, strict=True):
        if args.out is None:
            out = default_out(ckpt, device)
        else:
            out = Path(args.out) / name if len(ckpts) > 1 else Path(args.out)
        try:
            tables = diagnose_checkpoint(ckpt, out, windows=args.windows,
                                         extrapolate=args.extrapolate, device=device,
                                         halting_target=args.halting_target,
                                         toy=not args.no_toy, figure=not args.no_figure,
                                         progress=not args.quiet)
        except (CheckpointError, DataError, ValueError, FileNotFoundError,
                FloatingPointError) as e:
            print(f"error: {ckpt}: {e}", file=sys.stderr)
            return 2
        diagnosed[name] = tables
        if not args.quiet:
            for t in tables.values():
                print(t.format(), end="\n\n")
        figure = "" if args.no_figure else " and diagnostics.png"
        print(f"{ckpt}: wrote {len(tables)} tables{figure} to {out}/", file=sys.stderr)
    if args.out is not None and len(ckpts) > 1:
        from blindspot.diagnostics.checkpoint import write_summary

        path = write_summary(args.out, diagnosed, config={
            "checkpoints": [str(c) for c in ckpts], "windows": args.windows,
            "extrapolate": args.extrapolate, "device": device})
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

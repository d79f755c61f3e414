"""``blindspot figures [OUTDIR]``: regenerate every registered figure as ``OUTDIR/<name>.png``.

Figures whose result files are not committed are reported as SKIPPED with the command that
produces them; any other error is a failure. Exit status: 0 when nothing failed, 1 when a
figure failed (or ``--strict`` and one was skipped), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="blindspot figures", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("outdir", nargs="?", default="runs/figures",
                   help="folder to write <name>.png into (default: runs/figures, git-ignored)")
    p.add_argument("--results", metavar="DIR",
                   help="results folder to read (default: the repository's results/)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="draw only these figures")
    p.add_argument("--list", action="store_true", help="list figure names and exit")
    p.add_argument("--strict", action="store_true",
                   help="fail when a figure is skipped for missing results")
    p.add_argument("--dpi", type=int, default=120, help="resolution of the PNG files")
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window
    import matplotlib.pyplot as plt

    from blindspot.figures import MissingResults, draw, load_all, results_root, save_png

    figures = load_all()
    if args.list:
        for spec in figures.values():
            print(f"{spec.name:<32} {spec.caption}")
        return 0
    if args.dpi <= 0:
        print(f"error: --dpi must be positive, got {args.dpi}", file=sys.stderr)
        return 2
    names = args.only or sorted(figures)
    unknown = [n for n in names if n not in figures]
    if unknown:
        print(f"error: unknown figure(s) {', '.join(unknown)}; valid: {', '.join(sorted(figures))}",
              file=sys.stderr)
        return 2
    if not names:
        print("error: no figures are registered", file=sys.stderr)
        return 1
    results = Path(args.results) if args.results else results_root()
    if not results.is_dir():
        print(f"error: results folder {results} does not exist; pass --results DIR",
              file=sys.stderr)
        return 2
    out = Path(args.outdir)
    failed = skipped = 0
    for name in names:
        try:
            fig = draw(name, results)
        except MissingResults as e:
            skipped += 1
            print(f"  SKIPPED {name}: {e}")
            continue
        except Exception as e:  # report every broken figure, not only the first
            failed += 1
            print(f"  FAILED  {name}: {type(e).__name__}: {e}")
            continue
        path = save_png(fig, out / f"{name}.png", dpi=args.dpi)
        plt.close(fig)
        print(f"  wrote   {path}")
    print(f"{len(names) - failed - skipped} written, {skipped} skipped, {failed} failed")
    return 1 if failed or (args.strict and skipped) else 0


if __name__ == "__main__":
    sys.exit(main())

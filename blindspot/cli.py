"""``blindspot`` command line: train | diagnose | experiment | predict | verify | figures.

Each subcommand lives with its layer (``module`` runs ``module.main(argv)``); this module
dispatches, and wires the one command that spans two layers: ``diagnose`` writes the tables
of :mod:`blindspot.experiments.diagnose` and draws each diagnosis with
:mod:`blindspot.figures.diagnostics`, which sits above it. Imports are lazy so
``blindspot verify --help`` does not pay for torch.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": ("blindspot.train.cli", "train a preset: blindspot train PRESET [--set k=v ...]"),
    "diagnose": ("blindspot.cli:diagnose", "diagnose a checkpoint: blindspot diagnose CKPT"),
    "experiment": ("blindspot.experiments.cli", "run a named experiment, e.g. table1"),
    "predict": ("blindspot.experiments.predict",
                "predict every loop's ‖H_k‖ over training: blindspot predict PRESET"),
    "verify": ("blindspot.verify", "check every claim and print the verdict table"),
    "figures": ("blindspot.figures.cli", "regenerate figures from committed results"),
}


def diagnose(argv: list[str]) -> int:
    """``blindspot diagnose``: :func:`blindspot.experiments.diagnose.main` with
    ``diagnostics.png`` drawn by :func:`blindspot.figures.diagnostics.save_diagnostics_png`."""
    from blindspot.experiments.diagnose import main as diagnose_main
    from blindspot.figures.diagnostics import save_diagnostics_png

    return diagnose_main(argv, figure=save_diagnostics_png)


def usage() -> str:
    lines = ["usage: blindspot COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<11} {doc}" for name, (_, doc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"error: unknown command {cmd!r}; valid commands: {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    module, _, function = COMMANDS[cmd][0].partition(":")
    entry = getattr(importlib.import_module(module), function or "main")
    return int(entry(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())

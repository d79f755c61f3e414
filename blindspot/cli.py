"""``blindspot`` command line: train | diagnose | experiment | verify | figures.

Each subcommand lives with its layer; this module only dispatches (imports are lazy so
``blindspot verify --help`` does not pay for torch).
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": ("blindspot.train.cli", "train a preset: blindspot train PRESET [--set k=v ...]"),
    "diagnose": ("blindspot.diagnostics.cli", "diagnose a checkpoint: blindspot diagnose CKPT"),
    "experiment": ("blindspot.experiments.cli", "run a named experiment, e.g. table1"),
    "verify": ("blindspot.verify", "check every claim and print the verdict table"),
    "figures": ("blindspot.figures.cli", "regenerate figures from committed results"),
}


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
    mod = importlib.import_module(COMMANDS[cmd][0])
    return int(mod.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())

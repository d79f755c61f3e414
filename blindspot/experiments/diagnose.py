"""``blindspot diagnose CHECKPOINT [CHECKPOINT ...] [--out DIR]``: every diagnostic of a
trained looped model, written as JSON tables (with run cards) and a figure.

With one checkpoint the tables go to ``--out`` (default
``runs/diagnostics-<cpu|gpu>/<run>/``, where <run> is the run's folder name for a
training run's ``checkpoint.pt``, e.g. ``tiny-seed0``, and the file name otherwise: never
into the repository's tracked ``results/`` unless ``--out`` names it); with
several, or a folder of ``*.pt`` files, to ``--out/<run>/``, and ``--out/summary.json``
collects the headline numbers of each. A line per checkpoint says where it wrote.
``--extrapolate 30`` records 30 loops (the GPU Lemma 2 decomposition). Exit status 0 on
success, 2 on bad arguments or an unusable checkpoint (the message names it and the fix).

This is the one path from a trained checkpoint to a committed table:
``blindspot diagnose results/table1-cpu/checkpoints --out results/diagnostics-cpu`` writes
the tables that the full-tier claims (:mod:`blindspot.checks.diagnostics`), the figures and
the book read. :func:`diagnose_checkpoint` loads a checkpoint of our own ``LoopedLM`` with
:func:`blindspot.train.checkpoint.load_model` (which names a missing, corrupt or foreign
file), takes evenly spread validation windows of the checkpoint's own corpus and tokenizer
(:func:`validation_tokens`), runs the library's :func:`blindspot.diagnostics.diagnose` and
writes every table with :func:`blindspot.diagnostics.table.write_tables`. The GPU experiment
calls :func:`diagnose_gpu_checkpoints` on the paper-scale checkpoints (``extrapolate=30``
for the Lemma 2 decomposition over K = 30 loops, into ``results/diagnostics-gpu/<name>/``).

The figure ``diagnostics.png`` is drawn by the figures layer, which sits above this one:
``blindspot diagnose`` (:mod:`blindspot.cli`) passes its drawing function in as ``figure``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from blindspot.diagnostics import Table, adapter_for, diagnose
from blindspot.diagnostics.table import write_tables

RUN_CHECKPOINT = "checkpoint.pt"  # the file every training run writes in its own folder
GPU_LOOPS = 30  # the release measures the Lemma 2 decomposition over K = 30 loops

FigureWriter = Callable[[dict[str, Table], str, Path], object]
"""``figure(tables, title, path)`` draws one diagnosis and saves it as ``path``."""


def run_name(path: str | Path) -> str:
    """The name of the run a checkpoint belongs to: its folder's name for a training run's own
    ``checkpoint.pt`` (``runs/tiny-seed0/checkpoint.pt`` -> ``tiny-seed0``), else the file
    name without ``.pt`` (``checkpoints/per_loop-norm.pt`` -> ``per_loop-norm``)."""
    path = Path(path)
    if path.name == RUN_CHECKPOINT and path.resolve().parent.name:
        return path.resolve().parent.name
    return path.stem


DEFAULT_ROOT = Path("runs")
"""Where commands write when no ``--out`` is given: ``runs/`` (git-ignored), so a default
never overwrites a committed result."""


def default_out(path: str | Path, device: str) -> Path:
    """``runs/diagnostics-<cpu|gpu>/<run name>`` (:func:`run_name`), relative to the current
    folder."""
    kind = "gpu" if device.startswith("cuda") else "cpu"
    return DEFAULT_ROOT / f"diagnostics-{kind}" / run_name(path)


def validation_tokens(cfg, windows: int) -> torch.Tensor:
    """(windows, T+1) validation tokens of the checkpoint's corpus and tokenizer."""
    from blindspot.train.data import eval_windows, prepared_data

    x, y = eval_windows(prepared_data(cfg).val, cfg.data.seq_len, windows)  # (n, T) each
    return torch.cat([x, y[:, -1:]], dim=1)  # (n, T+1)


def diagnose_checkpoint(path: str | Path, out: str | Path | None = None, *,
                        windows: int | None = None, extrapolate: int | None = None,
                        device: str = "cpu", halting_target: float = 1.01, toy: bool = True,
                        figure: FigureWriter | None = None, progress: bool = True,
                        threads: dict | None = None) -> dict[str, Table]:
    """Diagnose one checkpoint and write its tables (see module doc), and ``diagnostics.png``
    when a ``figure`` writer is given; returns the tables. ``threads`` (the thread choice,
    :meth:`blindspot.train.threads.ThreadChoice.card`) goes into the tables' run cards."""
    from blindspot.train.checkpoint import load_model
    from blindspot.train.config import to_dict

    t0 = time.perf_counter()
    model, cfg = load_model(path)  # CheckpointError names a missing/corrupt/foreign file
    model.to(device)
    n = cfg.batch_size if windows is None else windows
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"windows must be an int >= 2 (half calibrates halting, half tests "
                         f"it), got {windows!r}")
    tokens = validation_tokens(cfg, n).to(device)
    tables = diagnose(adapter_for(model), tokens, extrapolate=extrapolate,
                      halting_target=halting_target, toy=toy, progress=progress)
    out = default_out(path, device) if out is None else Path(out)
    config = {"checkpoint": str(path), "checkpoint_sha256": sha256_file(path),
              "train_config": to_dict(cfg), "windows": int(tokens.shape[0]),
              "seq_len": int(tokens.shape[1] - 1), "extrapolate": extrapolate,
              "device": device, "halting_target": halting_target}
    if threads is not None:
        config["threads"] = threads
    write_tables(tables, out, config=config, seed=cfg.seed,
                 wall_time_s=time.perf_counter() - t0)
    if figure is not None:
        figure(tables, run_name(path), out / "diagnostics.png")
    return tables


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes (a table's run card names the checkpoint it came from)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def summary_row(tables: dict[str, Table]) -> dict:
    """The headline numbers of one diagnosis (all read from its tables)."""
    scale, radial = tables["scale"].rows[-1], tables["radial_gradient"].rows
    clamp, exits = tables["radial_clamp"].rows[-1], tables["early_exit"]
    row = {"scale_K": scale["scale_mean"], "scale_K_p99": scale["token_p99"],
           "scale_K_max": scale["token_max"],
           "radial_share_max": max(r["radial_share"] for r in radial),
           "rel_ppl_freeze_scale_K": clamp["rel_ppl_freeze_scale"],
           "rel_ppl_remove_radial_K": clamp["rel_ppl_remove_radial"],
           "ppl_K": clamp["ppl_base"],
           "best_exit_loop": min(exits.rows, key=lambda r: r["ppl"])["loop"]}
    if "halting" in tables:
        row["halting_avg_loops"] = {r["policy"]: r["test_avg_loops"]
                                    for r in tables["halting"].rows}
    if "toy_prediction" in tables:
        row["toy_worst_rel_error"] = tables["toy_prediction"].meta["worst_rel_error"]
    return row


def write_summary(out: str | Path, diagnosed: dict[str, dict[str, Table]], config: dict) -> Path:
    """``OUT/summary.json``: :func:`summary_row` per checkpoint, with a run card."""
    from blindspot.provenance import atomic_write_json, run_card

    rows = {name: summary_row(t) for name, t in diagnosed.items()}
    return atomic_write_json(Path(out) / "summary.json",
                             {"checkpoints": rows, "run_card": run_card(config=config, seed=None)})


def unique_run_names(checkpoints: list[str | Path]) -> list[str]:
    """:func:`run_name` of each checkpoint, or ValueError when two share one (their
    diagnoses would overwrite each other in one output folder)."""
    names = [run_name(c) for c in checkpoints]
    for name in set(names):
        same = [str(c) for c, n in zip(checkpoints, names, strict=True) if n == name]
        if len(same) > 1:
            raise ValueError(f"{' and '.join(same)} are both named {name!r}, so their "
                             f"diagnoses would overwrite each other; diagnose them one at a "
                             f"time with separate --out folders")
    return names


def diagnose_gpu_checkpoints(checkpoints: list[str | Path], out: str | Path =
                             "results/diagnostics-gpu", *, device: str | None = None,
                             extrapolate: int = GPU_LOOPS, windows: int | None = None,
                             progress: bool = True) -> dict[str, dict[str, Table]]:
    """What the GPU experiment calls on its checkpoints: each diagnosed on ``device``
    (default: CUDA when available) over ``extrapolate`` = 30 loops, written to
    ``out/<run name>/`` (:func:`run_name`) with ``out/summary.json``. Runs on CPU checkpoints
    too (``tests/test_diagnostics_cli.py::test_gpu_entry_point_runs_on_cpu``)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(out)
    names = unique_run_names(checkpoints)
    diagnosed = {name: diagnose_checkpoint(c, out / name, windows=windows,
                                           extrapolate=extrapolate, device=device,
                                           progress=progress)
                 for name, c in zip(names, checkpoints, strict=True)}
    write_summary(out, diagnosed, config={"checkpoints": [str(c) for c in checkpoints],
                                          "extrapolate": extrapolate, "device": device,
                                          "windows": windows})
    return diagnosed


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


def main(argv: list[str] | None = None, figure: FigureWriter | None = None) -> int:
    """The command (module doc). ``figure`` draws ``diagnostics.png`` beside each diagnosis
    (unless ``--no-figure``); without one, only the tables are written."""
    usage = "\n\n".join(__doc__.split("\n\n")[:2])  # the module doc up to its design notes
    p = argparse.ArgumentParser(prog="blindspot diagnose", description=usage,
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
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch CPU threads (default: the available CPUs other processes leave "
                        "free; recorded in each table's run card)")
    args = p.parse_args(argv)

    from blindspot.train import threads
    from blindspot.train.checkpoint import CheckpointError
    from blindspot.train.data import DataError

    try:
        choice = threads.choose_threads(args.threads)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    draw = None if args.no_figure else figure
    try:
        ckpts = checkpoints(args.checkpoint)
        names = unique_run_names(ckpts)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    diagnosed = {}
    with threads.using(choice):
        for name, ckpt in zip(names, ckpts, strict=True):
            if args.out is None:
                out = default_out(ckpt, device)
            else:
                out = Path(args.out) / name if len(ckpts) > 1 else Path(args.out)
            try:
                tables = diagnose_checkpoint(ckpt, out, windows=args.windows,
                                             extrapolate=args.extrapolate, device=device,
                                             halting_target=args.halting_target,
                                             toy=not args.no_toy, figure=draw,
                                             progress=not args.quiet, threads=choice.card())
            except (CheckpointError, DataError, ValueError, FileNotFoundError,
                    FloatingPointError) as e:
                print(f"error: {ckpt}: {e}", file=sys.stderr)
                return 2
            diagnosed[name] = tables
            if not args.quiet:
                for t in tables.values():
                    print(t.format(), end="\n\n")
            drawn = "" if draw is None else " and diagnostics.png"
            print(f"{ckpt}: wrote {len(tables)} tables{drawn} to {out}/ "
                  f"({choice.describe()})", file=sys.stderr)
    if args.out is not None and len(ckpts) > 1:
        path = write_summary(args.out, diagnosed, config={
            "checkpoints": [str(c) for c in ckpts], "windows": args.windows,
            "extrapolate": args.extrapolate, "device": device})
        print(f"wrote {path}", file=sys.stderr)
    return 0

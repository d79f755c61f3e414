"""Diagnose saved checkpoints of our own ``LoopedLM`` on their validation split.

:func:`diagnose_checkpoint` is what ``blindspot diagnose`` runs for each checkpoint and what
the GPU experiment calls on the paper-scale checkpoints (``device="cuda"``,
``extrapolate=30`` for the Lemma 2 decomposition over K = 30 loops, writing
``results/diagnostics-gpu/<name>/``). It loads the model with
:func:`blindspot.train.checkpoint.load_model` (which names a missing, corrupt or foreign
file), takes ``windows`` evenly spread validation windows of the checkpoint's own corpus
and tokenizer, runs :func:`blindspot.diagnostics.run.diagnose`, and writes every table as
JSON with a run card, plus ``diagnostics.png``.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import torch

from blindspot.diagnostics.adapter import adapter_for
from blindspot.diagnostics.run import diagnose, write_tables
from blindspot.diagnostics.table import Table

RUN_CHECKPOINT = "checkpoint.pt"  # the file every training run writes in its own folder


def run_name(path: str | Path) -> str:
    """The name of the run a checkpoint belongs to: its folder's name for a training run's own
    ``checkpoint.pt`` (``runs/tiny-seed0/checkpoint.pt`` -> ``tiny-seed0``), else the file
    name without ``.pt`` (``checkpoints/per_loop-norm.pt`` -> ``per_loop-norm``)."""
    path = Path(path)
    if path.name == RUN_CHECKPOINT and path.resolve().parent.name:
        return path.resolve().parent.name
    return path.stem


def default_out(path: str | Path, device: str) -> Path:
    """``results/diagnostics-<cpu|gpu>/<run name>`` (:func:`run_name`)."""
    kind = "gpu" if device.startswith("cuda") else "cpu"
    return Path("results") / f"diagnostics-{kind}" / run_name(path)


def validation_tokens(cfg, windows: int) -> torch.Tensor:
    """(windows, T+1) validation tokens of the checkpoint's corpus and tokenizer."""
    from blindspot.train.data import eval_windows
    from blindspot.train.trainer import prepared_data

    x, y = eval_windows(prepared_data(cfg).val, cfg.data.seq_len, windows)  # (n, T) each
    return torch.cat([x, y[:, -1:]], dim=1)  # (n, T+1)


def diagnose_checkpoint(path: str | Path, out: str | Path | None = None, *,
                        windows: int | None = None, extrapolate: int | None = None,
                        device: str = "cpu", halting_target: float = 1.01, toy: bool = True,
                        figure: bool = True, progress: bool = True) -> dict[str, Table]:
    """Diagnose one checkpoint and write its tables (see module doc); returns the tables."""
    from blindspot.train.checkpoint import load_model

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
    from blindspot.train.config import to_dict

    config = {"checkpoint": str(path), "checkpoint_sha256": _sha256(path),
              "train_config": to_dict(cfg), "windows": int(tokens.shape[0]),
              "seq_len": int(tokens.shape[1] - 1), "extrapolate": extrapolate,
              "device": device, "halting_target": halting_target}
    write_tables(tables, out, config=config, seed=cfg.seed,
                 wall_time_s=time.perf_counter() - t0)
    if figure:
        from blindspot.figures import save_png
        from blindspot.figures.diagnostics import draw_diagnostics

        save_png(draw_diagnostics(tables, title=Path(path).stem), out / "diagnostics.png")
    return tables


def _sha256(path: str | Path) -> str:
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


GPU_LOOPS = 30  # the release measures the Lemma 2 decomposition over K = 30 loops


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
                                           figure=False, progress=progress)
                 for name, c in zip(names, checkpoints, strict=True)}
    write_summary(out, diagnosed, config={"checkpoints": [str(c) for c in checkpoints],
                                          "extrapolate": extrapolate, "device": device,
                                          "windows": windows})
    return diagnosed

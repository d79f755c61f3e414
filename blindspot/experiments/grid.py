"""What every training experiment shares: train one configuration and keep its logs, and
spread a list of runs over single-threaded worker processes.

A run's logs (``config.yaml``, ``metrics.jsonl``, ``final.json`` with its run card) are copied
from the resumable scratch folder into the experiment's ``per_run/<name>/``, which is what the
results commit; the scratch (optimizer state, under ``runs/``) stays out of git, and an
interrupted experiment resumes from it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

RUN_LOGS = "per_run"  # not "runs": .gitignore keeps every runs/ folder (training scratch) out
LOG_FILES = ("config.yaml", "metrics.jsonl", "final.json")

SDPA = "model.attention_kernel=sdpa"
"""The kernel the committed studies other than the CPU grid were trained with, before the CPU
preset's default became ``auto`` (blocked attention on a CPU with dropout): each study pins it,
so that its committed runs stay finished runs of its plan and a seed reproduces them."""


def train_and_keep(cfg, run_dir: Path, scratch_dir: Path, progress: bool = False):
    """Train ``cfg`` in ``scratch_dir`` (resuming if it holds a checkpoint) and copy its logs
    to ``run_dir``; returns the :class:`~blindspot.train.trainer.TrainResult`."""
    from blindspot.train.trainer import train

    res = train(cfg, scratch_dir, progress=progress)
    run_dir.mkdir(parents=True, exist_ok=True)
    for fname in LOG_FILES:
        shutil.copyfile(scratch_dir / fname, run_dir / fname)
    return res


def train_shard(runs, out: Path, scratch: Path, shard: tuple[int, int] | None, what: str,
                progress: bool = False, log=print, describe=lambda cfg: f"{cfg.steps} steps"
                ) -> None:
    """Train this worker's share of ``runs`` (``(name, cfg)`` pairs; all without a shard) into
    ``out/per_run/<name>``, keeping every run finished earlier as it is."""
    for i, (name, cfg) in enumerate(runs):
        if not mine(i, shard):
            continue
        if finished(out / RUN_LOGS / name, cfg):
            log(f"[{what}] {name}: finished earlier, kept as it is")
            continue
        log(f"[{what}] {name}: {describe(cfg)} ...")
        res = train_and_keep(cfg, out / RUN_LOGS / name, scratch / name, progress)
        log(f"[{what}] {name}: ‖H_K‖ {res.final['scale_K']:.1f}, final-loop CE "
            f"{res.final['ce'][-1]:.3f}, ppl {res.final['ppl_K']:.2f} ({res.wall_time_s:.0f} s)")


def finished(run_dir: Path, cfg) -> dict[str, Any] | None:
    """The final evaluation recorded in ``run_dir`` when it is a finished run of ``cfg``
    (configs of older blindspot versions upgraded), else None. A finished run is never
    trained or evaluated again, so its record (run card included) stays the one made when
    it ran."""
    from blindspot.train.config import to_dict, upgrade

    path = run_dir / "final.json"
    if not path.is_file():
        return None
    final = json.loads(path.read_text())
    same = upgrade(final["run_card"]["config"]) == json.loads(json.dumps(to_dict(cfg)))
    return final if same else None


def format_scale(x: float) -> str:
    """A norm for the experiments' Markdown tables: thousands separators from 100 up, two
    decimals below, and nan/inf as they are."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.2f}" if math.isfinite(x) else str(x)


def read_summary(path: str | Path, experiment: str, key: str, command: str) -> dict[str, Any]:
    """An experiment's committed ``summary.json``, checked to be ``experiment``'s and to hold
    ``key``; otherwise ValueError naming the ``command`` that writes it."""
    data = json.loads(Path(path).read_text())
    if data.get("experiment") != experiment or key not in data:
        raise ValueError(f"{path} is not a {experiment} summary (run `{command}`)")
    return data


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The JSON records of ``run_dir/metrics.jsonl``, in order."""
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def spawn_workers(argv: list[str], workers: int, what: str, log=print) -> None:
    """Run ``python -m blindspot.experiments.cli *argv --shard i/n`` in ``workers`` processes,
    one thread each: on a shared 2-core machine two single-threaded processes beat one
    two-threaded process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "blindspot.experiments.cli", *argv,
                               "--shard", f"{i}/{workers}"], env=env) for i in range(workers)]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise RuntimeError(f"{what} worker(s) failed with exit codes {codes}; rerun the same "
                           f"command: finished runs are kept and unfinished ones resume")
    log(f"[{what}] {workers} workers finished")


def mine(index: int, shard: tuple[int, int] | None) -> bool:
    """Whether run ``index`` belongs to this worker's shard (all runs without one)."""
    return shard is None or index % shard[1] == shard[0]

"""Experiment ``sensitivity``: which factor sets the size of the blow-up of ‖H_K‖?

Per-loop CE on the CPU preset (d_model 128, 2 layers × K = 4, bytes of Shakespeare, 200 steps,
seed 0, the paper's dropout 0.1), with one thing changed per arm:

- ``init_recipe``: init {paper, gpt2} × recipe {paper, gpt2} × readout {norm, raw}. The
  recipe axis is the optimizer side of :data:`blindspot.train.config.RECIPES` (schedule,
  betas, decay set, precision); the init axis is ``model.init``.
- ``embed_std``: the paper's init with the embeddings' std σ ∈ {0.02, 0.1, 0.3} (σ = 1 is the
  paper's, arm ``paper-paper-*``), for both readouts.
- ``tied``: the readout untied from the token embedding, both readouts: the tied readout
  exerts a radial force on the embedding that an untied one does not.
- ``lr``: the paper's lr 3e-4 instead of the CPU preset's 2e-3, both readouts: why the CPU
  tier uses 2e-3.
- ``long``: 1,000 steps instead of 200 (RMSNorm readout): does the blow-up keep growing?

Every arm logs the training-batch ‖H_K‖ every 5 steps. Output (``OUT``, default
``results/sensitivity-cpu``): ``per_run/<arm>/`` (config, metrics, final evaluation with run
card), ``summary.json`` (per arm: factors, ‖H_K‖ at init and over training, cumulative
learning rate at each logged step, final-loop CE and perplexity, with a run card) and
``table.md``. ``--arms`` runs a subset (the calibration arms of the scale prediction are
trained and committed before the prediction is made; see
:mod:`blindspot.experiments.scale_prediction`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blindspot.experiments.grid import (
    RUN_LOGS,
    SDPA,
    finished,
    format_scale,
    read_metrics,
    read_summary,
    spawn_workers,
    train_shard,
)
from blindspot.provenance import atomic_write_json, atomic_write_text, run_card
from blindspot.train.config import TrainConfig, load_config, recipe_of

SEED = 0
LOG_EVERY = 5
OUT = "results/sensitivity-cpu"


@dataclass(frozen=True)
class Arm:
    name: str
    group: str
    readout: str  # norm or raw (per-loop supervision throughout)
    overrides: tuple[str, ...] = ()
    factors: dict[str, Any] = field(default_factory=dict)

    def config(self, extra: tuple[str, ...] = ()) -> TrainConfig:
        return load_config(f"cpu-per_loop-{self.readout}",  # SDPA: the kernel it was run with
                           (SDPA, f"seed={SEED}", f"log_every={LOG_EVERY}", *self.overrides,
                            *extra))


def _arms() -> list[Arm]:
    arms = []
    for init in ("paper", "gpt2"):
        for recipe in ("paper", "gpt2"):
            for readout in ("norm", "raw"):
                arms.append(Arm(f"{init}-{recipe}-{readout}", "init_recipe", readout,
                                (f"recipe={recipe}", f"model.init={init}"),
                                {"init": init, "recipe": recipe}))
    for std in (0.02, 0.1, 0.3):
        for readout in ("norm", "raw"):
            arms.append(Arm(f"embed{std}-{readout}", "embed_std", readout,
                            (f"model.init_embed_std={std}",), {"embed_std": std}))
    for readout in ("norm", "raw"):
        arms.append(Arm(f"untied-{readout}", "tied", readout, ("model.tie_embeddings=false",),
                        {"tied": False}))
        arms.append(Arm(f"lr3e-4-{readout}", "lr", readout, ("lr=3e-4",), {"lr": 3e-4}))
    arms.append(Arm("long-norm", "long", "norm", ("steps=1000",), {"steps": 1000}))
    return arms


ARMS: dict[str, Arm] = {a.name: a for a in _arms()}
"""Every arm by name; the paper's init, recipe and embedding std unless a factor says not."""


def run(tier: str = "cpu", out: str | Path | None = None, *, arms: tuple[str, ...] | None = None,
        overrides: tuple[str, ...] = (), scratch: str | Path = "runs", progress: bool = False,
        workers: int = 1, shard: tuple[int, int] | None = None, seeds=None, conditions=None,
        rehearse: bool = False, log=print) -> dict[str, Any]:
    """Train the chosen ``arms`` (all by default) and write ``out`` (see the module doc)."""
    if tier != "cpu":
        raise ValueError(f"the sensitivity study has a cpu tier only (got {tier!r})")
    if seeds or conditions or rehearse:
        raise ValueError("the sensitivity study takes --arms (and --set), not --seeds, "
                         "--conditions or --rehearse: each arm is one seed-0 run")
    names = tuple(ARMS) if arms is None else tuple(arms)
    unknown = [a for a in names if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown arm(s) {unknown}; valid: {', '.join(ARMS)}")
    out = Path(out or OUT)
    scratch = Path(scratch) / out.name  # one scratch per output: two studies never share one
    planned = [(name, ARMS[name].config(overrides)) for name in names]
    t0 = time.perf_counter()
    if workers > 1:
        argv = ["sensitivity", "--tier", tier, "--out", str(out), "--scratch",
                str(scratch.parent), "--arms", *names,
                *[a for o in overrides for a in ("--set", o)]]
        spawn_workers(argv, workers, "sensitivity", log)
    else:
        train_shard(planned, out, scratch, shard, "sensitivity", progress, log,
                    lambda cfg: f"{cfg.steps} steps ({recipe_of(cfg)})")
    summary = summarize(out, time.perf_counter() - t0, overrides)
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "table.md", format_table(summary) + "\n")
    log(format_table(summary))
    return summary


def lr_per_step(cfg: TrainConfig) -> list[float]:
    """The learning rate of each of ``cfg.steps`` optimizer steps, by the trainer's schedule."""
    from blindspot.train.trainer import lr_factor

    return [cfg.lr * lr_factor(i, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio,
                               cfg.lr_schedule) for i in range(cfg.steps)]


def curve(run_dir: Path, cfg: TrainConfig) -> dict[str, Any]:
    """‖H_K‖ over training from a run's logs: the step-0 evaluation (at init) and the
    training-batch mean of every training record, with the cumulative learning rate τ at each
    logged step."""
    from blindspot.toy.scale_growth import cumulative_lr

    recs = read_metrics(run_dir)
    tau = cumulative_lr(lr_per_step(cfg))
    init = next(r for r in recs if r["kind"] == "eval" and r["step"] == 0)
    train = [r for r in recs if r["kind"] == "train"]
    return {"initial_scale_K": init["scale_K"], "curve_steps": [r["step"] for r in train],
            "curve_scale_K": [r["scale"][-1] for r in train],
            "curve_tau": [float(tau[r["step"]]) for r in train]}


def summarize(out: Path, session_s: float = 0.0, overrides: tuple[str, ...] = ()) -> dict:
    """The summary of every arm whose logs are under ``out/per_run`` with the arm's config."""
    rows = {}
    for name, arm in ARMS.items():
        run_dir = out / RUN_LOGS / name
        cfg = arm.config(overrides)
        final = finished(run_dir, cfg)
        if final is None:
            continue  # not run, or a stale result of another config
        rows[name] = {"group": arm.group, "readout": arm.readout, "factors": arm.factors,
                      "recipe": recipe_of(cfg), "steps_total": cfg.steps,
                      "ce_K": final["ce"][-1], "ppl_K": final["ppl_K"],
                      "scale_K": final["scale_K"], "wall_time_s": final["run_card"]["wall_time_s"],
                      **curve(run_dir, cfg)}
    return {"experiment": "sensitivity", "tier": "cpu", "seed": SEED, "arms": rows,
            "runs": len(rows), "total_runs": len(ARMS),
            "train_time_s": sum(r["wall_time_s"] for r in rows.values()),
            "run_card": run_card(config={"arms": sorted(rows), "overrides": list(overrides)},
                                 seed=SEED, wall_time_s=session_s)}


def format_table(summary: dict[str, Any]) -> str:
    rows = [f"Sensitivity study (cpu tier, seed {summary['seed']}, per-loop CE; "
            f"{summary['runs']}/{summary['total_runs']} arms, "
            f"{summary['train_time_s'] / 60:.1f} min of training summed over runs)", "",
            "| arm | group | recipe | readout | ‖H_K‖ at init | peak ‖H_K‖ (training) | "
            "final ‖H_K‖ | final-loop CE (nats) |", "|---|---|---|---|---|---|---|---|"]
    for name in ARMS:
        r = summary["arms"].get(name)
        if r is not None:
            rows.append(f"| {name} | {r['group']} | {r['recipe']} | {r['readout']} | "
                        f"{format_scale(r['initial_scale_K'])} | "
                        f"{format_scale(max(r['curve_scale_K']))} | "
                        f"{format_scale(r['scale_K'])} | {r['ce_K']:.3f} |")
    return "\n".join(rows)


def load_summary(path: str | Path = f"{OUT}/summary.json") -> dict[str, Any]:
    return read_summary(path, "sensitivity", "arms",
                        "blindspot experiment sensitivity --tier cpu")

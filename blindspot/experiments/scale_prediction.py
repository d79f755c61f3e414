"""Experiment ``scale-prediction``: predict ‖H_K‖ over training before the runs are read.

Protocol (the order is recorded: every file carries a run card with its UTC time, and the
claim ``growth.scale_prediction`` checks that the predictions are older than the runs they
predict):

1. Calibrate. The sensitivity study's four :data:`CALIBRATION` arms (per-loop CE, RMSNorm
   readout, the paper's init and recipe with embedding std σ ∈ {1, 0.3, 0.1, 0.02}) are
   trained first; :func:`blindspot.toy.scale_growth.fit_self_logit_model` fits the self-logit
   model's three constants (m, f, c) to their training curves. Nothing else is fitted.
2. Predict, from each target's init (‖H_K‖ at step 0, computed by building the seeded model)
   and recipe (the cumulative learning rate τ at every logged step):

   - the other RMSNorm-readout arms of the study (:data:`TARGET_ARMS`: another init or
     recipe, an untied readout, lr 3e-4, 1,000 steps);
   - the CPU Table 1 grid's per-loop + RMSNorm runs (seeds 0, 1, 2);
   - the GPU tier's 44M per-loop + RMSNorm run at the planned ten-minute budget, and the
     paper's full run (4 epochs of WikiText-103), whose prediction is compared with the
     paper's reported ≈ 39,207 (claim ``growth.paper_run_prediction``).

   Each target is labelled with the model's regime: ``self_logit`` (a tied readout whose
   self-logit γσ²d^{3/2}/m exceeds the floor f: the model predicts the curve) or ``floor``
   (the model predicts only that nothing drives ‖H_K‖ above its floor).
3. Then run the targets (``blindspot experiment sensitivity``, ``blindspot experiment table1``)
   and let the claims compare.

Output: ``results/scale-prediction/predictions.json``. Not the paper's procedure: the paper
reports its numbers without a model of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from blindspot.experiments.table1 import (
    PAPER_EPOCHS,
    WHITESPACE_FACTOR,
    WIKITEXT103_WORDS,
    paper_run_steps,
)
from blindspot.provenance import atomic_write_json, run_card
from blindspot.train.config import TrainConfig, load_config

OUT = "results/scale-prediction"
CALIBRATION = ("paper-paper-norm", "embed0.3-norm", "embed0.1-norm", "embed0.02-norm")
TARGET_ARMS = ("paper-gpt2-norm", "gpt2-paper-norm", "gpt2-gpt2-norm", "untied-norm",
               "lr3e-4-norm", "long-norm")
PAPER_SCALE_K = 39_207.0  # the paper's web page, per-loop + RMSNorm readout


def embed_std(cfg: TrainConfig) -> float:
    """σ_E at init: ``model.init_embed_std``, else the init's own (paper 1, gpt2 0.02)."""
    m = cfg.model
    return m.init_embed_std if m.init_embed_std is not None else {"paper": 1.0, "gpt2": 0.02}[
        m.init]


def initial_scale(cfg: TrainConfig, windows: int | None = None) -> float:
    """‖H_K‖ at init as the trainer's step-0 evaluation computes it (same seed, same
    validation windows; ``windows`` caps their number), without training."""
    import dataclasses

    import torch

    from blindspot.train.checkpoint import build_model
    from blindspot.train.data import prepared_data
    from blindspot.train.trainer import evaluate

    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    if windows is not None:
        cfg = dataclasses.replace(cfg, eval_windows=min(windows, cfg.eval_windows))
    return evaluate(model, prepared_data(cfg).val, cfg, torch.device("cpu"))["scale_K"]


def target_prediction(fit, cfg: TrainConfig, steps: list[int], source: str,
            s0: float | None = None) -> dict[str, Any]:
    """The prediction for one run: its regime, its plateau and ‖H_K‖ at ``steps``."""
    from blindspot.experiments.sensitivity import lr_per_step
    from blindspot.toy.scale_growth import (
        cumulative_lr,
        plateau_scale,
        predict_blind_scale,
        self_logit,
    )

    tied = cfg.model.tie_embeddings and cfg.model.readout == "norm"
    s0 = initial_scale(cfg) if s0 is None else s0
    sigma, d = embed_std(cfg), cfg.model.d_model
    # an untied readout does not decode H_0 as the current token: no self-logit to suppress
    need = float(self_logit(sigma, d, 1.0)) / fit.tolerated_logit if tied else 0.0
    regime = "self_logit" if need > fit.floor else "floor"
    plateau = float(plateau_scale(sigma, d, fit.tolerated_logit, fit.floor)) if tied \
        else fit.floor
    tau = cumulative_lr(lr_per_step(cfg))[steps]
    rate = fit_rate_for(fit, cfg)
    scale = predict_blind_scale(tau, s0, plateau, rate)["scale"]
    return {"source": source, "regime": regime, "tied": tied, "s0": s0, "embed_std": sigma,
            "width": d, "plateau": plateau, "rate": rate, "steps": steps,
            "tau": tau.tolist(), "scale_K": scale.tolist()}


def fit_rate_for(fit, cfg: TrainConfig) -> float:
    """The growth rate c for ``cfg``'s width and depth, carried from the CPU calibration's
    (:func:`blindspot.toy.scale_growth.rate_at_width`; equal at the CPU preset's shape)."""
    from blindspot.toy.scale_growth import rate_at_width

    ref = load_config("cpu-per_loop-norm").model
    m = cfg.model
    return rate_at_width(fit.rate, ref.d_model, 2 * ref.n_layers * ref.num_loops, m.d_model,
                         2 * m.n_layers * m.num_loops)


def measured_curves(study: dict[str, Any], study_root: Path,
                    grid_root: Path) -> dict[str, dict[str, Any]]:
    """Target name -> measured ``steps``, ``scale_K`` (training-batch ‖H_K‖), ``final``
    (evaluated ‖H_K‖) and the run's ``created_utc``, from the sensitivity summary and the
    per-run logs of the study (``study_root``) and of the grid (``grid_root``)."""
    def card(run_dir: Path) -> dict[str, Any]:
        return json.loads((run_dir / "final.json").read_text())

    out = {}
    for name, arm in study["arms"].items():
        out[f"sensitivity/{name}"] = {
            "steps": arm["curve_steps"], "scale_K": arm["curve_scale_K"], "final": arm["scale_K"],
            "created_utc": card(study_root / "per_run" / name)["run_card"]["created_utc"]}
    for run_dir in sorted((grid_root / "per_run").glob("per_loop-norm-seed*")):
        recs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
        train = [r for r in recs if r["kind"] == "train"]
        final = card(run_dir)
        out[f"table1-cpu/{run_dir.name}"] = {
            "steps": [r["step"] for r in train], "scale_K": [r["scale"][-1] for r in train],
            "final": final["scale_K"], "created_utc": final["run_card"]["created_utc"]}
    return out


def run(tier: str = "cpu", out: str | Path | None = None, *, study: str | Path | None = None,
        seeds=None, conditions=None, overrides=(), rehearse: bool = False, gpu: bool = True,
        log=print, **_training_options: Any) -> dict[str, Any]:
    """Fit on the calibration arms of ``study`` (the sensitivity summary) and write the
    predictions of every target to ``out/predictions.json``. Trains nothing, so the
    training options of other experiments (workers, scratch, progress) are ignored.
    ``overrides`` must be those the study was run with (tests shrink both); ``gpu=False``
    leaves out the 44M targets."""
    from blindspot.experiments import sensitivity, table1
    from blindspot.toy.scale_growth import Curve, fit_self_logit_model

    if tier != "cpu":
        raise ValueError(f"scale-prediction is computed on a CPU (got tier {tier!r})")
    if seeds or conditions or rehearse:
        raise ValueError("scale-prediction takes no --seeds, --conditions or --rehearse: it "
                         "predicts the committed experiments' fixed runs")
    summary = sensitivity.load_summary(study or f"{sensitivity.OUT}/summary.json")
    missing = [a for a in CALIBRATION if a not in summary["arms"]]
    if missing:
        raise ValueError(f"the sensitivity summary lacks calibration arm(s) {missing}: run "
                         f"`blindspot experiment sensitivity --tier cpu --arms "
                         f"{' '.join(CALIBRATION)}` first")
    curves = []
    for name in CALIBRATION:
        arm, cfg = summary["arms"][name], sensitivity.ARMS[name].config(overrides)
        curves.append(Curve(np.array(arm["curve_tau"]), np.array(arm["curve_scale_K"]),
                            arm["initial_scale_K"], embed_std(cfg), cfg.model.d_model))
    fit = fit_self_logit_model(curves)
    log(f"[scale-prediction] fitted on {', '.join(CALIBRATION)}: m = {fit.tolerated_logit:.3f}"
        f" nats, f = {fit.floor:.1f}, c = {fit.rate:,.0f} per unit τ (rms log error "
        f"{fit.rms_log_error:.3f} over {fit.n_points} points)")

    targets: dict[str, Any] = {}
    for name in TARGET_ARMS:
        cfg = sensitivity.ARMS[name].config(overrides)
        steps = list(range(cfg.log_every, cfg.steps + 1, cfg.log_every))
        targets[f"sensitivity/{name}"] = target_prediction(fit, cfg, steps, "sensitivity")
    for key, seed, cfg in table1.plan_runs("cpu", conditions=("per_loop-norm",),
                                           overrides=tuple(overrides)):
        steps = sorted({*range(cfg.log_every, cfg.steps + 1, cfg.log_every), cfg.steps})
        targets[f"table1-cpu/{key}-seed{seed}"] = target_prediction(fit, cfg, steps, "table1-cpu")
    budget = full = None
    if gpu:
        gpu_cfg = load_config("44m-per_loop-norm")
        budget = table1.gpu_plan()["steps"]["44m"]
        full = paper_run_steps(gpu_cfg)
        # 8 validation windows (2,048 tokens) of the 44M model at init: its mean ‖H_K‖ to
        # ~1 %, for a thirtieth of the CPU time of the full 256-window evaluation
        s0_44m = initial_scale(gpu_cfg, windows=8)
        for label, steps in (("budget", budget), ("paper_run", full)):
            cfg = load_config("44m-per_loop-norm", [f"steps={steps}"])
            t = target_prediction(fit, cfg, [steps], f"44m {label}", s0=s0_44m)
            targets[f"44m/{label}"] = {**t, "note": (
                "GPU tier at the ten-minute plan" if label == "budget" else
                f"the paper's {PAPER_EPOCHS} epochs of WikiText-103: {WIKITEXT103_WORDS:,} "
                f"words x {WHITESPACE_FACTOR} (whitespace tokens, assumed) at stride "
                f"{cfg.data.stride}, batch {cfg.batch_size}")}
    result = {
        "experiment": "scale-prediction", "model": "self-logit",
        "fitted": {"tolerated_logit": fit.tolerated_logit, "floor": fit.floor,
                   "rate": fit.rate, "rms_log_error": fit.rms_log_error,
                   "n_points": fit.n_points},
        "fitted_on": {"summary": str(study or f"{sensitivity.OUT}/summary.json"),
                      "arms": list(CALIBRATION)},
        "gpu": {"budget_steps": budget, "paper_run_steps": full,
                "fraction_of_paper_training": budget / full,
                "paper_scale_K": PAPER_SCALE_K} if gpu else None,
        "targets": targets,
        "run_card": run_card(config={"calibration": list(CALIBRATION),
                                     "targets": list(targets), "overrides": list(overrides)},
                             seed=None)}
    out = Path(out or OUT)
    atomic_write_json(out / "predictions.json", result)
    for name, t in targets.items():
        log(f"[scale-prediction] {name}: {t['regime']}, ‖H_K‖ {t['s0']:.1f} at init -> "
            f"{t['scale_K'][-1]:,.0f} at step {t['steps'][-1]:,}")
    if gpu:
        log(f"[scale-prediction] the ten-minute GPU budget is {budget:,} of the paper's "
            f"{full:,} steps ({budget / full:.2%})")
    return result

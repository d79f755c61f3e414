"""Figures of ‖H_K‖ over training: the sensitivity study's arms, and the self-logit model's
predictions beside the runs they predicted. Drawn from ``results/sensitivity-cpu/summary.json``,
``results/scale-prediction/predictions.json`` and the grid's per-run logs only.
"""

from __future__ import annotations

import json
from pathlib import Path

from blindspot.figures.registry import figure

PANELS = (("init_recipe", "(a) init × recipe"), ("embed_std", "(b) embedding std σ"),
          ("tied", "(c) untied readout, lr 3e-4, 1,000 steps"))


def draw_sensitivity(summary: dict):
    """‖H_K‖ (training batches) against the step for every arm, one panel per factor; solid
    lines RMSNorm readouts, dashed raw readouts, the paper's arm in black in every panel."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), sharey=True)
    arms = summary["arms"]
    ref = {k: v for k, v in arms.items() if k.startswith("paper-paper-")}
    for ax, (group, title) in zip(axes, PANELS, strict=True):
        groups = ("tied", "lr", "long") if group == "tied" else (group,)
        names = [n for n, a in arms.items() if a["group"] in groups and n not in ref]
        for i, name in enumerate(names):
            a = arms[name]
            ax.plot(a["curve_steps"], a["curve_scale_K"], "-" if a["readout"] == "norm" else "--",
                    color=f"C{i // 2 if group != 'tied' else i}", label=name, lw=1.4)
        for name, a in ref.items():
            ax.plot(a["curve_steps"], a["curve_scale_K"],
                    "-" if a["readout"] == "norm" else "--", color="black", lw=1.2,
                    label=f"{name} (paper's)")
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    axes[0].set_ylabel(r"$\|H_K\|$ (training batch mean)")
    fig.suptitle(f"Sensitivity study ({summary['runs']} arms, seed {summary['seed']}, per-loop "
                 "CE; solid: RMSNorm readout, dashed: raw readout)")
    fig.tight_layout()
    return fig


@figure("sensitivity-cpu", caption="""Which factor sets the size of the blow-up: ‖H_K‖ over
training for every arm of the sensitivity study (per-loop CE; solid lines RMSNorm readouts,
dashed lines raw readouts; black: the paper's init and recipe).""",
        needs=["sensitivity-cpu/summary.json"],
        command="blindspot experiment sensitivity --tier cpu")
def sensitivity_figure(results: Path):
    return draw_sensitivity(json.loads((results / "sensitivity-cpu" / "summary.json")
                                       .read_text()))


def draw_prediction(pred: dict, measured: dict, calibration: dict):
    """(a) every CPU target's predicted curve (line) beside its measured one (dots), and the
    calibration arms' fit; (b) predicted against measured final ‖H_K‖ with the factor-2 band,
    and the 44M prediction beside the paper's reported value."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [3, 2]})
    i = 0
    finals = []
    for name, t in pred["targets"].items():
        if name.startswith("44m/") or name not in measured:
            continue
        m = measured[name]
        color = f"C{i % 10}"
        i += 1
        a.plot(t["steps"], t["scale_K"], "-", color=color, lw=1.2)
        a.plot(m["steps"], m["scale_K"], ".", color=color, ms=3, label=name)
        finals.append((t["scale_K"][-1], m["final"], t["regime"], name))
    for name, arm in calibration.items():
        a.plot(arm["curve_steps"], arm["curve_scale_K"], "x", color="grey", ms=3,
               label=f"{name} (calibration)" if name == next(iter(calibration)) else None)
    a.set_yscale("log")
    a.set_xscale("log")  # logged steps start at 5
    a.set_xlabel("training step")
    a.set_ylabel(r"$\|H_K\|$ (lines: predicted; dots: measured)")
    a.legend(fontsize=6, ncol=2)
    a.set_title("(a) predicted before the run, then measured", fontsize=10)
    lo = min(min(p, m) for p, m, _, _ in finals) / 2 if finals else 1
    hi = max(max(p, m) for p, m, _, _ in finals) * 2 if finals else 1e3
    t44 = pred["targets"].get("44m/paper_run")
    if t44:
        hi = max(hi, 2 * pred["gpu"]["paper_scale_K"])
    grid = np.geomspace(lo, hi, 50)
    b.fill_between(grid, grid / 2, grid * 2, color="0.9", label="within a factor 2")
    b.plot(grid, grid, "k-", lw=0.8)
    for p, m, regime, _ in finals:
        b.plot(p, m, "o" if regime == "self_logit" else "s", ms=5,
               color="C0" if regime == "self_logit" else "C1")
    b.plot([], [], "o", color="C0", label="self-logit regime (CPU)")
    b.plot([], [], "s", color="C1", label="floor regime (CPU)")
    if t44:
        b.plot(t44["scale_K"][-1], pred["gpu"]["paper_scale_K"], "*", ms=14, color="C3",
               label="44M, 4 epochs: predicted vs the paper's")
    b.set_xscale("log")
    b.set_yscale("log")
    b.set_xlabel(r"predicted final $\|H_K\|$")
    b.set_ylabel(r"measured (reported) final $\|H_K\|$")
    b.legend(fontsize=7)
    b.set_title("(b) final ‖H_K‖", fontsize=10)
    f = pred["fitted"]
    fig.suptitle(f"Self-logit model, fitted on {len(calibration)} calibration arms: "
                 f"m = {f['tolerated_logit']:.2f} nats, f = {f['floor']:.0f}, "
                 f"c = {f['rate']:,.0f} per unit τ")
    fig.tight_layout()
    return fig


@figure("scale-prediction", caption="""The self-logit model's predictions of ‖H_K‖ over
training, written before the runs, beside the measured curves of the sensitivity study and
the CPU grid, and its prediction for the paper's full 44M run beside the reported 39,207.""",
        needs=["scale-prediction/predictions.json", "sensitivity-cpu/summary.json",
               "table1-cpu/summary.json"],
        command="blindspot experiment scale-prediction --tier cpu (after the calibration "
                "arms), then blindspot experiment sensitivity --tier cpu and blindspot "
                "experiment table1 --tier cpu")
def prediction_figure(results: Path):
    from blindspot.experiments.scale_prediction import CALIBRATION, measured_curves

    pred = json.loads((results / "scale-prediction" / "predictions.json").read_text())
    study = json.loads((results / "sensitivity-cpu" / "summary.json").read_text())
    measured = measured_curves(study, results / "sensitivity-cpu", results / "table1-cpu")
    calibration = {n: study["arms"][n] for n in CALIBRATION if n in study["arms"]}
    return draw_prediction(pred, measured, calibration)

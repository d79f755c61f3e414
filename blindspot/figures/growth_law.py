"""Figures of the growth-law study: the mechanism loop by loop and over training, and every
registered prediction against its measurement. Drawn from ``results/growth-law/`` only.
"""

from __future__ import annotations

import json
from pathlib import Path

from blindspot.figures.diagnostics import plain_log_ticks
from blindspot.figures.registry import figure

STUDY = "growth-law/summary.json"
COMMAND = "blindspot experiment growth-law --phase 1 --workers 2"


def _loops_panel(ax, runs: dict, names: list[str]) -> None:
    for i, name in enumerate(names):
        r = runs[name]
        ks = range(1, len(r["scale"]) + 1)
        ax.plot(ks, r["scale"], "o-", color=f"C{i}", label=f"{name} (K = {r['num_loops']})")
    ax.set_xlabel("loop k")
    ax.set_ylabel(r"final $\|H_k\|$ (validation mean)")
    ax.set_title("(a) every later loop adds about the same radial increment", fontsize=9)
    ax.legend(fontsize=7)


def draw_mechanism(summary: dict, long_run: str = "long-d64-seed0"):
    """(a) final ‖H_k‖ against k for the loop-count arms; (b) the centred self-logit per loop
    against its initial value; (c) ‖H_1‖ and ‖H_K‖ over training of the longest run; (d) its
    token coefficient α_1 and ratio ρ = (‖H_K‖/‖H_1‖ − 1)/(K − 1) over training."""
    import matplotlib.pyplot as plt

    runs = summary["runs"]
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    loops = [n for n in ("K2-seed0", "base-seed0", "K8-seed0") if n in runs]
    _loops_panel(axes[0], runs, loops)
    ax = axes[1]
    names = [n for n, r in runs.items() if r["learns"] and r["phase"] == 1]
    for i, name in enumerate(names):
        r = runs[name]
        m0, m = r["evals"][0]["mechanism"], r["evals"][-1]["mechanism"]
        ax.plot(range(1, len(m["self_logit"]) + 1), m["self_logit"], "-", color=f"C{i % 10}",
                lw=1, alpha=0.8)
        ax.plot(range(1, len(m0["self_logit"]) + 1), m0["self_logit"], ":", color=f"C{i % 10}",
                lw=0.8, alpha=0.6)
    ax.set_yscale("log")
    ax.set_xlabel("loop k")
    ax.set_ylabel("centred self-logit (nats)")
    ax.set_title("(b) self-logit at init (dotted) and trained (solid), every run", fontsize=9)
    if long_run in runs:
        r = runs[long_run]
        ev = r["evals"][1:]
        tau = [e["tau"] for e in ev]
        ax = axes[2]
        for k in range(len(r["scale"])):
            ax.plot(tau, [e["scale"][k] for e in ev], "o-", ms=3, label=f"loop {k + 1}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"cumulative learning rate $\tau$")
        ax.set_ylabel(r"$\|H_k\|$ (validation mean)")
        ax.set_title(f"(c) {long_run}: the late trend moves into loop 1", fontsize=9)
        ax.legend(fontsize=7)
        ax = axes[3]
        K = len(r["scale"])
        ax.plot(tau, [e["mechanism"]["alpha"][0] for e in ev], "o-", ms=3,
                label=r"$\alpha_1$ (token coefficient of $H_1$)")
        ax.plot(tau, [(e["scale"][-1] / e["scale"][0] - 1) / (K - 1) for e in ev], "s-", ms=3,
                label=r"$\rho=(\|H_K\|/\|H_1\|-1)/(K-1)$")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"cumulative learning rate $\tau$")
        ax.set_title(f"(d) {long_run}: α_1 grows, ρ falls", fontsize=9)
        ax.legend(fontsize=7)
        for a in axes[2:]:
            plain_log_ticks(a, "x")
            plain_log_ticks(a, "y")
    plain_log_ticks(axes[1], "y")
    fig.tight_layout()
    return fig


def draw_predictions(summary: dict, predictions: dict[int, dict]):
    """Predicted against measured final ‖H_K‖, log-log, every run of every phase with a
    registered prediction (phase 1: the committed self-logit model; phase 2: the growth law
    fitted on phase 1); open markers are runs that did not learn."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.5, 6))
    lo, hi = np.inf, 0.0
    marks = {1: ("o", "C0", "phase 1: committed self-logit model"),
             2: ("s", "C3", "phase 2: growth law fitted on phase 1")}
    for phase, pred in sorted(predictions.items()):
        mk, color, label = marks.get(phase, ("^", "C2", f"phase {phase}"))
        xs, ys, open_ = [], [], []
        for name, t in pred["runs"].items():
            r = summary["runs"].get(name)
            if r is None or "scale_K" not in t:
                continue
            xs.append(r["scale_K"])
            ys.append(t["scale_K"][-1])
            open_.append(not r["learns"])
        if not xs:
            continue
        xs, ys, open_ = np.array(xs), np.array(ys), np.array(open_)
        ax.scatter(xs[~open_], ys[~open_], marker=mk, color=color, label=label, s=28)
        if open_.any():
            ax.scatter(xs[open_], ys[open_], marker=mk, facecolors="none", edgecolors=color,
                       s=28, label=f"{label}: did not learn")
        lo, hi = min(lo, xs.min(), ys.min()), max(hi, xs.max(), ys.max())
    if hi > 0:
        line = np.array([lo / 1.5, hi * 1.5])
        ax.plot(line, line, "k-", lw=1)
        for f, style in ((1.5, "--"), (2.0, ":")):
            ax.plot(line, line * f, "k" + style, lw=0.8, label=f"x{f:g}")
            ax.plot(line, line / f, "k" + style, lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"measured final $\|H_K\|$")
    ax.set_ylabel(r"predicted final $\|H_K\|$ (registered before the run)")
    ax.set_title("Growth-law study: every registered prediction")
    plain_log_ticks(ax, "x")
    plain_log_ticks(ax, "y")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _read(results: Path, rel: str) -> dict:
    return json.loads((results / rel).read_text())


@figure("growth-law-mechanism", caption="""The mechanism of the blow-up, measured: later loops
add a constant radial increment (a), the readout's self-logit falls from its initial tens of
nats to about the same value at every loop (b), and over a long run the growth moves into the
first loop's state while the later increments shrink (c, d).""",
        needs=[STUDY], command=COMMAND)
def _mechanism(results: Path):
    return draw_mechanism(_read(results, STUDY))


@figure("growth-law-predictions", caption="""Every registered prediction of the growth-law
study against the run it predicted (final ‖H_K‖, log-log; dashed x1.5, dotted x2).""",
        needs=[STUDY, "growth-law/predictions-phase1.json"], command=COMMAND)
def _predictions(results: Path):
    preds = {}
    for phase in (1, 2):
        path = results / f"growth-law/predictions-phase{phase}.json"
        if path.is_file():
            preds[phase] = json.loads(path.read_text())
    return draw_predictions(_read(results, STUDY), preds)

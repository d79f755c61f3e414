"""Figure of the Table 1 grid, drawn from ``results/table1-<tier>/summary.json`` only.

:func:`draw_table1` shows (a) the mean per-loop scale ‖H_k‖ of every condition (log scale,
each seed's final state as a dot at loop K) and (b) the final-loop perplexity per condition
(mean ± std over seeds); the registered recipes read the committed CPU (and, when present,
GPU) summaries.
"""

from __future__ import annotations

import json
from pathlib import Path

from blindspot.figures.registry import figure


def draw_table1(summary: dict):
    """Two panels from a table1 summary dict (see :mod:`blindspot.experiments.table1`)."""
    import matplotlib.pyplot as plt

    from blindspot.experiments.table1 import ordered

    conds = ordered(summary)
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.5))
    for i, c in enumerate(conds):
        color = f"C{i}"
        K = len(c["scale_per_loop"])
        a.plot(range(1, K + 1), c["scale_per_loop"], "o-", color=color, label=c["label"])
        a.plot([K] * len(c["seeds"]), [s["scale_K"] for s in c["seeds"]], ".", color=color,
               alpha=0.6)
        b.barh(i, c["ppl_K"]["mean"], xerr=c["ppl_K"]["std"], color=color)
    a.set_yscale("log")
    a.set_xlabel("loop k")
    a.set_ylabel(r"mean $\|H_k\|$ (validation)")
    a.set_xticks(range(1, K + 1))
    a.legend(fontsize=7)
    b.set_yticks(range(len(conds)), [c["label"] for c in conds], fontsize=8)
    b.set_xlabel("final-loop perplexity (mean ± std over seeds)")
    lo = min(c["ppl_K"]["mean"] - c["ppl_K"]["std"] for c in conds)
    b.set_xlim(left=max(0.0, 0.95 * lo))
    fig.suptitle(f"Table 1 grid ({summary['tier']} tier, seeds "
                 f"{', '.join(map(str, summary['seeds']))})")
    fig.tight_layout()
    return fig


@figure("table1-cpu", caption="""The CPU Table 1 grid: per-loop scale of each of the seven
conditions (dots: each seed's final ‖H_K‖) and final-loop perplexity.""",
        needs=["table1-cpu/summary.json"], command="blindspot experiment table1 --tier cpu")
def table1_cpu_figure(results: Path):
    return draw_table1(json.loads((results / "table1-cpu" / "summary.json").read_text()))


@figure("table1-cpu-gpt2", caption="""The contrast grid: the same seven conditions trained
with blindspot 0.1's GPT-2-style init and recipe (N(0, 0.02²) weights, warm-up + cosine, betas
(0.9, 0.95), decay on matrices only, float32, dropout 0).""",
        needs=["table1-cpu-gpt2/summary.json"],
        command="blindspot experiment table1 --tier cpu --contrast gpt2")
def table1_cpu_gpt2_figure(results: Path):
    return draw_table1(json.loads((results / "table1-cpu-gpt2" / "summary.json").read_text()))


def draw_convergence(summary: dict, long: dict | None = None, prediction: dict | None = None):
    """(a) The final-loop validation CE of every condition of a converged-tier summary over
    training (mean over seeds; grey: the criterion's last fifth) with, when given, the longer
    runs (dashed) and their registered projections (dotted) and (b) its validation ‖H_K‖."""
    import matplotlib.pyplot as plt
    import numpy as np

    from blindspot.experiments.converged_long import curve_at
    from blindspot.experiments.table1 import ordered

    conv = summary["convergence"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    colors = {}
    for i, e in enumerate(ordered(summary)):
        colors[e["condition"]] = f"C{i}"
        first = e["seeds"][0]
        n = len(first["eval_steps"])
        ce = np.mean([r["eval_ce_K"][:n] for r in e["seeds"]], axis=0)
        sc = np.mean([r["eval_scale_K"][:n] for r in e["seeds"]], axis=0)
        a.plot(first["eval_steps"][1:], ce[1:], color=f"C{i}", label=e["label"])
        b.semilogy(first["eval_steps"], sc, color=f"C{i}", label=e["label"])
    for e in ordered(long) if long else []:
        r = e["seeds"][0]
        color = colors.get(e["condition"], "k")
        a.plot(r["eval_steps"][1:], r["eval_ce_K"][1:], "--", color=color, lw=1)
        b.semilogy(r["eval_steps"], r["eval_scale_K"], "--", color=color, lw=1)
    for cond, p in (prediction or {}).get("runs", {}).items():
        steps = np.linspace(p["fit"]["last_step"], prediction["steps"], 50)
        a.plot(steps, [curve_at(p["fit"], s) for s in steps], ":", color=colors.get(cond, "k"))
    a.axvspan(0.8 * conv["steps"], conv["steps"], color="0.9")
    a.set(xlabel="step", ylabel="final-loop validation CE (nats)",
          title="(a) validation CE" + (" (dashed: longer runs, dotted: their projection)"
                                       if long or prediction else ""))
    b.set(xlabel="step", ylabel="‖H_K‖ (validation, mean over seeds)", title="(b) ‖H_K‖")
    b.legend(fontsize=6)
    fig.tight_layout()
    return fig


@figure("table1-converged", caption="""The converged CPU grid over training: final-loop
validation CE (mean over seeds; grey: the convergence criterion's last fifth) and validation
‖H_K‖ of the eight conditions, with the three longer runs (dashed) and the projection registered
before them (dotted).""",
        needs=["table1-converged/summary.json"],
        command="blindspot experiment table1 --tier converged --workers 2")
def table1_converged_figure(results: Path):
    def read(rel):
        path = results / rel
        return json.loads(path.read_text()) if path.is_file() else None

    return draw_convergence(read("table1-converged/summary.json"),
                            read("table1-converged-long/summary.json"),
                            read("table1-converged-long/prediction.json"))

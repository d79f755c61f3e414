"""The figure of "Fix it in your own model": the scale monitor's records of a foreign model
trained without and with each control, and the held-out perplexity at every exit depth, drawn
from ``results/control-cpu/controls.json`` (written by ``examples/control_foreign_model.py``)."""

from __future__ import annotations

import json
from pathlib import Path

from blindspot.figures.registry import figure

RESULT = "control-cpu/controls.json"
LABELS = {"none": "no control", "norm_penalty": "norm penalty", "raw_readout": "raw-readout loss",
          "inter_loop_norm": "inter-loop norm", "remove_radial": "radial clamp (remove radial)",
          "freeze_scale": "radial clamp (freeze scale)"}


def draw_control(result: dict):
    """``result``: the parsed ``controls.json`` (``rows``: one per control, ``monitor``: the
    monitor's records of each trained run).

    (a) mean ‖H_K‖ over training steps, one line per trained run, a cross where the monitor
    warned; (b) the loops' part of it, ‖H_K‖/‖H_1‖; (c) held-out perplexity of the exit at
    every loop k (dashed: the uncontrolled model with the radial clamp at inference).
    """
    import matplotlib.pyplot as plt

    if not result.get("rows") or not result.get("monitor"):
        raise ValueError("draw_control needs the rows and monitor records of controls.json")
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4.2))
    colors = {name: f"C{i}" for i, name in enumerate(LABELS)}
    warned = {r["control"]: r["warning_step"] for r in result["rows"]}
    trained = [r["control"] for r in result["rows"] if r["control"] in result["monitor"]]
    for name in trained:
        records = result["monitor"][name]
        steps = [r["step"] for r in records]
        color = colors.get(name, "k")
        a.plot(steps, [r["scale_mean"][-1] for r in records], "o-", ms=3, color=color,
               label=LABELS.get(name, name))
        b.plot(steps, [r["loop_ratio"] for r in records], "o-", ms=3, color=color)
        if warned.get(name) is not None:
            at = steps.index(warned[name])
            a.plot(steps[at], records[at]["scale_mean"][-1], "x", ms=12, mew=2.5, color="k",
                   label=f"monitor warned (step {warned[name]})")
    a.set_yscale("log")
    a.set(xlabel="training step", ylabel=r"mean $\|H_K\|$", title=r"(a) $\|H_K\|$ while training")
    a.legend(fontsize=8)
    b.axhline(1.0, color="gray", lw=0.8, ls=":")
    b.set(xlabel="training step", ylabel=r"$\|H_K\| / \|H_1\|$",
          title="(b) scale the loops add on top of loop 1")
    for row in result["rows"]:
        ppl = row["ppl"]
        c.plot(range(1, len(ppl) + 1), ppl, "o--" if row["at"] == "inference" else "o-", ms=4,
               color=colors.get(row["control"], "k"), label=LABELS.get(row["control"],
                                                                       row["control"]))
    c.set_xticks(range(1, max(len(r["ppl"]) for r in result["rows"]) + 1))
    c.set(xlabel="exit loop $k$", ylabel="held-out perplexity",
          title="(c) early exit: perplexity at matched depth")
    c.legend(fontsize=7)
    fig.tight_layout()
    return fig


@figure("control-cpu", caption="""A Huginn-style looped model that blindspot does not know,
trained with per-loop cross-entropy through its LayerNorm coda: without a control the scale
monitor warns and ‖H_K‖ keeps growing through the loops; a norm penalty, a raw-readout auxiliary
loss or an inter-loop norm stop the growth, and every control has lower perplexity at every
exit depth.""", needs=[RESULT],
        command="python examples/control_foreign_model.py --out results/control-cpu")
def control_figure(results: Path):
    return draw_control(json.loads((results / RESULT).read_text()))

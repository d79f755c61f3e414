"""The early-exit chapter's figure: early exit, depth extrapolation and calibrated halting across
the conditions of the CPU grid, drawn from the ``early_exit`` and ``halting`` tables that
``blindspot diagnose`` writes (never recomputed here)."""

from __future__ import annotations

import math
from pathlib import Path

from blindspot.figures.diagnostics import GRID
from blindspot.figures.registry import figure


def draw_early_exit(grid: dict[str, dict]):
    """``grid`` maps a condition to ``{"early_exit": Table, "halting": Table}``.

    (a) perplexity of the exit at every loop k (loops beyond the trained depth K are depth
    extrapolation; the dotted line marks K); (b) calibrated halting on held-out sequences:
    average loops used against perplexity relative to the full trained depth, one marker per
    policy, with the target as a line.
    """
    import matplotlib.pyplot as plt

    if not grid:
        raise ValueError("draw_early_exit needs at least one condition's tables")
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.4))
    markers = {"margin": "o", "entropy": "s", "kl": "^"}
    trained, targets = set(), set()
    for i, (name, tabs) in enumerate(grid.items()):
        ee = tabs["early_exit"]
        color = f"C{i % 10}"
        a.plot(ee.column("loop"), ee.column("ppl"), "o-", ms=3, color=color, label=name)
        trained.update(r["loop"] for r in ee.rows if not r["beyond_trained_depth"])
        halting = tabs.get("halting")
        if halting is None:
            continue
        for r in halting.rows:
            if math.isfinite(r["test_rel_ppl"]):
                b.plot(r["test_avg_loops"], r["test_rel_ppl"], markers.get(r["policy"], "x"),
                       color=color, ms=6)
            targets.add(r["target_rel_ppl"])
    if trained:
        a.axvline(max(trained) + 0.5, color="gray", ls=":", lw=1)
    a.set_yscale("log")
    a.set(xlabel="exit loop $k$", ylabel="perplexity",
          title="(a) early exit and depth extrapolation")
    a.legend(fontsize=7)
    for t in sorted(targets):
        b.axhline(t, color="k", lw=0.8, ls="--")
    for policy, m in markers.items():
        b.plot([], [], m, color="gray", label=policy)
    b.set(xlabel="average loops used (held-out half)", ylabel="perplexity / full depth",
          title="(b) calibrated halting (colours as in (a); dashed: target)")
    b.legend(fontsize=8, title="policy")
    fig.tight_layout()
    return fig


@figure("early-exit-cpu-grid", caption="""Early exit and calibrated halting across the CPU
Table 1 grid: perplexity of the exit at every loop (beyond the trained depth too), and the
loops a calibrated halting policy uses at 1 % perplexity cost on held-out sequences.""",
        needs=[f"diagnostics-cpu/{c}/{t}.json" for c in GRID for t in ("early_exit", "halting")],
        command="blindspot diagnose results/table1-cpu/checkpoints --out results/diagnostics-cpu")
def early_exit_figure(results: Path):
    from blindspot.diagnostics.table import read_tables

    root = results / "diagnostics-cpu"
    return draw_early_exit({c: read_tables(root / c, ("early_exit", "halting")) for c in GRID})

"""Figures of the diagnostics: drawn from the tables ``blindspot diagnose`` writes.

:func:`draw_diagnostics` draws the six panels of one model's diagnosis (``diagnostics.png``
beside its tables); :func:`draw_grid` compares the conditions of the CPU Table 1 grid from
``results/diagnostics-cpu/<condition>/``. Both read tables only, never recompute.
"""

from __future__ import annotations

import math
from pathlib import Path

from blindspot.figures.registry import figure, save_png
from blindspot.train.config import CONDITIONS

GRID = tuple(CONDITIONS)
"""The Table 1 conditions, in the paper's order (checkpoint names of the CPU grid)."""

GRID_TABLES = ("scale", "radial_gradient", "lemma2", "radial_clamp", "early_exit")


SAME_CURVE_NATS = 1e-4
"""Panel (d) draws scale-sensitivity curves that differ by at most this much ΔCE (nats) at
every α as one line (labelled with all their loops): 1e-4 nats is ~1/1000 of the panel's
smallest visible effect and ~500x the float32 round-off of a mean CE of ~3 nats, so curves
merged are the same to the eye and to round-off, and curves kept apart differ visibly."""


def _finite(xs):
    return [x if x is not None and math.isfinite(x) else float("nan") for x in xs]


def loops_label(loops: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"loops 1-3, 5"``; ``[4]`` -> ``"loop 4"``."""
    runs, start = [], loops[0]
    for a, b in zip(loops, loops[1:] + [None], strict=True):
        if b != a + 1:
            runs.append(f"{start}" if start == a else f"{start}–{a}")
            start = b
    return ("loops " if len(loops) > 1 else "loop ") + ", ".join(runs)


def same_curves(curves: dict[int, list[tuple[float, float]]], tol: float = SAME_CURVE_NATS
                ) -> list[list[int]]:
    """Groups of loops whose curves (sorted (α, ΔCE) points) agree within ``tol`` at every
    α, in loop order; each loop joins the first group whose first curve it matches."""
    groups: list[list[int]] = []
    for loop in sorted(curves):
        for g in groups:
            ref = curves[g[0]]
            if len(ref) == len(curves[loop]) and all(
                    a == b and abs(x - y) <= tol
                    for (a, x), (b, y) in zip(ref, curves[loop], strict=True)):
                g.append(loop)
                break
        else:
            groups.append([loop])
    return groups


def plain_log_ticks(ax, axis: str = "y") -> None:
    """Plain tick labels on a log axis (``20``, ``0.01``, ``1e-08``), not ``2×10¹``: the
    major and the minor ticks matplotlib chooses to label, written as numbers."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(_PlainLog(labelOnlyBase=False))
    target.set_minor_formatter(_PlainLog(labelOnlyBase=False))


def _plain_log_class():
    from matplotlib.ticker import LogFormatter

    class PlainLog(LogFormatter):
        """matplotlib's choice of which log ticks to label, each written as a plain number
        (``1000``, ``0.95``), in e-notation only beyond 1e-4..1e6 (``1e-08``)."""

        def _num_to_string(self, x, vmin, vmax):
            return f"{x:.6g}" if 1e-4 <= abs(x) < 1e6 else f"{x:.3g}"

    return PlainLog


def _PlainLog(**kw):  # noqa: N802 (a class made on first use: matplotlib is imported lazily)
    return _plain_log_class()(**kw)


def draw_diagnostics(tables: dict, title: str = ""):
    """Six panels: (a) per-loop scale (mean, p99, max; with the toy's prediction of the
    extrapolated loops when the table is there); (b) radial gradient share with its
    closed form and the round-off floor, and a legend line saying so when the closed form
    lies far below the measurement (the measured share is then round-off); (c) Lemma 2:
    angular step against ‖Δ⊥‖/s and radial increment a_k; (d) scale sensitivity ΔCE(α),
    curves that coincide drawn once (:func:`same_curves`); (e) radial clamp perplexity;
    (f) early exit and calibrated halting. Log axes carry plain tick labels; ``title`` is
    the run's name (``blindspot diagnose`` passes
    :func:`blindspot.experiments.diagnose.run_name`)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    (a, b, c), (d, e, f) = axes

    t = tables["scale"]
    k = t.column("loop")
    a.plot(k, t.column("scale_mean"), "o-", label="mean $\\|H_k\\|$")
    a.plot(k, t.column("token_p99"), "s--", ms=3, label="p99")
    a.plot(k, t.column("token_max"), "^:", ms=3, label="max")
    a.plot(k, t.column("carried_scale_mean"), "k-", lw=0.8, label="carried (after loop norm)")
    if "toy_prediction" in tables and tables["toy_prediction"].rows:  # no rows: skipped
        toy = tables["toy_prediction"]
        name = "depth" if any(r["protocol"] == "depth" for r in toy.rows) else "early"
        rows = [r for r in toy.rows if r["protocol"] == name]
        a.plot([r["loop"] for r in rows], [r["measured"] for r in rows], "o", mfc="none",
               color="gray", label="mean $\\|H_k\\|$, extrapolated depth")
        a.plot([r["loop"] for r in rows], [r["predicted"] for r in rows], "r--",
               label=f"toy fit on loops 1..{toy.meta[name]['fit_loops']}")
    a.set_yscale("log")
    a.set(xlabel="loop $k$", ylabel="scale", title="(a) per-loop scale")
    a.legend(fontsize=8)

    t = tables["radial_gradient"]
    k = t.column("loop")
    measured, closed = t.column("radial_share"), _finite(t.column("closed_form_share"))
    b.plot(k, measured, "o-", label="measured")
    b.plot(k, closed, "kx--", label="closed form")
    b.plot(k, t.column("round_off_floor"), ":", color="gray", label="dtype round-off")
    below = [c / m for c, m in zip(closed, measured, strict=True)
             if math.isfinite(c) and m and m > 0]
    if below and max(below) < 0.1:  # the leak is smaller than what the dtype can resolve
        b.plot([], [], " ", label=f"closed form (the ε-leak) ≥ {1 / max(below):.0f}x below: "
                                  "the\nmeasured share is round-off, not a leak")
    b.set_yscale("log")
    b.set(xlabel="loop $k$", ylabel="$\\|P_{rad}\\,\\nabla L_k\\| / \\|\\nabla L_k\\|$",
          title="(b) radial share of the per-loop gradient")
    b.legend(fontsize=7, loc="center right")

    t = tables["lemma2"]
    k = t.column("loop")
    c.plot(k, t.column("angular_step"), "o-", label="angular step $\\|u_{k}-u_{k-1}\\|$")
    c.plot(k, t.column("angular_step_predicted"), "k--", label="$\\|\\Delta_\\perp\\|/s$")
    c.plot(k, [abs(x) for x in t.column("radial_increment")], "s-", ms=3,
           label="$|a_k|$ radial increment")
    c.plot(k, t.column("tangential"), "^-", ms=3, label="$\\|\\Delta_\\perp\\|$")
    trained = t.meta.get("trained_loops")
    if trained:
        c.axvline(trained + 0.5, color="gray", lw=0.8, ls=":")
    c.set_yscale("log")
    c.set(xlabel="loop $k$", ylabel="size (state units; angular step in radians)",
          title="(c) Lemma 2 decomposition")
    c.legend(fontsize=8)

    t = tables["scale_sensitivity"]
    for mode, style in (("readout", "-"), ("carry", "--")):
        rows = [r for r in t.rows if r["mode"] == mode]
        curves = {loop: sorted((r["alpha"], r["ce_change"]) for r in rows if r["loop"] == loop)
                  for loop in {r["loop"] for r in rows}}
        for group in same_curves(curves):  # coinciding curves drawn once, named together
            pts = curves[group[0]]
            flat = all(abs(y) <= SAME_CURVE_NATS for _, y in pts)
            d.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", ms=3,
                   label=f"{mode}, {loops_label(group)}" + (": flat" if flat else ""))
    d.set_xscale("log")
    d.set(xlabel="state rescaled by $\\alpha$", ylabel="$\\Delta$CE (nats)",
          title="(d) $H \\to \\alpha H$: at the readout, or carried on")
    d.legend(fontsize=8)

    t = tables["radial_clamp"]
    k = t.column("loop")
    for m, style in (("base", "o-"), ("remove_radial", "s--"), ("freeze_scale", "^:")):
        e.plot(k, t.column(f"ppl_{m}"), style, label=m.replace("_", " "))
    e.set_yscale("log")
    e.set(xlabel="loop $k$", ylabel="perplexity", title="(e) radial clamp")
    e.legend(fontsize=8)

    t = tables["early_exit"]
    k, rel = t.column("loop"), t.column("rel_ppl")
    f.plot(k, rel, "o-", label="exit at loop $k$")
    front = [(x, y) for x, y, p in zip(k, rel, t.column("pareto"), strict=True) if p]
    f.plot([p[0] for p in front], [p[1] for p in front], "k.", ms=10, label="Pareto front")
    if "halting" in tables:
        for r in tables["halting"].rows:  # held-out half, relative to its own full depth
            f.plot(r["test_avg_loops"], r["test_rel_ppl"], "*", ms=10,
                   label=f"halting: {r['policy']}")
    f.set_yscale("log")
    f.set(xlabel="loops used", ylabel="perplexity / perplexity at trained K",
          title="(f) early exit and calibrated halting")
    f.legend(fontsize=8)
    from matplotlib.ticker import MaxNLocator

    for ax in (a, b, c, e, f):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        plain_log_ticks(ax)
    plain_log_ticks(d, "x")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_diagnostics_png(tables: dict, title: str, path: Path) -> Path:
    """:func:`draw_diagnostics` of one diagnosis saved as ``path`` (what ``blindspot
    diagnose`` writes beside the tables as ``diagnostics.png``)."""
    import matplotlib.pyplot as plt

    fig = draw_diagnostics(tables, title=title)
    try:
        return save_png(fig, path)
    finally:
        plt.close(fig)


def read_grid(root: Path, conditions=GRID, tables=GRID_TABLES) -> dict[str, dict]:
    """``{condition: {table name: Table}}`` from ``root/<condition>/<table>.json``."""
    from blindspot.diagnostics.table import read_tables

    return {c: read_tables(root / c, tables) for c in conditions}


def draw_grid(grid: dict[str, dict]):
    """Across conditions: (a) mean ‖H_k‖ per loop; (b) radial share per loop; (c) angular
    step against input scale (Lemma 2: ∝ 1/s); (d) perplexity cost of each clamp at loop K."""
    import matplotlib.pyplot as plt

    fig, (a, b, c, d) = plt.subplots(1, 4, figsize=(19, 4.4))
    for name, tabs in grid.items():
        s = tabs["scale"]
        a.plot(s.column("loop"), s.column("scale_mean"), "o-", ms=3, label=name)
        r = tabs["radial_gradient"]
        b.plot(r.column("loop"), r.column("radial_share"), "o-", ms=3, label=name)
        lm = tabs["lemma2"]
        c.plot(lm.column("scale_in"), lm.column("angular_step"), "o", ms=3, label=name)
    a.set_yscale("log")
    a.set(xlabel="loop $k$", ylabel="mean $\\|H_k\\|$", title="(a) scale")
    b.set_yscale("log")
    b.set(xlabel="loop $k$", ylabel="radial share", title="(b) radial share of $\\nabla L_k$")
    c.set_xscale("log")
    c.set_yscale("log")
    c.set(xlabel="input scale $s$", ylabel="angular step",
          title="(c) Lemma 2: angular step vs scale")
    names = list(grid)
    xs = range(len(names))
    last = [grid[n]["radial_clamp"].rows[-1] for n in names]
    d.bar([x - 0.2 for x in xs], [r["rel_ppl_remove_radial"] for r in last], 0.4,
          label="remove radial")
    d.bar([x + 0.2 for x in xs], [r["rel_ppl_freeze_scale"] for r in last], 0.4,
          label="freeze scale")
    d.axhline(1, color="k", lw=0.8)
    d.set_xticks(list(xs), names, rotation=40, ha="right", fontsize=8)
    d.set(ylabel="perplexity / unclamped at loop K", title="(d) radial clamp")
    d.legend(fontsize=8)
    a.legend(fontsize=7)
    from matplotlib.ticker import MaxNLocator

    for ax in (a, b):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


@figure("diagnostics-cpu-grid", caption="""Diagnostics of the CPU Table 1 grid: per-loop scale,
radial share of the per-loop gradient, Lemma 2's angular step against the scale, and the
perplexity cost of the radial clamps, per condition.""",
        needs=[f"diagnostics-cpu/{c}/{t}.json" for c in GRID for t in GRID_TABLES],
        command="blindspot diagnose results/table1-cpu/checkpoints --out results/diagnostics-cpu")
def grid_figure(results: Path):
    return draw_grid(read_grid(results / "diagnostics-cpu"))


@figure("diagnostics-per-loop-norm", caption="""Every diagnostic of the CPU per-loop +
RMSNorm-readout model: scale, radial share, Lemma 2 decomposition, scale sensitivity,
radial clamp, early exit and calibrated halting.""",
        needs=[f"diagnostics-cpu/per_loop-norm/{t}.json" for t in
               ("scale", "radial_gradient", "lemma2", "scale_sensitivity", "radial_clamp",
                "early_exit", "halting")],
        command="blindspot diagnose results/table1-cpu/checkpoints --out results/diagnostics-cpu")
def per_loop_norm_figure(results: Path):
    from blindspot.diagnostics.table import read_tables

    root = results / "diagnostics-cpu" / "per_loop-norm"
    names = ("scale", "radial_gradient", "lemma2", "scale_sensitivity", "radial_clamp",
             "early_exit", "halting")
    return draw_diagnostics(read_tables(root, names), title="per-loop + RMSNorm readout (CPU)")


FOREIGN = "diagnostics-cpu/foreign-huginn"


@figure("diagnostics-foreign", caption="""Every diagnostic of a looped model the package does not
know: the Huginn-style model of examples/diagnose_foreign_model.py (plain torch layers,
prelude + shared core with concatenated input injection + LayerNorm coda), described to
blindspot by LoopAdapter.from_modules and trained for 60 steps of per-loop cross-entropy.""",
        needs=[f"{FOREIGN}/{t}.json" for t in
               ("scale", "radial_gradient", "lemma2", "scale_sensitivity", "radial_clamp",
                "early_exit", "halting", "toy_prediction")],
        command="python examples/diagnose_foreign_model.py --out "
                "results/diagnostics-cpu/foreign-huginn")
def foreign_figure(results: Path):
    from blindspot.diagnostics.table import read_tables

    names = ("scale", "radial_gradient", "lemma2", "scale_sensitivity", "radial_clamp",
             "early_exit", "halting", "toy_prediction")
    return draw_diagnostics(read_tables(results / FOREIGN, names),
                            title="a foreign Huginn-style looped model (CPU)")

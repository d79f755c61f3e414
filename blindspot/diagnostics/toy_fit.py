"""Toy-model prediction of a measured trace: fit the radial recurrence on the first loops,
predict the scale of the rest.

The scalar reduction of Lemma 2 (proofs/lemma2.md; its regimes in notebooks/toy.md),
s_{k+1} = √((ρ s_k + a)² + d²) (+ noise), is fitted by :func:`blindspot.toy.fit_radial_trace`
to the mean scales s_1..s_J of the first J loops (and their measured radial increments a_k
and tangential norms ‖Δ⊥‖), and its ``predict`` gives s_k for every later loop. Two protocols:

- ``depth``: fit on the trained depth (loops 1..K), predict the extrapolated loops
  K+1..K_ext;
- ``early``: fit on the first loops 1..J, J = max(2, ⌈K/2⌉), predict loops J+1..K.

The fit starts at loop 1, not at H_0: the first update acts on the embedding, whose scale
(≈ 0.5 in the CPU grid) is far from the recurrence's working regime. Only loops ≤ J are
passed to the fit, so the prediction cannot see what it predicts. When the adapter says the
update depends only on the direction (``direction_only_update``, Lemma 2's premise), ρ is
fixed to 1, its value in Lemma 2; otherwise ρ is fitted. The table reports measured and
predicted s_k with the relative error |ŝ_k − s_k|/s_k, and its notes say whether the
largest error is within the 20 % target and, when it is not, the likely reason. Demonstrated in
``tests/test_diagnostics_toy.py::test_toy_prediction_recovers_a_synthetic_recurrence``.
"""

from __future__ import annotations

import math

import numpy as np

from blindspot.diagnostics.lemma2 import lemma2_table
from blindspot.diagnostics.table import Table
from blindspot.nn.trace import LoopTrace

TARGET = 0.20  # fixed before any run: predicted ‖H_k‖ within 20 %
TOY_COLUMNS = ["protocol", "loop", "measured", "predicted", "rel_error", "fitted"]


def trace_series(trace: LoopTrace) -> dict[str, np.ndarray]:
    """Mean over tokens of s_0..s_K (‖H_0‖, then ‖H_k‖ before any inter-loop norm) and, per
    loop k = 1..K, the mean radial increment a_k and tangential norm ‖Δ⊥_k‖ of its update."""
    return series_from_lemma2(lemma2_table(trace))


def series_from_lemma2(table: Table) -> dict[str, np.ndarray]:
    """The same series from a :func:`blindspot.diagnostics.lemma2.lemma2_table` (scales: means
    over every token; a_k and ‖Δ⊥_k‖: over tokens with a direction, NaN for a loop that
    starts from a zero state), so a full pass decomposes every update only once."""
    rows = table.rows
    return {"s": np.array([rows[0]["scale_in"]] + [r["scale_out"] for r in rows], dtype=float),
            "a": np.array([r["radial_increment"] for r in rows], dtype=float),
            "dperp": np.array([r["tangential"] for r in rows], dtype=float)}


def predict_from_first(series: dict[str, np.ndarray], fit_loops: int,
                       rho: float | None = None):
    """(fit, predicted s_1..s_K_ext) from loops 1..``fit_loops`` only: s_1..s_J and the
    updates leaving loops 1..J-1 (``series["a"][k]`` is the update into loop k+1)."""
    from blindspot.toy import fit_radial_trace

    J = fit_loops
    s, a, d = series["s"][1:J + 1], series["a"][1:J], series["dperp"][1:J]
    fit = fit_radial_trace(s, a=a, dperp=d, rho=rho)
    K_ext = len(series["s"]) - 1
    return fit, np.asarray(fit.predict(np.arange(K_ext)), dtype=float)  # loops 1..K_ext


def _params(fit) -> dict[str, float]:
    out = {}
    for name in ("rho", "a", "sigma", "dperp"):
        v = getattr(fit, name, None)
        if isinstance(v, (int, float, np.floating)) and math.isfinite(float(v)):
            out[name] = float(v)
    return out


def _protocols(K: int, K_ext: int) -> dict[str, int]:
    """The protocols that have loops to fit and loops to predict, with their fit depth J."""
    protocols = {}
    if K >= 3:  # the fit needs loops 1..2 at least and something left to predict
        protocols["early"] = max(2, math.ceil(K / 2))
    if K_ext > K and K >= 2:
        protocols["depth"] = K
    return protocols


def too_few_loops(trained_loops: int, recorded_loops: int) -> str | None:
    """Why no toy prediction can be made from this many loops (None when one can)."""
    if _protocols(trained_loops, recorded_loops):
        return None
    return (f"the toy prediction fits the radial recurrence on trained loops and predicts later "
            f"ones, so it needs K ≥ 3, or K ≥ 2 with extrapolated loops; got K = "
            f"{trained_loops}, {recorded_loops} loops recorded")


def toy_prediction_table(trace: LoopTrace | Table, trained_loops: int,
                         rho: float | None = None) -> Table:
    """Rows (protocol, loop k ≥ 1): measured and predicted mean scale, relative error, and
    whether the loop was used by the fit. ``trace`` holds K_ext ≥ K loops (or is their
    Lemma 2 table); ``rho`` fixes ρ."""
    K = trained_loops
    series = series_from_lemma2(trace) if isinstance(trace, Table) else trace_series(trace)
    K_ext = len(series["s"]) - 1
    why = too_few_loops(K, K_ext)
    if why:
        raise ValueError(why)
    protocols = _protocols(K, K_ext)
    blank = [k for k in range(1, K_ext + 1) if not math.isfinite(series["s"][k])]
    if blank:
        raise ValueError(f"the toy prediction needs the mean scale of every loop, but loops "
                         f"{blank} have none (a Lemma 2 table whose scale_out is blank); "
                         "rebuild it with lemma2_table from the recorded trace")
    rows, meta, worst = [], {}, {}
    for name, J in protocols.items():
        last = K if name == "early" else K_ext
        fit, pred = predict_from_first(series, J, rho)
        meta[name] = {"fit_loops": J, "formula": str(getattr(fit, "formula", "")),
                      "rho_fixed": rho is not None, **_params(fit)}
        errs = []
        for k in range(1, last + 1):
            s = series["s"][k]
            rel = abs(pred[k - 1] - s) / s
            rows.append({"protocol": name, "loop": k, "measured": float(s),
                         "predicted": float(pred[k - 1]), "rel_error": float(rel),
                         "fitted": k <= J})
            if k > J:
                errs.append(rel)
        worst[name] = max(errs) if errs else math.nan
    notes = []
    for name, w in worst.items():
        J = protocols[name]
        verdict = "within" if w <= TARGET else "OFF"
        notes.append(f"{name}: fit on loops 1..{J}, largest relative error of the predicted "
                     f"loops {w:.1%} ({verdict} the {TARGET:.0%} target)")
        if w > TARGET:
            notes.append(_why_off(series, J, beyond=name == "depth"))
    meta["worst_rel_error"] = worst
    return Table("toy_prediction", TOY_COLUMNS, rows, notes="; ".join(notes), meta=meta)


def skipped_toy_table(reason: str) -> Table:
    """The toy table of a run it cannot describe: no rows, and the reason in its notes."""
    return Table("toy_prediction", TOY_COLUMNS, [], notes=f"skipped: {reason}",
                 meta={"skipped": reason, "worst_rel_error": {}})


def _why_off(series: dict[str, np.ndarray], J: int, beyond: bool) -> str:
    """A measured reason a constant-parameter scalar recurrence misses the later loops: the
    radial increment a_k (Lemma 2's a(u_k)) changes after the fitted loops."""
    a = series["a"][1:]  # updates into loops 2..K_ext
    fitted, later = a[:J - 1], a[J - 1:]
    if len(later) == 0 or not np.isfinite(a).all():
        return "why: too few loops to compare"
    return (f"why: the toy assumes a constant radial increment, but a_k averages "
            f"{fitted.mean():.3g} on the fitted loops and {later.mean():.3g} on the predicted "
            f"ones (range {later.min():.3g}..{later.max():.3g}): the loop's update depends on "
            f"the direction u_k, which keeps turning"
            + (" into directions the model never reached in training (the predicted loops lie "
               "beyond the trained depth)" if beyond else ""))

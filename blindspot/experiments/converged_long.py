"""How far the converged tier is from converged, projected and then measured.

The converged tier (:mod:`blindspot.experiments.table1`, ``--tier converged``) trains 2,000
steps; none of its runs meets the convergence criterion there (the final-loop validation CE
still falls 2.7-5.3 % over the last fifth). This module answers the two questions that leaves:

1. **How many steps would meet it?** :func:`fit_curve` fits CE(t) = a + b (t/1000)^(-c)
   (c in [0, 3]) to a run's validation curve from step :data:`FIT_START`, and
   :func:`criterion_step` finds the first step count S at which the fitted curve improves by
   less than the tolerance over its last fifth. Fitted, not derived: the form is the usual
   power law of loss curves, and when c goes to 0 it becomes a straight line in log t, whose
   relative improvement over a last fifth never falls below a constant, so there is no finite
   answer (``None``).
2. **Does the projection hold, and does the paper's perplexity ordering survive longer
   training?** :func:`predict` writes, from the committed 2,000-step curves only, the CE and the
   criterion each of :data:`LONG_CONDITIONS` (seed :data:`LONG_SEED`) will reach at
   :data:`LONG_STEPS` steps; the file is committed before the runs that test it
   (:data:`LONG_TRAIN`), and the claims ``table1.converged.long_*``
   (:mod:`blindspot.checks.converged`) compare.

How good a 3x extrapolation of these curves is was measured before registering, on the
2,000-step curves themselves (:func:`backtest`: fit to steps 300-667, predict step 2,000): the
errors of the 16 runs of seeds 0 and 1 span -14 % to +12 %, which is what the projection's
threshold allows.

    blindspot experiment table1-long-predict  # results/table1-converged-long/prediction.json
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from blindspot.provenance import atomic_write_json, run_card

FIT_START = 300  # the first 300 steps are the fast initial drop (CE 5.5 -> 2.6), another regime
LONG_STEPS = 6000  # 3x the tier: the longest three runs that fit about 28 min on 2 workers
LONG_SEED = 0
LONG_CONDITIONS = ("per_loop-norm", "per_loop-raw", "per_loop-penalty")
"""Per-loop + RMSNorm readout and its two scale-controlled variants (raw readout, norm
penalty), the three conditions of the paper's perplexity claim."""
LONG_OUT = "results/table1-converged-long"
LONG_SEEDS = (0, 1)  # the projection is of seed 0; seed 1 was trained after seed 0's verdicts
LONG_TRAIN = ("blindspot experiment table1 --tier converged --seeds "
              + " ".join(map(str, LONG_SEEDS)) + " --conditions "
              + " ".join(LONG_CONDITIONS) + f" --set steps={LONG_STEPS} --out {LONG_OUT} "
              "--workers 2")
"""The one command that trains the long runs, seed 0 (the one the prediction is about) and
seed 1 (a second seed for the perplexity comparison); finished runs are kept."""
PREDICT = "blindspot experiment table1-long-predict"
SOURCE = "results/table1-converged/summary.json"
HORIZON = 10**6  # criterion_step searches step counts up to a million (~40 h of one worker)


def _curve(t, a, b, c):
    return a + b * (np.asarray(t, dtype=float) / 1000.0) ** (-c)


def fit_curve(steps: list[int], ce: list[float], start: int = FIT_START) -> dict[str, float]:
    """Least-squares fit of CE(t) = a + b (t/1000)^(-c), b ≥ 0, 0 ≤ c ≤ 3, to the points with
    t ≥ ``start``: the parameters, the RMS residual (nats) and the points used."""
    from scipy.optimize import curve_fit

    t = np.asarray(steps, dtype=float)
    y = np.asarray(ce, dtype=float)
    m = t >= start
    if m.sum() < 4:
        raise ValueError(f"fit_curve needs at least 4 validations at or after step {start}, "
                         f"got {int(m.sum())}")
    if not np.isfinite(y[m]).all():
        raise ValueError("fit_curve: the curve has a non-finite CE")
    (a, b, c), _ = curve_fit(_curve, t[m], y[m], p0=(float(y[m][-1]) - 0.5, 1.0, 0.5),
                             bounds=([-np.inf, 0.0, 0.0], [np.inf, np.inf, 3.0]), maxfev=20000)
    rms = float(np.sqrt(np.mean((_curve(t[m], a, b, c) - y[m]) ** 2)))
    return {"a": float(a), "b": float(b), "c": float(c), "rms": rms, "start": start,
            "points": int(m.sum()), "last_step": int(t[m][-1])}


def curve_at(fit: dict[str, float], step: float) -> float:
    """The fitted CE at ``step``."""
    return float(_curve(step, fit["a"], fit["b"], fit["c"]))


def improvement(fit: dict[str, float], steps: float, window: float) -> float:
    """The fitted curve's relative improvement over the last ``window`` of ``steps`` steps:
    (CE((1 - window) S) - CE(S)) / CE((1 - window) S), the criterion's quantity."""
    ref = curve_at(fit, (1 - window) * steps)
    return (ref - curve_at(fit, steps)) / ref


def criterion_step(fit: dict[str, float], tolerance: float, window: float,
                   every: int = 100, horizon: int = HORIZON) -> int | None:
    """The first step count (a multiple of ``every``, at or after the fit's last point) at
    which the fitted curve meets the criterion, or None up to ``horizon`` (a log-linear
    curve, c = 0, never does)."""
    first = max(every, math.ceil(fit["last_step"] / every) * every)
    grid = np.arange(first, horizon + every, every, dtype=float)
    ref = _curve((1 - window) * grid, fit["a"], fit["b"], fit["c"])
    imp = (ref - _curve(grid, fit["a"], fit["b"], fit["c"])) / ref
    hit = np.nonzero(imp < tolerance)[0]
    return int(grid[hit[0]]) if hit.size else None


def backtest(summary: dict[str, Any], upto: int, target: int) -> list[dict[str, Any]]:
    """For every run of a converged summary: fit the curve up to step ``upto``, predict the
    CE at ``target`` and compare with the measured one (relative error)."""
    from blindspot.experiments.table1 import ordered

    out = []
    for cond in ordered(summary):
        for r in cond["seeds"]:
            steps, ce = r["eval_steps"], r["eval_ce_K"]
            if target not in steps:
                continue
            keep = [i for i, s in enumerate(steps) if s <= upto]
            fit = fit_curve([steps[i] for i in keep], [ce[i] for i in keep])
            measured = ce[steps.index(target)]
            predicted = curve_at(fit, target)
            out.append({"run": f"{cond['condition']}-seed{r['seed']}", "predicted": predicted,
                        "measured": measured, "error": (predicted - measured) / measured})
    return out


def project(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run of a converged summary: its fitted curve and the step count at which it would
    meet the criterion (None: not within :data:`HORIZON`)."""
    from blindspot.experiments.table1 import ordered

    conv = summary["convergence"]
    out = []
    for cond in ordered(summary):
        for r in cond["seeds"]:
            fit = fit_curve(r["eval_steps"], r["eval_ce_K"])
            out.append({"run": f"{cond['condition']}-seed{r['seed']}", "fit": fit,
                        "criterion_step": criterion_step(fit, conv["tolerance"], conv["window"],
                                                         conv["eval_every"])})
    return out


def predict(summary: dict[str, Any], conditions: tuple[str, ...] = LONG_CONDITIONS,
            seed: int = LONG_SEED, steps: int = LONG_STEPS) -> dict[str, Any]:
    """The registered prediction for the long runs: per condition, the CE at ``steps`` and
    the criterion's improvement there, from seed ``seed``'s 2,000-step curve."""
    conv = summary["convergence"]
    runs = {}
    for cond in conditions:
        entry = summary["conditions"].get(cond)
        row = next((r for r in (entry or {}).get("seeds", []) if r["seed"] == seed), None)
        if row is None:
            raise ValueError(f"{SOURCE} has no run {cond}-seed{seed}: train the converged "
                             f"tier first")
        fit = fit_curve(row["eval_steps"], row["eval_ce_K"])
        imp = improvement(fit, steps, conv["window"])
        runs[cond] = {"fit": fit, "ce_K": curve_at(fit, steps),
                      "ppl_K": math.exp(curve_at(fit, steps)), "improvement": imp,
                      "met": bool(imp < conv["tolerance"]),
                      "criterion_step": criterion_step(fit, conv["tolerance"], conv["window"],
                                                       conv["eval_every"]),
                      "ce_at_source_end": row["eval_ce_K"][-1]}
    bt = backtest(summary, upto=667, target=2000)
    return {"steps": steps, "seed": seed, "conditions": list(conditions), "runs": runs,
            "train": LONG_TRAIN, "source": SOURCE,
            "source_revision": summary["run_card"].get("git_revision"),
            "backtest_3x": {"fit_upto": 667, "target": 2000, "runs": bt,
                            "max_abs_error": max(abs(b["error"]) for b in bt)}}


def predict_cli(tier: str = "converged", out: str | Path | None = None, **_: Any) -> dict:
    """``blindspot experiment table1-long-predict``: write ``<out>/prediction.json``
    (default :data:`LONG_OUT`) from the committed converged summary."""
    from blindspot.experiments.table1 import load_summary

    if tier not in ("cpu", "converged"):
        raise ValueError(f"table1-long-predict predicts the converged tier's long runs; "
                         f"tier {tier!r} has none")
    summary = load_summary(SOURCE)  # relative to the working directory, as every experiment
    res = predict(summary)
    path = Path(out or LONG_OUT) / "prediction.json"
    atomic_write_json(path, {**res, "run_card": run_card(
        config={"steps": LONG_STEPS, "seed": LONG_SEED, "conditions": list(LONG_CONDITIONS),
                "fit_start": FIT_START}, seed=LONG_SEED)})
    for cond, r in res["runs"].items():
        print(f"{cond}: CE at step {LONG_STEPS:,} {r['ce_K']:.3f} (ppl {r['ppl_K']:.3f}); last "
              f"fifth improves {100 * r['improvement']:.2f} % -> criterion "
              f"{'met' if r['met'] else 'not met'}; criterion step "
              f"{r['criterion_step'] or 'beyond ' + format(HORIZON, ',')}")
    print(f"wrote {path}")
    return res


__all__ = ["FIT_START", "LONG_CONDITIONS", "LONG_OUT", "LONG_SEED", "LONG_SEEDS", "LONG_STEPS",
           "LONG_TRAIN",
           "PREDICT", "backtest", "criterion_step", "curve_at", "fit_curve", "improvement",
           "predict", "predict_cli", "project"]

"""The converged tier's projection to longer training: the curve fit recovers a known curve, the
criterion step is found (or refused for a log-linear curve), and the two long claims pass and
fail on synthetic predictions and summaries."""

import math

import numpy as np
import pytest

from blindspot.checks import converged as C
from blindspot.claims import Skip
from blindspot.experiments import converged_long as L

STEPS = list(range(0, 2001, 100))


def _curve(a, b, c, steps=STEPS):
    return [a + b * (max(s, 1) / 1000) ** (-c) for s in steps]


def test_fit_recovers_a_power_law_and_projects_it():
    ce = _curve(1.5, 0.4, 0.5)
    fit = L.fit_curve(STEPS, ce)
    assert (fit["a"], fit["b"], fit["c"]) == pytest.approx((1.5, 0.4, 0.5), rel=1e-4)
    assert fit["points"] == 18 and fit["rms"] < 1e-6  # steps 300..2000
    assert L.curve_at(fit, 8000) == pytest.approx(1.5 + 0.4 * 8 ** -0.5, rel=1e-5)
    # the criterion's improvement over the last fifth, closed form for this curve
    S = 6000
    want = (0.4 * (0.8 * S / 1000) ** -0.5 - 0.4 * (S / 1000) ** -0.5) / \
        (1.5 + 0.4 * (0.8 * S / 1000) ** -0.5)
    assert L.improvement(fit, S, 0.2) == pytest.approx(want, rel=1e-4)
    step = L.criterion_step(fit, 0.01, 0.2)
    assert step is not None and step % 100 == 0
    assert L.improvement(fit, step, 0.2) < 0.01 <= L.improvement(fit, step - 100, 0.2)


def test_a_log_linear_curve_never_meets_the_criterion():
    ce = [3.0 - 0.15 * math.log(max(s, 1)) for s in STEPS]
    fit = L.fit_curve(STEPS, ce)
    assert fit["c"] < 0.05  # the power law degenerates to a line in log t
    assert L.criterion_step(fit, 0.01, 0.2, horizon=100_000) is None


def test_fit_refuses_short_or_broken_curves():
    with pytest.raises(ValueError, match="at least 4"):
        L.fit_curve([0, 100, 200, 300, 400], [5, 4, 3, 2.9, 2.8])
    with pytest.raises(ValueError, match="non-finite"):
        L.fit_curve(STEPS, [*_curve(1.5, 0.4, 0.5)[:-1], float("nan")])


def _summary(ce_by_cond, steps=2000, ppl=None):
    conditions = {}
    for cond, ce in ce_by_cond.items():
        s = list(range(0, steps + 1, 100))
        curve = ce if len(ce) == len(s) else _curve(*ce, steps=s)
        imp = (curve[int(0.8 * steps) // 100] - curve[-1]) / curve[int(0.8 * steps) // 100]
        p = (ppl or {}).get(cond, math.exp(curve[-1]))
        conditions[cond] = {
            "condition": cond, "label": cond, "scale_name": "cpu", "steps": steps,
            "ppl_K": {"mean": p, "std": 0.0, "n": 1},
            "seeds": [{"seed": 0, "steps": steps, "eval_steps": s, "eval_ce_K": curve, "ppl_K": p,
                       "convergence": {"improvement": imp, "met": imp < 0.01}}]}
    return {"conditions": conditions, "runs": len(conditions), "total_runs": len(conditions),
            "complete": True, "seeds": [0],
            "convergence": {"tolerance": 0.01, "window": 0.2, "eval_every": 100},
            "run_card": {"git_revision": "abc"}}


CURVES = {"per_loop-norm": (1.5, 0.4, 0.5), "per_loop-raw": (1.4, 0.6, 0.4),
          "per_loop-penalty": (1.45, 0.5, 0.45)}


def test_prediction_and_projection_claim_pass_and_fail():
    pred = L.predict(_summary(CURVES), steps=6000)
    assert set(pred["runs"]) == set(L.LONG_CONDITIONS) and pred["steps"] == 6000
    assert pred["backtest_3x"]["max_abs_error"] < 1e-3  # exact power laws extrapolate exactly
    # runs that follow their curves to 6,000 steps: the projection holds
    long = _summary(CURVES, steps=6000)
    assert C.long_projection(pred, long).passed
    # one run 20 % above its projection: refuted, with its numbers
    off = dict(CURVES)
    off["per_loop-raw"] = [x * 1.2 for x in _curve(*CURVES["per_loop-raw"],
                                                    steps=range(0, 6001, 100))]
    out = C.long_projection(pred, _summary(off, steps=6000))
    assert not out.passed and "per_loop-raw" in out.evidence and "+20.0%" in out.evidence
    # the long runs not trained yet: a Skip naming the command
    with pytest.raises(Skip, match="--set steps=6000"):
        C.long_projection(pred, _summary(CURVES))


def test_long_perplexity_claim_pass_and_fail():
    base = {"per_loop-norm": 6.0, "per_loop-raw": 6.2, "per_loop-penalty": 5.9}
    assert C.long_perplexity(_summary(CURVES, 6000, base), 6000).passed  # 6.2 <= 6.3
    worse = {**base, "per_loop-raw": 6.4}  # > 6.0 x 1.05
    out = C.long_perplexity(_summary(CURVES, 6000, worse), 6000)
    assert not out.passed and "6.400" in out.evidence
    with pytest.raises(Skip):
        C.long_perplexity(_summary(CURVES, 2000, base), 6000)


def test_the_registered_long_prediction_matches_the_committed_curves():
    """The committed prediction file is what :func:`predict` computes from the committed
    2,000-step summary (seed 0's curves do not change when later seeds are added)."""
    import json

    from blindspot.experiments.table1 import load_summary
    from blindspot.figures import results_root

    path = results_root() / "table1-converged-long" / "prediction.json"
    if not path.is_file():
        pytest.skip("no registered prediction committed")
    committed = json.loads(path.read_text())
    fresh = L.predict(load_summary(results_root() / "table1-converged" / "summary.json"))
    for cond, r in committed["runs"].items():
        assert fresh["runs"][cond]["ce_K"] == pytest.approx(r["ce_K"], rel=1e-6)
        assert fresh["runs"][cond]["met"] == r["met"]
    assert np.isfinite(committed["backtest_3x"]["max_abs_error"])

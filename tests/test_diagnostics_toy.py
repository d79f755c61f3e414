"""The toy-model prediction of a measured trace: exact on a trace that follows the toy's
recurrence, honest ("OFF", with the measured reason) when the recurrence changes regime."""

import math

import pytest
import torch

from blindspot.diagnostics.toy_fit import TARGET, toy_prediction_table, trace_series


def test_toy_prediction_recovers_a_synthetic_recurrence(tol, synthetic_trace):
    trace = synthetic_trace([2.0] * 8)
    series = trace_series(trace)
    assert torch.allclose(torch.as_tensor(series["a"]), torch.full((8,), 2.0, dtype=torch.float64))
    t = toy_prediction_table(trace, trained_loops=4, rho=1.0)
    # the trace IS the toy (ρ = 1, a = 2, d = 0.5): prediction error is float64 round-off
    assert max(t.column("rel_error")) <= tol.float64
    assert {r["protocol"] for r in t.rows} == {"early", "depth"}
    assert [r["loop"] for r in t.rows if r["protocol"] == "depth"] == list(range(1, 9))
    assert "within the 20% target" in t.notes
    free = toy_prediction_table(trace, trained_loops=4)  # ρ fitted: recovers ρ = 1
    assert math.isclose(free.meta["depth"]["rho"], 1.0, abs_tol=1e-9)
    # the full pass reads the same series from the Lemma 2 table: same table
    from blindspot.diagnostics.lemma2 import lemma2_table

    assert toy_prediction_table(lemma2_table(trace), 4, rho=1.0).to_json() == t.to_json()


def test_a_regime_change_is_reported_with_its_reason(tol, synthetic_trace):
    trace = synthetic_trace([1.0] * 4 + [6.0] * 4)  # the radial increment jumps after loop 4
    t = toy_prediction_table(trace, trained_loops=4, rho=1.0)
    assert t.meta["worst_rel_error"]["depth"] > TARGET
    assert "OFF the 20% target" in t.notes and "why: the toy assumes a constant radial" in t.notes
    fitted = [r for r in t.rows if r["protocol"] == "depth" and r["fitted"]]
    assert max(r["rel_error"] for r in fitted) <= tol.float64  # the fitted loops are still exact


def test_too_few_loops_is_a_clear_error(synthetic_trace):
    with pytest.raises(ValueError, match="needs K ≥ 3"):
        toy_prediction_table(synthetic_trace([1.0, 1.0]), trained_loops=2)


def test_a_blank_scale_is_named_not_fitted(synthetic_trace):
    from blindspot.diagnostics.lemma2 import lemma2_table

    table = lemma2_table(synthetic_trace([1.0] * 4))
    table.rows[0]["scale_out"] = float("nan")  # a Lemma 2 table that lost s_1
    with pytest.raises(ValueError, match=r"loops \[1\] have none"):
        toy_prediction_table(table, trained_loops=4)

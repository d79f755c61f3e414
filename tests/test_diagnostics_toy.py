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
    assert t.meta["depth"]["regime"] == "linear" and t.meta["depth"]["kind"] == "drift"
    free = toy_prediction_table(trace, trained_loops=4)  # ρ chosen by the held-out loop 4
    assert free.meta["depth"]["kind"] == "drift" and free.meta["depth"]["rho"] == 1.0
    assert "held-out" in free.meta["depth"]["rho_source"]
    # a 2-loop window has no loop to hold out: refused, with the reason, never a number
    assert "refused" in free.meta["early"] and math.isnan(free.meta["worst_rel_error"]["early"])
    assert not [r for r in free.rows if r["protocol"] == "early"]
    assert "early: fit on loops 1..2: refused: ρ is not fixed by the architecture" in free.notes
    # the full pass reads the same series from the Lemma 2 table: same table
    from blindspot.diagnostics.lemma2 import lemma2_table

    assert toy_prediction_table(lemma2_table(trace), 4, rho=1.0).to_json() == t.to_json()


def test_a_regime_change_is_reported_with_its_reason(tol, synthetic_trace):
    trace = synthetic_trace([1.0] * 4 + [6.0] * 4)  # the radial increment jumps after loop 4
    t = toy_prediction_table(trace, trained_loops=4, rho=1.0)
    assert t.meta["worst_rel_error"]["depth"] > TARGET
    assert "OFF the 20% target" in t.notes
    assert "why: the toy gives these updates a_k = 1..1" in t.notes
    assert "measured a_k of the predicted updates range 6..6" in t.notes
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


def _trace_of(scales, synthetic_trace, dperp=0.5):
    """A trace whose every token follows the given scalar scales s_0, s_1, ... exactly: the
    radial increment of each update is solved from s_{k+1}² = (s_k + a_k)² + d²."""
    a = [math.sqrt(s1**2 - dperp**2) - s0 for s0, s1 in zip(scales, scales[1:], strict=False)]
    return synthetic_trace(a, dperp=dperp, s0=scales[0])


def test_a_constant_scale_is_bounded_not_extrapolated(tol, synthetic_trace):
    # every loop at the same scale, as after a post-LayerNorm loop: the slope of a_k against
    # s_k is round-off over round-off, so ρ must not be fitted to it
    trace = _trace_of([11.3] * 9, synthetic_trace)
    for rho in (None, 1.0):  # the window decides before the architecture's ρ matters
        t = toy_prediction_table(trace, trained_loops=4, rho=rho)
        for protocol in ("early", "depth"):
            assert t.meta[protocol]["kind"] == "constant"
            assert t.meta[protocol]["regime"] == "bounded"
        # 1e-12: the float64 round-off of rebuilding 11.3 from s_0 through 8 updates
        assert max(abs(r["predicted"] / 11.3 - 1) for r in t.rows) <= 1e-12
        assert "constant: s_k = 11.3" in t.notes


def test_a_bounded_contraction_is_recovered_from_the_held_out_loop(synthetic_trace):
    rho, a, d = 0.7, 2.0, 0.5  # fixed point ≈ 6.73, reached from s_0 = 3 over ~10 loops
    s = [3.0]
    for _ in range(12):
        s.append(math.hypot(rho * s[-1] + a, d))
    trace = _trace_of(s, synthetic_trace, dperp=d)
    t = toy_prediction_table(trace, trained_loops=6)  # ρ not fixed: the window chooses
    m = t.meta["depth"]
    assert m["kind"] == "contraction" and m["regime"] == "bounded"
    # float64 least squares on three exact updates: parameters to round-off (1e-9 allows
    # the conditioning of a slope over a scale range of ~0.3)
    assert (m["rho"], m["a"], m["dperp"]) == pytest.approx((rho, a, d), abs=1e-9)
    assert t.meta["worst_rel_error"]["depth"] <= 1e-9
    # the held-out loop 6 preferred the contraction over a drift and a fixed point
    held = m["held_out_rel_error"]
    assert held["contraction"] < min(held["drift"], held["fixed_point"])
    # ρ = 1 imposed on the same trace (a wrong architecture claim) drifts away instead
    wrong = toy_prediction_table(trace, trained_loops=6, rho=1.0)
    assert wrong.meta["worst_rel_error"]["depth"] > t.meta["worst_rel_error"]["depth"]


def test_a_shrinking_then_growing_trace_uses_the_settled_increment(tol, synthetic_trace):
    # a large initial state shrinks over the first updates, then the scale grows by a = 2
    trace = synthetic_trace([-3.0, -1.5] + [2.0] * 6, s0=8.0)
    for rho in (1.0, None):  # the architecture's ρ = 1, or the held-out loop's choice
        t = toy_prediction_table(trace, trained_loops=4, rho=rho)
        m = t.meta["depth"]
        assert m["kind"] == "drift" and m["a"] == pytest.approx(2.0, abs=tol.float64)
        # the window's last update is the settled one: loops 5..8 to round-off (the mean
        # increment of the window's updates, 0.83, would miss loop 8 by ~30 %)
        assert t.meta["worst_rel_error"]["depth"] <= tol.float64
    t = toy_prediction_table(trace, trained_loops=4, rho=1.0)
    # the early window (loops 1..2) sees only the shrinking update: OFF, and says why
    assert t.meta["worst_rel_error"]["early"] > TARGET
    assert "why: the toy gives these updates a_k = -1.5..-1.5" in t.notes


def test_a_post_layernorm_loop_is_bounded_at_sqrt_d(tokens):
    """ALBERT-style weight sharing with post-LayerNorm, h_{k+1} = LN(h_k + f(h_k)): every
    ‖H_k‖ is √d, and the toy, diagnosed through LoopAdapter, says so."""
    from torch import nn

    from blindspot.diagnostics import LoopAdapter, diagnose

    torch.manual_seed(0)
    d, vocab = 128, 37
    emb, norm = nn.Embedding(vocab, d), nn.LayerNorm(d)
    f = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
    head = nn.Linear(d, vocab, bias=False)
    adapter = LoopAdapter(start=lambda idx: (emb(idx), None), step=lambda x, e: norm(x + f(x)),
                          head=lambda h, k, K: head(h), num_loops=4, name="post-LN")
    toy = diagnose(adapter, tokens())["toy_prediction"]
    assert {r["protocol"] for r in toy.rows} == {"early", "depth"}  # neither refused
    for protocol in ("early", "depth"):
        assert toy.meta[protocol]["regime"] == "bounded"
    # LayerNorm gives ‖h‖ = √d·(1 + O(eps/var)) with eps = 1e-5: 1e-4 relative covers it
    # and float32 round-off; before the constant-window rule the depth fit extrapolated
    # this trace to ~1e+22
    assert max(abs(r["predicted"] / math.sqrt(d) - 1) for r in toy.rows) <= 1e-4
    assert max(toy.meta["worst_rel_error"].values()) <= 1e-4

"""The diagnostics' theory columns: the total-loss radial force R_k beside the immediate one
(proofs/total_loss.md) and the explicit Lemma 2 bounds (proofs/lemma2.md), each against its
closed form, on a loop where the theorem is exact and on the package's LoopedLM."""

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from blindspot.checks.theory_lm import (
    batch,
    direction_only_adapter,
    small_lm,
    total_radial_at_scale,
    total_radial_exact,
)
from blindspot.diagnostics import diagnose
from blindspot.diagnostics.adapter import adapter_for
from blindspot.diagnostics.lemma2 import (
    BOUND_ULPS,
    bound_excess,
    decompose_update,
    explicit_bounds,
    lemma2_table,
)
from blindspot.diagnostics.radial import TOTAL_COLUMNS, radial_table
from blindspot.diagnostics.recorder import record
from blindspot.symbolic import identities as I
from blindspot.symbolic import numeric

# float64 throughout: R_k and its prediction are sums of K terms of size |H||G| computed in
# two orders, compared at tol.float64 relative to that size, far below the effects
# (R_1 ~ 1e-2 of |H||G| here)


def test_total_radial_force_is_the_sum_over_later_loops_when_the_premise_holds(tol):
    t = total_radial_exact()
    a = direction_only_adapter()
    idx, targets = batch(a.module)
    with torch.no_grad():
        h0, e = a.start(idx)
    size = t["total"].abs().max()
    assert float((t["total"] - t["predicted"]).abs().max()) <= tol.float64 * float(size)
    # R_K = 0: the final state is blind to its own scale
    assert float(t["total"][-1].abs().max()) <= tol.float64 * float(size)
    assert float(t["total"][0].abs().max()) > 1e-6 * float(size)  # earlier states are not
    # and in the table, beside the immediate force (exactly 0 at eps = 0: the blind spot)
    with torch.no_grad():
        states = record(a, idx).states
    tab = radial_table(a, states, targets, start=(h0, e))
    assert set(TOTAL_COLUMNS) <= set(tab.columns)
    for r in tab.rows:
        assert abs(r["radial_force"]) <= tol.float64 * float(size)
        assert r["total_radial_force"] == pytest.approx(r["total_radial_force_predicted"],
                                                        abs=tol.float64 * float(size))
    assert abs(tab.rows[0]["total_radial_force"]) > 1e-6 * float(size)


def test_total_radial_force_without_start_is_not_measured():
    a = direction_only_adapter()
    idx, targets = batch(a.module)
    with torch.no_grad():
        states = record(a, idx).states
    tab = radial_table(a, states, targets)
    assert all(np.isnan(r["total_radial_force"]) for r in tab.rows)


def test_a_stack_of_sublayers_meets_the_prediction_only_at_large_scale(tol):
    """A LoopedLM loop has two sublayers per block, so the prediction misses a term of order
    1/|H| (proofs/lemma2.md): scaling the embeddings by 1e3 must shrink the miss by >= 100x
    (it is O(1/s); 100 leaves a 10x margin), while R_K stays 0 at every scale."""
    misses = []
    for scale in (1.0, 1e3):
        t = total_radial_at_scale(scale)
        size = float(t["total"].abs().max())
        misses.append(float((t["total"] - t["predicted"]).abs().max()) / size)
        assert float(t["total"][-1].abs().max()) <= tol.float64 * size
    assert misses[1] < misses[0] / 100, misses


def test_diagnose_reports_the_total_force_and_nan_prediction_with_inter_loop_norm():
    m = small_lm(0)
    idx, targets = batch(m)
    tokens = torch.cat([idx, targets[:, -1:]], dim=1)
    tab = diagnose(adapter_for(m), tokens, toy=False)["radial_gradient"]
    assert tab.rows[-1]["total_radial_force"] == pytest.approx(0.0, abs=1e-12)
    assert abs(tab.rows[0]["total_radial_force"]) > 1e-4
    normed = small_lm(0, inter_loop_norm=True)
    tab = diagnose(adapter_for(normed), tokens, toy=False)["radial_gradient"]
    assert all(np.isnan(r["total_radial_force_predicted"]) for r in tab.rows)
    assert all(np.isfinite(r["total_radial_force"]) for r in tab.rows)


# -- Lemma 2 explicit bounds --------------------------------------------------------------


def test_lemma2_table_counts_every_update_inside_the_bounds():
    m = small_lm(0)
    idx, _ = batch(m)
    with torch.no_grad():
        tab = lemma2_table(record(adapter_for(m), idx, num_loops=12))
    assert all(r["bounds_checked"] == r["tokens"] > 0 for r in tab.rows)
    assert sum(r["bounds_violations"] for r in tab.rows) == 0
    assert "inside the explicit bounds" in tab.notes


def test_bound_check_flags_an_inconsistent_update():
    """The check can fail: a decomposition whose next scale is off by 1e-7 of the scale (1e9
    ulps, yet a relative error the identity's residual s'^2 - s^2 - 2sa - |D|^2 barely shows)
    lies outside the radial bounds, whose window beta^4/(8x^3) is ~1e-9 of s here."""
    g = torch.Generator().manual_seed(0)
    x = 100 * torch.randn(4, 8, 16, generator=g, dtype=torch.float64)
    h = x + torch.randn(4, 8, 16, generator=g, dtype=torch.float64)
    d = decompose_update(x, h)
    assert float(bound_excess(d)["radial"].max()) <= BOUND_ULPS
    bad = dict(d, scale_out=d["scale_out"] * (1 + 1e-7),
               scale_increment=d["scale_out"] * (1 + 1e-7) - d["scale_in"])
    assert float(bound_excess(bad)["radial"].min()) > BOUND_ULPS


@settings(max_examples=80, deadline=None)
@given(st.floats(-6.0, 6.0), st.floats(-3.0, 3.0), st.sampled_from([torch.float64, torch.float32]),
       st.integers(0, 2**31 - 1))
# float32 absorbs an update 1e9 times smaller than the state: stored updates of exactly zero,
# which the twin once read as 0/0 (its round-off unit is zero there) instead of inside
@example(6.0, -3.0, torch.float32, 0)
def test_bounds_hold_for_any_update_at_any_scale(log_s, log_d, dtype, seed):
    """States of size 1e-6..1e6 and updates of size 1e-3..1e3 (any ratio), stored in float64
    or float32 as a model would: every update with s + a > 0 lies inside the bounds, and the
    diagnostics' verdict agrees with the float64 twin's (blindspot.symbolic.numeric)."""
    g = torch.Generator().manual_seed(seed)
    x = (10.0**log_s * torch.randn(3, 16, generator=g, dtype=torch.float64)).to(dtype)
    h = (x.double() + 10.0**log_d * torch.randn(3, 16, generator=g, dtype=torch.float64)).to(dtype)
    d = decompose_update(x, h)
    b = bound_excess(d)
    checked = b["checked"]
    assert bool((b["radial"][checked] <= BOUND_ULPS).all())
    assert bool((b["angular"][checked] <= BOUND_ULPS).all())
    for i in torch.nonzero(checked).flatten().tolist():
        twin = numeric.lemma2_bound_excess(x[i].double(), (h[i].double() - x[i].double()))
        assert twin["radial"] <= numeric.BOUND_ULPS and twin["angular"] <= numeric.BOUND_ULPS


def test_diagnostics_bounds_are_the_certified_closed_forms():
    """The diagnostics compute the bounds in torch; the certificate exports them from sympy:
    the same functions (two float64 evaluations of one formula: 1e-12 relative)."""
    rng = np.random.default_rng(0)
    s, a, beta = rng.uniform(0.5, 50, 20), rng.uniform(-0.4, 3, 20), rng.uniform(0.01, 5, 20)
    s1 = np.hypot(s + a, beta)
    got = explicit_bounds(*(torch.tensor(v) for v in (s, a, beta, s1)))
    for name, value in got.items():
        want = I.LEMMA2_BOUNDS.lambdify(name)(s, a, beta)
        np.testing.assert_allclose(value.numpy(), want, rtol=1e-12, atol=0)


def test_bounds_skip_updates_outside_the_hypothesis():
    x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    h = torch.tensor([[-2.0, 0.5]], dtype=torch.float64)  # a = -3: s + a = -2 <= 0
    b = bound_excess(decompose_update(x, h))
    assert not bool(b["checked"].any()) and bool(torch.isnan(b["radial"]).all())

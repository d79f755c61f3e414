"""Closed forms of blindspot.toy.radial: exact identities (Hypothesis), moments against
simulation, the regimes of both reductions, the controls, and clear errors on bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from blindspot.toy import (
    angular_step,
    decompose_update,
    direction_block,
    geometric_sum,
    next_scale,
    penalty_equilibrium_scale,
    prenorm_fixed_point,
    prenorm_scale,
    radial_moments,
    raw_readout_scale,
    regime,
    simulate_prenorm_loop,
    simulate_radial,
    stationary_scale,
)

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
scales = st.floats(1e-3, 1e6)


@given(st.floats(0.0, 3.0), st.integers(0, 60))
def test_geometric_sum_is_the_sum_and_stable_near_one(q, k):
    direct = sum(q**j for j in range(k))
    # 1e-12 relative: the direct sum of <= 60 positive terms has round-off <= 60 eps
    assert geometric_sum(q, k) == pytest.approx(direct, rel=1e-12, abs=1e-300)
    # within round-off of q = 1 the quotient form would lose all digits; expm1 keeps them
    assert geometric_sum(1 + 1e-15, k) == pytest.approx(k, rel=1e-12)


@settings(max_examples=200)
@given(st.integers(2, 8).flatmap(lambda n: st.tuples(
    arrays(np.float64, n, elements=finite), arrays(np.float64, n, elements=finite))),
    st.floats(-20, 20))
def test_prenorm_identity_is_exact_for_any_update(hd, log_scale):
    """‖h+Δ‖² = s² + 2 s a + ‖Δ‖² and s' = √((s+a)² + d²), for any Δ and any scale."""
    h, delta = hd
    h = h * 10.0**log_scale
    if np.linalg.norm(h) == 0:
        return
    parts = decompose_update(h, delta)
    s, a, d = parts["s"], parts["a"], parts["dperp"]
    lhs = np.sum((h + delta) ** 2)
    rhs = s**2 + 2 * s * a + np.sum(delta**2)
    # round-off: each side is a sum of terms up to (s + ‖Δ‖)², so the error is a few eps of that;
    # below ~1e-154 the squares underflow to subnormals, spaced 5e-324 apart whatever their size
    tol = 1e-13 * (s + np.linalg.norm(delta)) ** 2 + 8 * np.finfo(np.float64).smallest_subnormal
    assert abs(lhs - rhs) <= tol
    assert abs(next_scale(s, a, d) ** 2 - lhs) <= tol


@given(scales, st.floats(0.0, 10.0), st.floats(0.0, 10.0), st.integers(1, 30))
def test_scale_grows_monotonically_when_a_is_nonnegative(s0, a, d, K):
    s = prenorm_scale(K, s0, a, d)["s"]
    assert np.all(np.diff(s) >= 0)  # (s+a)² + d² >= s² for a >= 0: exact, no tolerance
    m = radial_moments(np.arange(K + 1), 1.0, a, 0.5, s0)["mean"]
    assert np.all(np.diff(m) >= 0)


@given(st.floats(1.0, 1e8), st.floats(-0.5, 0.5), st.floats(0.0, 1.0))
def test_angular_step_exact_and_first_order(s, a, d):
    ang = angular_step(s, a, d)
    h = np.array([s, 0.0])
    h1 = h + np.array([a, d])
    true = np.linalg.norm(h1 / np.linalg.norm(h1) - h / s)
    # exact form: round-off of a difference of unit vectors, ~1e-16 absolute
    assert ang["exact"] == pytest.approx(true, rel=1e-9, abs=1e-15)
    # Lemma 2: d/s with error O(s^-2); the constant is <= 2(|a| d + d²) for |a|, d <= 1
    assert abs(ang["exact"] - d / s) <= 2 * (abs(a) * d + d**2) / s**2 + 1e-15


def test_moments_match_simulation():
    rho, a, sigma = np.array([0.3, 0.8, 1.0, 1.1]), 0.7, 0.5
    N, K = 20000, 15
    paths = simulate_radial(K, rho, a, sigma, s0=1.0, n_paths=N, seed=1)  # (N, K+1, 4)
    pred = radial_moments(np.arange(K + 1)[:, None], rho, a, sigma, s0=1.0)
    se = np.sqrt(pred["var"][1:] / N)
    # 5 standard errors over 60 compared means (see blindspot.checks.toy)
    assert np.all(np.abs(paths.mean(0)[1:] - pred["mean"][1:]) < 5 * se)
    rel = np.abs(paths.var(0, ddof=1)[1:] / pred["var"][1:] - 1)
    assert np.all(rel < 5 * np.sqrt(2 / (N - 1)))
    st_ = stationary_scale(0.8, a, sigma)
    assert pred["mean"][-1, 1] == pytest.approx(st_["mean"], rel=0.05)  # 0.8^15 = 3.5% left


def test_simulation_is_deterministic_given_a_seed():
    a = simulate_radial(10, 0.9, 0.1, 1.0, n_paths=5, seed=3)
    b = simulate_radial(10, 0.9, 0.1, 1.0, n_paths=5, seed=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, simulate_radial(10, 0.9, 0.1, 1.0, n_paths=5, seed=4))


def test_regimes_match_simulated_growth():
    assert list(regime([0.5, 1.0, 1.0, 1.2, 1.0, 1.0], [1.0, 0.0, 0.3, 0.0, -0.2, 0.0],
                       [1.0, 1.0, 1.0, 1.0, 1.0, 0.0], model="prenorm")) == \
        ["bounded", "sqrt", "linear", "exponential", "bounded", "constant"]
    block = direction_block(16, a=0.3, d=1.0, seed=2)
    h0 = np.ones(16)
    bounded = simulate_prenorm_loop(block, h0, 1500, restoring=0.05)["s"]
    # contraction 0.95^1500 ~ 1e-34: at the fixed point up to round-off
    assert bounded[-1] == pytest.approx(prenorm_fixed_point(0.95, 0.3, 1.0), rel=1e-10)
    linear = simulate_prenorm_loop(block, h0, 1500)["s"]
    assert (linear[-1] - linear[-2]) == pytest.approx(0.3, abs=1.0 / linear[-1])  # d²/(2s)
    expo = simulate_radial(100, 1.2, 0.0, 0.0, s0=1.0, n_paths=1)[0]
    assert expo[-1] == pytest.approx(1.2**100, rel=1e-12)  # 100 products: round-off only


def test_regime_names_the_model_it_classifies():
    """rho = 1, a < 0 is bounded for the pre-norm map (s settles at (a^2 + d^2)/(-2a)) but not
    for the scalar recurrence, whose mean s_0 + a k falls without bound; each label is checked
    against the system it names, and a call without a model is refused."""
    assert regime(1.0, -0.5, 1.0, model="prenorm") == "bounded"
    assert regime(1.0, -0.5, 1.0, model="scalar") == "decreasing"
    s = prenorm_scale(2000, 10.0, -0.5, 1.0)["s"]
    # contraction factor |ds'/ds| = |s*+a|/s* = 0.6 at the fixed point: converged to round-off
    assert s[-1] == pytest.approx(prenorm_fixed_point(1.0, -0.5, 1.0), rel=1e-12)
    assert s.max() <= 10.0  # never above where it started: bounded
    paths = simulate_radial(200, 1.0, -0.5, 1.0, s0=10.0, n_paths=4000, seed=0)  # (4000, 201)
    pred = radial_moments(np.arange(201), 1.0, -0.5, 1.0, s0=10.0)
    se = pred["std"][-1] / np.sqrt(4000)
    assert abs(paths.mean(0)[-1] - pred["mean"][-1]) < 5 * se  # 5 SE, as elsewhere
    assert pred["mean"][-1] == pytest.approx(10.0 - 0.5 * 200)  # -90: below zero, unbounded
    # elsewhere the two models agree
    grid = ([0.5, 1.0, 1.0, 1.2, 1.0], [1.0, 0.0, 0.3, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 0.0])
    assert list(regime(*grid, model="prenorm")) == list(regime(*grid, model="scalar"))
    with pytest.raises(TypeError, match="model"):
        regime(1.0, -0.5, 1.0)
    with pytest.raises(ValueError, match="prenorm, scalar"):
        regime(1.0, -0.5, 1.0, model="linear")


def test_prenorm_scale_closed_forms():
    s = prenorm_scale(400, 2.0, [0.0, 1.0], 1.5)
    k = s["k"]
    assert np.allclose(s["s"][:, 0], np.sqrt(4 + k * 2.25), rtol=1e-13, atol=0)  # exact
    # a > 0: first-order asymptotic; relative error O(log k / k^2)·d^4/a^3 small at k = 400
    assert s["s"][-1, 1] == pytest.approx(s["asymptotic"][-1, 1], rel=2e-3)
    fast = prenorm_scale(400, 2.0, [0.0, 1.0], 1.5, asymptotic=False)
    assert np.array_equal(fast["s"], s["s"]) and "asymptotic" not in fast.values


def test_penalty_equilibrium_matches_iteration():
    for lam, a, d in [(0.1, 0.0, 1.0), (1.0, 0.5, 1.0), (4.0, 2.0, 0.0)]:
        pred = penalty_equilibrium_scale(lam, 32, step=1.0, a=a, dperp=d)
        s = prenorm_scale(20000, 1.0, a, d, pred["rho"])["s"][-1]
        assert s == pytest.approx(pred["s_star"], rel=1e-8)  # rho^20000 ~ 1e-27 at lam = 0.1
    # scaling in λ: ∝ λ^{-1/2} when a = 0, ∝ λ^{-1} when d = 0 (small λ)
    r1 = penalty_equilibrium_scale([1e-3, 4e-3], 64, a=0.0, dperp=1.0)["s_star"]
    r2 = penalty_equilibrium_scale([1e-3, 4e-3], 64, a=1.0, dperp=0.0)["s_star"]
    assert r1[0] / r1[1] == pytest.approx(2.0, rel=1e-3)  # O(ηλ/n) corrections
    assert r2[0] / r2[1] == pytest.approx(4.0, rel=1e-3)


def test_raw_readout_pulls_scale_to_calibrated_value():
    z, q = np.array([2.0, 0.5, -1.0]), np.array([0.6, 0.3, 0.1])
    r = raw_readout_scale(z, q)
    p = np.exp(r["s_opt"] * z)
    p /= p.sum()
    assert p @ z == pytest.approx(q @ z, abs=1e-12)  # brentq to 1e-13
    assert r["curvature"] > 0
    with pytest.raises(ValueError, match="top logit"):
        raw_readout_scale(z, [1.0, 0.0, 0.0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(rho=-0.1), "rho must be >= 0"),
    (dict(sigma=-1.0), "sigma must be >= 0"),
    (dict(a=float("nan")), "a contains NaN"),
    (dict(k=[-1]), "k must be >= 0"),
    (dict(k=[0.5]), "whole loop indices"),
])
def test_bad_input_is_a_clear_error(kwargs, match):
    args = dict(k=[0, 1], rho=0.5, a=1.0, sigma=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        radial_moments(**args)


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="same shape"):
        decompose_update(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="zero state"):
        decompose_update(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="no fixed point"):
        prenorm_fixed_point(1.0, 0.5, 1.0)
    with pytest.raises(ValueError, match="rho < 1"):
        stationary_scale(1.0, 1.0)


@given(st.floats(0.0, 1.5), st.floats(-5, 5), st.floats(0, 3), st.floats(-5, 5),
       st.floats(0, 2), st.integers(0, 40))
def test_moments_satisfy_their_one_step_recursion(rho, a, sigma, s0, v0, k):
    """Differential check of the closed forms against the moment recursion
    m' = ρ m + a, v' = ρ² v + σ² (what the geometric sums must sum)."""
    now = radial_moments(k, rho, a, sigma, s0, v0)
    nxt = radial_moments(k + 1, rho, a, sigma, s0, v0)
    m, v = float(now["mean"]), float(now["var"])
    # round-off relative to the size of the terms, which grow up to 1.5^41 ~ 2e7
    scale_m = 1 + abs(rho * m) + abs(a)
    scale_v = 1 + rho**2 * v + sigma**2
    assert float(nxt["mean"]) == pytest.approx(rho * m + a, rel=1e-9, abs=1e-9 * scale_m)
    assert float(nxt["var"]) == pytest.approx(rho**2 * v + sigma**2, rel=1e-9, abs=1e-9 * scale_v)


def test_prenorm_fixed_point_at_rho_one_needs_a_tangential_part():
    """rho = 1, a < 0: with d > 0 the scale settles at (a^2 + d^2)/(-2a); with d = 0 the map
    is |s + a| and the scale ends in a 2-cycle {sigma, -sigma - a} away from s* = -a/2, so
    the stable fixed point of proofs/lemma2.md needs beta = d > 0."""
    from blindspot.toy.radial import prenorm_fixed_point, prenorm_scale

    a, s0 = -1.0, 3.3
    settled = prenorm_scale(400, s0, a, 1.0, asymptotic=False).values["s"]
    # f'(s*) = (d^2 - a^2)/(d^2 + a^2) = 0 here: converged to round-off long before k = 400
    assert settled[-1] == pytest.approx(float(prenorm_fixed_point(1.0, a, 1.0)), rel=1e-12)
    cycle = prenorm_scale(400, s0, a, 0.0, asymptotic=False).values["s"]
    # 3.3 -> 2.3 -> 1.3 -> 0.3 -> 0.7 -> 0.3 -> ...: a 2-cycle around s* = 0.5, not at it
    assert cycle[-1] == pytest.approx(cycle[-3]) and cycle[-1] + cycle[-2] == pytest.approx(-a)
    assert abs(cycle[-1] - 0.5) == pytest.approx(0.2)

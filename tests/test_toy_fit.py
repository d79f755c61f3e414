"""fit_radial_trace: recovers known parameters from synthetic traces and extrapolates."""

import numpy as np
import pytest

from blindspot.toy import FitResult, ToyRefusal, fit_radial_trace, fit_window, prenorm_scale

CASES = [(1.0, 0.5, 1.0), (1.0, 0.0, 2.0), (0.9, 1.0, 0.5), (1.03, 0.2, 0.3)]


@pytest.mark.parametrize("rho, a, d", CASES)
def test_fit_recovers_known_parameters(rho, a, d):
    s = prenorm_scale(40, 1.0, a, d, rho)["s"]
    # noiseless trace: the least-squares fit is exact up to its 1e-14 tolerances
    f = fit_radial_trace(s, fit_loops=10)
    assert isinstance(f, FitResult) and f.method == "scales"
    assert (f.rho, f.a, f.dperp) == pytest.approx((rho, a, d), abs=1e-5)
    assert f.predict(40) == pytest.approx(s[40], rel=1e-4)  # beyond the 10 fitted loops
    # with the measured decomposition (radial increments with 1% noise), from 6 loops
    rng = np.random.default_rng(0)
    ak = a + (rho - 1) * s[:-1] + 0.01 * rng.standard_normal(40)
    g = fit_radial_trace(s, ak, np.full(40, d), fit_loops=6)
    assert g.method == "decomposition"
    # 0.05: 1% noise on 5 increments regressed on a scale range of a few units
    assert (g.rho, g.a, g.dperp) == pytest.approx((rho, a, d), abs=0.05)


def test_fit_with_noise_extrapolates_beyond_trained_depth():
    rng = np.random.default_rng(1)
    s = prenorm_scale(30, 2.0, 0.5, 1.0)["s"]
    noisy = s * (1 + 1e-3 * rng.standard_normal(s.shape))
    # K = 4 loops, as in the paper. A free ρ is confounded with a on 4 one-step pairs (the
    # extrapolation to loop 30 is then off by tens of %), so fix ρ = 1, exact for a pre-norm
    # loop without penalty or inter-loop norm
    free = fit_radial_trace(noisy[:5])
    f = fit_radial_trace(noisy[:5], rho=1.0)
    assert f.regime == "linear" and f.rho == 1.0
    # 0.1% noise on 4 pairs leaves a and d good to a few %, so s_30 within 10%
    assert f.predict(np.array([10, 30])) == pytest.approx(s[[10, 30]], rel=0.1)
    err = [abs(g.predict(30) / s[30] - 1) for g in (free, f)]
    assert err[1] < err[0]
    assert f.predict([0])[0] == noisy[0]
    assert "rho=" in f.describe() and f.formula.startswith("s_{k+1}")


def test_bad_traces_are_clear_errors():
    with pytest.raises(ValueError, match="both a and dperp"):
        fit_radial_trace([1.0, 2.0, 3.0], a=[1.0, 1.0])
    with pytest.raises(ValueError, match="fit_loops >= 3"):
        fit_radial_trace([1.0, 2.0, 3.0], fit_loops=2)
    with pytest.raises(ValueError, match="length 2 or 3"):
        fit_radial_trace([1.0, 2.0, 3.0], a=[1.0], dperp=[1.0])
    with pytest.raises(ValueError, match="NaN"):
        fit_radial_trace([1.0, np.nan, 3.0])
    with pytest.raises(ValueError, match=">= 0"):
        fit_radial_trace([1.0, -2.0, 3.0])
    with pytest.raises(ValueError, match="dimension"):
        fit_radial_trace(np.ones((3, 2)))


def test_fit_radial_trace_fits_no_slope_to_a_constant_scale():
    # a post-LayerNorm trace: the scale is √128 to float32 round-off while a_k ≠ 0; a slope of
    # a_k against s_k is then round-off over round-off (it was ρ ≈ 9e3 before the guard)
    rng = np.random.default_rng(0)
    s = np.sqrt(128) * (1 + 1e-7 * rng.standard_normal(5))
    a = -0.17 + 1e-7 * rng.standard_normal(4)
    f = fit_radial_trace(s, a, np.full(4, 2.1))
    assert f.rho == 1.0  # not identifiable: the free loop is assumed, as for an exact constant


def test_fit_window_regimes_and_refusals():
    s = prenorm_scale(10, 2.0, 0.5, 1.0)["s"]  # ρ = 1, a = 0.5, d = 1: linear
    a, d = np.full(10, 0.5), np.full(10, 1.0)
    w = fit_window(s[1:5], a[1:4], d[1:4], rho=1.0, rho_source="theorem")
    assert (w.kind, w.regime, w.rho_source) == ("drift", "linear", "theorem")
    # noiseless: the forecast iterates the true map from s_4, exact to float64 round-off
    assert w.forecast(6) == pytest.approx(s[5:11], rel=1e-12)
    held = fit_window(s[1:5], a[1:4], d[1:4])  # ρ chosen by the held-out loop 4
    assert held.kind == "drift" and held.held_out["drift"] < 1e-12
    with pytest.raises(ToyRefusal, match="no loop to hold out"):
        fit_window(s[1:3], a[1:2], d[1:2])  # two loops, ρ not fixed
    flat = fit_window(np.full(3, 5.0), [-0.1, -0.1], [1.0, 1.0])
    assert flat.kind == "constant" and list(flat.forecast(3)) == [5.0] * 3
    with pytest.raises(ValueError, match="J-1 updates"):
        fit_window(s[1:5], a[1:3], d[1:3])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        fit_window(s[1:5], a[1:4], d[1:4], rho=1.5)
    # an exponential trace (ρ = 1.2) is no contraction: the fitted ρ is refused, the held-out
    # loop picks a map of the family, and nothing grows faster than linearly
    e = prenorm_scale(10, 2.0, 0.5, 1.0, rho=1.2)["s"]
    ae = 0.5 + 0.2 * e[:-1]
    w = fit_window(e[1:7], ae[1:6], d[1:6])
    assert "contraction" not in w.held_out and w.kind in ("drift", "fixed_point")
    n = np.arange(1, 31)
    assert np.all(w.forecast(30) <= e[6] + n * (abs(ae[5]) + 1.0))  # s_J + n(|a_k| + d)


def test_fit_window_never_returns_a_non_finite_scale():
    rng = np.random.default_rng(2)
    for _ in range(200):  # random windows, random architectures: a number or a refusal
        J = int(rng.integers(2, 7))
        s = np.exp(rng.normal(2, 1, J))
        a, d = rng.normal(0, 3, J - 1), np.abs(rng.normal(0, 3, J - 1))
        rho = [None, 0.0, 1.0][int(rng.integers(3))]
        try:
            w = fit_window(s, a, d, rho=rho)
        except ToyRefusal:
            continue
        f = w.forecast(20)
        assert np.isfinite(f).all()
        if w.kind == "constant":
            assert np.all(f == s[-1])
            continue
        # ρ ≤ 1 gives √((ρs + a)² + d²) ≤ s + |a| + d: at most linear growth (1e-12: the
        # round-off of 20 float64 steps)
        assert 0 <= w.rho <= 1
        assert np.all(f <= (s[-1] + np.arange(1, 21) * (abs(w.a) + w.dperp)) * (1 + 1e-12))

"""blindspot.toy.linear: the vector loop, its Lyapunov covariance, the continuous-depth
limit and the pre-norm twin."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blindspot.toy import (
    continuous_depth,
    linear_prediction,
    prenorm_twin_continuous,
    prenorm_twin_growth,
    simulate_linear,
    simulate_prenorm_twin,
    spectral_radius,
)


def _system(seed, n=3):
    rng = np.random.default_rng(seed)
    A = -0.4 * np.eye(n) + 0.1 * rng.standard_normal((n, n))
    return A, rng.standard_normal((n, 2)), np.array([0.5, -1.0])


def test_linear_prediction_matches_simulation():
    A, B, e = _system(0)
    Q = 0.05 * np.eye(3)
    pred = linear_prediction(A, B, e, h0=np.ones(3), K=30, Q=Q)
    noiseless = simulate_linear(A, B, e, h0=np.ones(3), K=30)[0]
    assert np.allclose(noiseless, pred["mean"], rtol=0, atol=1e-12)  # same recursion
    Abar = np.eye(3) + A
    cov = pred["stationary_cov"]
    assert np.allclose(Abar @ cov @ Abar.T + Q, cov, atol=1e-12)  # Lyapunov equation
    N = 6000
    h = simulate_linear(A, B, e, K=80, Q=Q, n_paths=N, seed=1)[:, -1]
    se = np.sqrt(np.diag(cov) / N)
    assert np.all(np.abs(h.mean(0) - pred["fixed_point"]) < 5 * se)  # 5 SE, 3 numbers
    # sample covariance: relative SE of a variance sqrt(2/(N-1)) ~ 1.8%; 5 SE
    assert np.allclose(np.diag(np.cov(h.T)), np.diag(cov), rtol=5 * np.sqrt(2 / (N - 1)))


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.1, 0.9))
def test_fixed_point_solves_the_loop_and_stability_is_the_spectral_radius(seed, shrink):
    rng = np.random.default_rng(seed)
    A = -shrink * np.eye(3) + 0.05 * rng.standard_normal((3, 3))
    B, e = rng.standard_normal((3, 2)), rng.standard_normal(2)
    pred = linear_prediction(A, B, e, K=0)
    assert pred["stable"] == (spectral_radius(np.eye(3) + A) < 1)
    if pred["stable"]:
        h = pred["fixed_point"]
        assert np.allclose(h + A @ h + B @ e, h, atol=1e-9 * (1 + np.abs(h).max()))


def test_continuous_depth_limit_first_order():
    A, B, e = _system(2)
    c = continuous_depth(A, B, e[:2], T=2.0, substeps=(4, 16, 64, 256))
    assert np.allclose(c["ode"], c["exact"], rtol=1e-9)  # solve_ivp at rtol 1e-12
    ratios = c["loop_error"][:-1] / c["loop_error"][1:]
    assert np.all((ratios > 3.5) & (ratios < 4.5))  # Euler: error ∝ 1/m, m grows 4x


def test_prenorm_twin_is_reparametrized_linear_flow():
    rng = np.random.default_rng(3)
    M = rng.standard_normal((4, 4))
    W = 0.1 * (M + M.T) + 0.3 * np.eye(4)
    h0 = rng.standard_normal(4) * 5
    tw = prenorm_twin_continuous(W, h0, 2.0)
    assert np.allclose(tw["direct"], tw["reparametrized"], rtol=1e-8)  # ODE tolerances 1e-11


def test_prenorm_twin_linear_growth():
    rng = np.random.default_rng(4)
    M = rng.standard_normal((5, 5))
    W = 0.05 * (M + M.T) + 0.2 * np.eye(5)
    g = prenorm_twin_growth(W)
    h = simulate_prenorm_twin(W, rng.standard_normal(5), 3000)
    s = np.linalg.norm(h, axis=1)
    assert s[-1] - s[-2] == pytest.approx(g["a_inf"], rel=0.01)  # O(1/s) approach
    u = h[-1] / s[-1]
    # the direction aligns only polynomially in k (the clock τ grows like log s), so after
    # 3000 loops it is within ~1e-3 of the eigenvector; 1e-2 leaves room for that
    assert abs(u @ g["direction"]) == pytest.approx(1.0, abs=1e-2)
    with pytest.raises(ValueError, match="real and positive"):
        prenorm_twin_growth(-np.eye(3))


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="square"):
        linear_prediction(np.ones((2, 3)))
    with pytest.raises(ValueError, match="both B"):
        linear_prediction(np.eye(2), B=np.ones((2, 1)))
    with pytest.raises(ValueError, match="B must have shape"):
        linear_prediction(np.eye(2), B=np.ones((3, 1)), e=np.ones(1))
    with pytest.raises(ValueError, match="NaN"):
        spectral_radius(np.array([[np.nan]]))
    with pytest.raises(ValueError, match="positive semi-definite"):
        linear_prediction(-0.5 * np.eye(2), Q=-np.eye(2))

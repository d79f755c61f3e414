"""blindspot.toy.training: predicted norm trajectories against simulation of the same
scale-invariant system, the exact GD identity, and the paper-level prediction."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from blindspot.toy import (
    effective_learning_rate,
    growth_exponent,
    predict_norm_growth_over_training,
    predict_norm_trajectory,
    simulate_training,
)


@given(st.integers(0, 1000), st.floats(1e-3, 1.0), st.floats(1e-3, 1e3))
def test_gd_norm_identity_is_exact(seed, lr, norm0):
    """One GD step on a scale-invariant loss: ‖w'‖² = ‖w‖² + η²‖∇L‖² (proofs/gd.md)."""
    sim = simulate_training("gd", 1, n=8, lr=lr, norm0=norm0, n_runs=2, seed=seed)
    x0, x1 = sim["norm"][0] ** 2, sim["norm"][1] ** 2
    g2 = sim["grad_sq"][0] / x0  # ‖∇L‖² = ‖ĝ‖²/‖w‖²
    assert np.allclose(x1, x0 + lr**2 * g2, rtol=1e-12)  # round-off of a few sums


@pytest.mark.parametrize("opt, kw, steps", [
    ("gd", dict(lr=0.1), 1500),
    ("gd", dict(lr=0.1, weight_decay=0.1), 1500),
    ("momentum", dict(lr=0.01, beta=0.8, signal=0.1), 1500),
    ("adamw", dict(lr=0.02, beta=0.9, beta2=0.95, weight_decay=0.1, signal=0.0), 1500),
])
def test_predicted_norm_matches_simulation(opt, kw, steps):
    sim = simulate_training(opt, steps, n=24, n_runs=16, seed=9, **kw)
    pred = predict_norm_trajectory(opt, steps, norm0=1.0, grad_sq=sim["grad_sq"].mean(), n=24,
                                   lr=kw["lr"], beta=kw.get("beta", 0.9),
                                   weight_decay=kw.get("weight_decay", 0.0))
    t = [steps // 2, steps]
    mean = sim["norm"].mean(1)[t]
    se = sim["norm"].std(1, ddof=1)[t] / 4
    # 5 SE of the runs plus 3% for the mean-field approximation (blindspot.checks.toy)
    assert np.all(np.abs(mean - pred["norm"][t]) <= 5 * se + 0.03 * pred["norm"][t])
    if kw.get("weight_decay"):
        ang = sim["angular"][-300:].mean()
        assert ang == pytest.approx(float(pred["equilibrium_angular_step"]), rel=0.05)


def test_effective_learning_rate_and_exponents():
    assert effective_learning_rate(0.1, 2.0) == pytest.approx(0.025)
    gd = predict_norm_trajectory("gd", 10**5, norm0=1.0, lr=0.1, grad_sq=1.0)
    t = np.arange(10**4, 10**5 + 1)
    assert growth_exponent(t, gd["norm"][t]) == pytest.approx(0.25, abs=0.01)
    ad = predict_norm_trajectory("adam", 10**5, norm0=1.0, lr=0.01, n=100)
    assert growth_exponent(t, ad["norm"][t]) == pytest.approx(0.5, abs=0.01)
    aw = predict_norm_trajectory("adamw", 10**4, norm0=1.0, lr=0.01, n=100, weight_decay=0.1)
    assert aw["norm"][-1] == pytest.approx(aw["equilibrium_norm"], rel=1e-6)  # 1/(2ηλ)=500


def test_paper_prediction_exponent():
    steps = np.unique(np.geomspace(1, 20000, 60).astype(int))
    pred = predict_norm_growth_over_training(steps, optimizer="adamw", lr=3e-4,
                                             weight_decay=0.01, n_params=10**7, norm0=60.0)
    assert pred["exponent"] == 0.5 and pred["tolerance"] == 0.15
    assert pred["timescale"] == pytest.approx(1 / (2 * 3e-4 * 0.01))
    assert np.all(np.diff(pred["ratio"]) > 0)  # no radial force: the norm only drifts up
    assert pred["local_exponent"][-1] == pytest.approx(0.5, abs=0.15)
    assert "t^{1/2}" in pred.formula
    with pytest.raises(ValueError, match="n_params"):
        predict_norm_growth_over_training(steps, optimizer="adamw")


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown optimizer"):
        predict_norm_trajectory("lion", 3, norm0=1.0, lr=0.1)
    with pytest.raises(ValueError, match="grad_sq"):
        predict_norm_trajectory("gd", 3, norm0=1.0, lr=0.1)
    with pytest.raises(ValueError, match="lr must be > 0"):
        predict_norm_trajectory("gd", 3, norm0=1.0, lr=-0.1, grad_sq=1.0)
    with pytest.raises(ValueError, match="beta must be in"):
        predict_norm_trajectory("adam", 3, norm0=1.0, lr=0.1, n=4, beta=1.0)
    with pytest.raises(ValueError, match="increasing"):
        predict_norm_growth_over_training([5, 3], optimizer="gd", grad_sq=1.0)


def test_simulation_is_deterministic_and_checks_its_input():
    a = simulate_training("adamw", 20, n=6, n_runs=3, seed=5, weight_decay=0.1)
    b = simulate_training("adamw", 20, n=6, n_runs=3, seed=5, weight_decay=0.1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="noise must be >= 0"):
        simulate_training("gd", 5, noise=-1.0)
    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        simulate_training("gd", 5, n=1)
    with pytest.raises(ValueError, match="NaN"):
        simulate_training("gd", 5, lr=float("nan"))


def test_compare_growth_accepts_the_toy_and_rejects_bounded():
    from blindspot.toy import compare_growth

    t = np.arange(1, 2001)
    pred = predict_norm_growth_over_training(np.concatenate([[0], t]), optimizer="adam",
                                             lr=0.01, n_params=32, norm0=1.0)
    sim = simulate_training("adam", 2000, n=32, lr=0.01, beta2=0.95, signal=0.0, n_runs=8,
                            seed=2)
    grows = compare_growth(t, sim["norm"].mean(1)[1:], pred)
    assert grows["passed"], grows
    # a scale-visible control: strong decay pins the norm, so the slope is ~0 and fails
    held = simulate_training("adamw", 2000, n=32, lr=0.01, beta2=0.95, signal=0.0,
                             weight_decay=1.0, n_runs=8, seed=2)
    flat = compare_growth(t, held["norm"].mean(1)[1:], pred)
    assert not flat["passed"] and abs(flat["measured"]) < 0.1, flat

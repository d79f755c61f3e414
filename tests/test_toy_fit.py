"""fit_radial_trace: recovers known parameters from synthetic traces and extrapolates."""

import numpy as np
import pytest

from blindspot.toy import FitResult, fit_radial_trace, prenorm_scale

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

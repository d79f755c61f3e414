r"""Fit the toy's radial recurrence to a measured per-loop trace and extrapolate.

Model (Lemma 2 with a restoring term, :mod:`blindspot.toy.radial`):

.. math:: s_{k+1} = \sqrt{(\rho s_k + a)^2 + d^2} + \sigma\xi_k,

i.e. radial increment :math:`a_k = a + (\rho - 1)s_k` and tangential norm d. Two estimators:

* scales only: nonlinear least squares of the one-step map on consecutive pairs
  :math:`(s_k, s_{k+1})` of the fitted loops (``scipy.optimize.least_squares``);
* with measured radial increments :math:`a_k` and tangential norms :math:`d_k`: ordinary
  least squares :math:`a_k = a + (\rho-1)s_k` and :math:`d = \sqrt{\mathrm{mean}\,d_k^2}`,
  which uses the decomposition directly and needs no curvature in s.

σ is the RMS of the one-step residuals. :meth:`FitResult.predict` iterates the fitted
map from the first measured scale, so it predicts every loop, including those not used in
the fit and loops beyond the trained depth. Test: ``tests/test_toy_fit.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from blindspot.toy._validate import as_float, as_loops
from blindspot.toy.radial import regime

FORMULA = r"s_{k+1}=\sqrt{(\rho s_k+a)^2+d^2}+\sigma\xi_k"


@dataclass(frozen=True)
class FitResult:
    """Fitted parameters of the radial recurrence; ``predict(k)`` gives s at loops k
    (indices counted from the first entry of the fitted trace)."""

    rho: float
    a: float
    dperp: float
    sigma: float
    s0: float
    fit_loops: int
    method: str  # "scales" or "decomposition"
    formula: str = FORMULA

    @property
    def regime(self) -> str:
        """Growth regime of the fitted parameters (:func:`blindspot.toy.radial.regime`);
        ρ within 1e-3 of 1 and |a| within 1e-3·s0 count as 1 and 0."""
        return str(regime(self.rho, self.a / max(self.s0, 1e-300), self.dperp, model="prenorm",
                          tol=1e-3))

    def predict(self, k) -> np.ndarray:
        """Predicted mean scale at loop indices ``k`` (any shape, any size)."""
        kk = as_loops("k", k)
        K = int(kk.max()) if kk.size else 0
        s = np.empty(K + 1)
        s[0] = self.s0
        for j in range(K):
            s[j + 1] = np.hypot(self.rho * s[j] + self.a, self.dperp)
        return s[kk]

    def describe(self) -> str:
        return (f"{self.formula}: rho={self.rho:.6g}, a={self.a:.6g}, d={self.dperp:.6g}, "
                f"sigma={self.sigma:.3g} ({self.method}, {self.fit_loops} loops, "
                f"regime {self.regime})")


def fit_radial_trace(s, a=None, dperp=None, fit_loops: int | None = None, *,
                     rho: float | None = None) -> FitResult:
    """Fit the toy's parameters to a measured trace.

    ``s``: (L,) mean scales at consecutive loops (s_0..s_K, or s_1..s_K: ``predict``
    counts from the first entry). ``a``, ``dperp``: optional (L-1,) or (L,) measured radial
    increments and tangential norms of the update leaving each loop (``a[j]`` belongs to
    the update from ``s[j]``), both or neither. ``fit_loops``: use only the first
    ``fit_loops`` scales (default all; at least 3, or 2 with a decomposition).
    ``rho``: fix ρ instead of fitting it. A pre-norm loop without penalty or inter-loop norm
    has ρ = 1 exactly (its block sees only the direction, Lemma 2); fixing it makes the fit
    from a few loops (K = 4 in the paper) well conditioned, where a free ρ is confounded
    with a (``tests/test_toy_fit.py::test_fit_with_noise_extrapolates_beyond_trained_depth``).
    """
    s = as_float("s", s, ndim=1, nonneg=True)
    L = s.size
    if (a is None) != (dperp is None):
        raise ValueError("pass both a and dperp (the measured decomposition), or neither")
    fit_loops = L if fit_loops is None else int(fit_loops)
    if not 2 <= fit_loops <= L:
        raise ValueError(f"fit_loops must be in [2, {L}] (number of scales given), got {fit_loops}")
    if rho is not None:
        rho = float(as_float("rho", rho, nonneg=True))
    s_fit = s[:fit_loops]
    if np.any(s_fit[:-1] == 0):
        raise ValueError("a measured scale is 0: the direction (and the toy) is undefined there")
    if a is not None:
        a = as_float("a", a, ndim=1)
        dperp = as_float("dperp", dperp, ndim=1, nonneg=True)
        if a.shape != dperp.shape or a.size not in (L - 1, L):
            raise ValueError(f"a and dperp must both have length {L - 1} or {L} (one per "
                             f"update of s, length {L}), got {a.shape} and {dperp.shape}")
        m = fit_loops - 1 if a.size == L - 1 or fit_loops < L else fit_loops
        m = max(m, 1)
        x, y = s_fit[:m], a[:m]
        if rho is not None:
            a_hat = float(np.mean(y - (rho - 1) * x))
        elif m >= 2 and np.ptp(x) > 0:
            slope, icpt = np.polyfit(x, y, 1)
            rho, a_hat = 1.0 + slope, icpt
        else:  # one update or constant scale: ρ is not identifiable, assume the free loop
            rho, a_hat = 1.0, float(y.mean())
        d_hat = float(np.sqrt(np.mean(dperp[:m] ** 2)))
        method = "decomposition"
    else:
        if fit_loops < 3 and rho is None:
            raise ValueError("fitting from scales alone needs fit_loops >= 3 (two one-step "
                             "pairs); pass the measured a and dperp to fit from fewer loops")
        x, y = s_fit[:-1], s_fit[1:]

        fixed = rho

        def resid(p):
            r = p[0] if fixed is None else fixed
            return np.hypot(r * x + p[1], p[2]) - y

        scale = max(float(np.mean(y)), 1e-12)
        # several starts: linear drift, pure sqrt growth, a contraction (the cost is not convex)
        d_sqrt = float(np.sqrt(np.mean(np.abs(y**2 - x**2))))
        starts = [(1.0, float(np.mean(y - x)), 0.0), (1.0, 0.0, d_sqrt),
                  (0.5, scale / 2, 0.1 * scale)]
        best = None
        for p0 in starts:
            r = optimize.least_squares(resid, p0,
                                       bounds=([0, -np.inf, 0], [np.inf, np.inf, np.inf]),
                                       x_scale=[1.0, scale, scale], xtol=1e-14, ftol=1e-14,
                                       gtol=1e-14, method="trf")
            if best is None or r.cost < best.cost:
                best = r
        a_hat, d_hat = float(best.x[1]), float(best.x[2])
        rho = float(best.x[0]) if fixed is None else fixed
        method = "scales"
    pred = np.hypot(rho * s_fit[:-1] + a_hat, d_hat)
    sigma = float(np.sqrt(np.mean((s_fit[1:] - pred) ** 2)))
    return FitResult(float(rho), float(a_hat), float(d_hat), sigma, float(s[0]), fit_loops, method)

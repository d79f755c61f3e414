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

:func:`fit_window` is the toy the diagnostics fit to a window of a trained model's loops: it
chooses the map's regime by a stated rule (a fixed point, ρ from the architecture, or ρ chosen
by a held-out loop), takes a and d from the window's last update, and refuses
(:class:`ToyRefusal`) rather than return a parameter the window cannot identify.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from blindspot.toy._validate import as_float, as_loops
from blindspot.toy.radial import regime

FORMULA = r"s_{k+1}=\sqrt{(\rho s_k+a)^2+d^2}+\sigma\xi_k"
WINDOW_FORMULA = r"s_{k+1}=\sqrt{(\rho s_k+a)^2+d^2}"
CONSTANT_TOL = 1e-3
"""Relative spread below which scales count as constant; no slope (ρ) is fitted to them, and
:func:`fit_window` reads them as a trace sitting at its fixed point."""


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
        elif m >= 2 and np.ptp(x) > CONSTANT_TOL * float(np.max(x)):
            slope, icpt = np.polyfit(x, y, 1)
            rho, a_hat = 1.0 + slope, icpt
        else:  # one update or (about) constant scale: the slope of a_k against s_k is
            # round-off over round-off, so ρ is not identifiable: assume the free loop
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


# ------------------------------------------------- the toy of a window of loops, by regime

KINDS = ("constant", "fixed_point", "drift", "contraction")
"""The toy maps :func:`fit_window` chooses from, simplest first, namely ``constant`` (the
window sits at a fixed point; ρ not needed), ``fixed_point`` (ρ = 0, the scale of loop k+1
does not depend on that of loop k), ``drift`` (ρ = 1, Lemma 2) and ``contraction``
(0 ≤ ρ ≤ 1 fitted)."""


class ToyRefusal(ValueError):
    """The toy declines to predict; the message says why (a parameter it cannot identify from
    the window, or a prediction that would not be a finite scale)."""


@dataclass(frozen=True)
class WindowFit:
    """The toy fitted to a window of loops 1..J (:func:`fit_window`): the map
    s ↦ √((ρ s + a)² + d²) with constant parameters, iterated from the window's last scale
    ``origin`` = s_J; ``kind`` is one of :data:`KINDS`, ``rho_source`` says where ρ came from
    and ``held_out`` holds each candidate's relative error on s_J when the window chose ρ."""

    kind: str
    rho: float  # NaN for "constant": not identified, not needed
    a: float  # NaN for "constant"
    dperp: float
    origin: float
    fit_loops: int
    rho_source: str
    held_out: dict

    @property
    def regime(self) -> str:
        """:func:`blindspot.toy.radial.regime` of the fitted map (a window at a fixed point is
        ``bounded``); ρ within 1e-3 of 1 and |a| within 1e-3·s_J count as 1 and 0."""
        if self.kind == "constant":
            return "bounded"
        return str(regime(self.rho, self.a / self.origin, self.dperp, model="prenorm",
                          tol=1e-3))

    def step(self, s) -> np.ndarray:
        """One application of the fitted map to the scales ``s`` (any shape)."""
        s = np.asarray(s, dtype=np.float64)
        if self.kind == "constant":
            return np.full(s.shape, self.origin)
        return np.hypot(self.rho * s + self.a, self.dperp)

    def forecast(self, n: int) -> np.ndarray:
        """(n,) predicted s_{J+1}..s_{J+n}; :class:`ToyRefusal` if one is not finite."""
        out, s = np.empty(n), self.origin
        for j in range(n):
            s = float(self.step(s))
            out[j] = s
        if not np.isfinite(out).all():
            raise ToyRefusal(f"the fitted map ({self.describe()}) gives a non-finite scale")
        return out

    def describe(self) -> str:
        if self.kind == "constant":
            return f"constant: s_k = {self.origin:.6g} at every later loop (regime bounded)"
        return (f"{self.kind}: rho={self.rho:.4g}, a={self.a:.4g}, d={self.dperp:.4g} "
                f"(regime {self.regime})")


def _candidate(kind: str, s: np.ndarray, a: np.ndarray, d: np.ndarray, rho: float | None,
               source: str, held: dict) -> WindowFit:
    """The map of ``kind`` from the window's scales s_1..s_J and its J-1 updates."""
    J, last = s.size, s[-1]
    if kind == "contraction" and rho is None:
        if a.size < 3:
            raise ToyRefusal(f"fitting ρ needs 3 updates (2 parameters and a residual); the "
                             f"window has {a.size}")
        x, y = s[-4:-1], a[-3:]  # the last three updates and the scales they leave
        if np.ptp(x) <= CONSTANT_TOL * float(np.max(x)):
            raise ToyRefusal("the scales of the last three updates are about equal, so their "
                             "radial increments cannot separate ρ from a")
        slope, icpt = np.polyfit(x, y, 1)
        rho = 1.0 + float(slope)
        if not 0.0 <= rho <= 1.0:
            raise ToyRefusal(f"the radial increments of the last three updates against their "
                             f"scales give ρ = {rho:.3g}, outside the toy's 0 ≤ ρ ≤ 1: they "
                             f"change with the loop, not with the scale")
        return WindowFit(kind, rho, float(icpt), float(np.sqrt(np.mean(d[-3:] ** 2))),
                         float(last), J, source, held)
    if kind == "fixed_point":  # ρ = 0: every later loop has the scale of the last one
        dp = float(d[-1])
        return WindowFit(kind, 0.0, float(np.sqrt(max(last**2 - dp**2, 0.0))), dp, float(last),
                         J, source, held)
    r = 1.0 if kind == "drift" else float(rho)
    # a from the last update only: a_{J-1} = a + (ρ-1) s_{J-1}
    return WindowFit(kind, r, float(a[-1] - (r - 1.0) * s[-2]), float(d[-1]), float(last), J,
                     source, held)


def fit_window(s, a, dperp, *, rho: float | None = None, rho_source: str = "") -> WindowFit:
    """Fit the toy to a window of loops, choosing its regime by a rule stated here first.

    ``s``: (J,) mean scales s_1..s_J; ``a``, ``dperp``: (J-1,) measured radial increments
    and tangential norms of the updates leaving loops 1..J-1. ``rho``: ρ when the
    architecture fixes it (``rho_source`` says why), else None. The rule:

    1. **Constant window.** If every s_k lies within :data:`CONSTANT_TOL` of s_J, the trace
       sits at a fixed point and the toy predicts s_J at every later loop (``constant``):
       any map at its fixed point stays there, so ρ is neither needed nor identifiable (a
       slope of a_k against a constant s_k is round-off over round-off).
    2. **ρ fixed by the architecture** (``rho`` given, 0 ≤ ρ ≤ 1): ρ = 1 is ``drift``, ρ = 0
       ``fixed_point`` (every later loop has the scale s_J), else ``contraction``.
    3. **ρ from the data**, otherwise: each candidate (``fixed_point``, ``drift``,
       ``contraction`` with ρ fitted by least squares of a_k = a + (ρ-1)s_k on the last three
       updates: needs 3 updates and 0 ≤ ρ ≤ 1) is fitted on loops 1..J-1 and predicts s_J;
       the smallest relative error wins (ties: the simpler, in :data:`KINDS` order) and is
       refitted on loops 1..J. A window of two loops has no loop to hold out: refused.
    4. **The settled regime.** a and d come from the window's last update (the last three for
       a fitted ρ), not from all of them: the first loops carry the transient of a state far
       from the loop's working regime (a large embedding shrinking, say), which a
       constant-parameter map cannot represent.

    ρ never exceeds 1, so no prediction grows faster than linearly in the loop count; a
    parameter the window cannot identify raises :class:`ToyRefusal` with the reason.
    Tests: ``tests/test_toy_fit.py::test_fit_window_*``.
    """
    s = as_float("s", s, ndim=1, nonneg=True)
    a = as_float("a", a, ndim=1)
    dperp = as_float("dperp", dperp, ndim=1, nonneg=True)
    J = s.size
    if J < 2 or a.shape != (J - 1,) or dperp.shape != (J - 1,):
        raise ValueError(f"fit_window needs J >= 2 scales and J-1 updates (a, dperp), got "
                         f"{J} scales, a {a.shape}, dperp {dperp.shape}")
    if np.any(s == 0):
        raise ValueError("a measured scale is 0: the direction (and the toy) is undefined there")
    if rho is not None and not 0.0 <= float(rho) <= 1.0:
        raise ValueError(f"a fixed rho must lie in [0, 1] (1: drift, 0: fixed point), got {rho}")
    if np.max(np.abs(s / s[-1] - 1)) <= CONSTANT_TOL:
        return WindowFit("constant", float("nan"), float("nan"), float(dperp[-1]), float(s[-1]),
                         J, f"the window's scales agree within {CONSTANT_TOL:g}: a fixed point, "
                            "whatever ρ", {})
    if rho is not None:
        kind = {1.0: "drift", 0.0: "fixed_point"}.get(float(rho), "contraction")
        return _candidate(kind, s, a, dperp, float(rho), rho_source, {})
    if J < 3:
        raise ToyRefusal(f"ρ is not fixed by the architecture, and a window of {J} loops "
                         "(one update) leaves no loop to hold out to choose it; fit on 3 "
                         "loops or more")
    held: dict[str, float] = {}
    for kind in KINDS[1:]:
        try:
            c = _candidate(kind, s[:-1], a[:-1], dperp[:-1], None, "", {})
            held[kind] = float(abs(c.forecast(1)[0] / s[-1] - 1))
        except ToyRefusal:
            continue
    why = []
    for kind in sorted(held, key=lambda k: (held[k], KINDS.index(k))):
        source = ("chosen by the held-out loop: relative error on s_J "
                  + ", ".join(f"{k} {e:.2%}" for k, e in held.items()) + f" -> {kind}")
        try:
            return _candidate(kind, s, a, dperp, None, source, held)
        except ToyRefusal as e:
            why.append(f"{kind}: {e}")
    raise ToyRefusal("no candidate map fits the window: " + "; ".join(why))

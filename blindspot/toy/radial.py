r"""Across loops: the scale s_k = ‖H_k‖ of a looped residual stream, in closed form.

Two reductions of a pre-norm loop H_{k+1} = H_k + Δ_k, Δ_k = B(N(H_k)) (proofs/lemma2.md):

* the **scalar radial recurrence** :math:`s_{k+1} = \rho s_k + a + \sigma \xi_k`,
  :math:`\xi_k \sim N(0,1)` i.i.d., whose mean and spread are exact closed forms
  (:func:`radial_moments`), with its regimes (:func:`regime`, ``model="scalar"``);
* the **exact pre-norm step** :math:`s_{k+1}^2 = s_k^2 + 2 s_k a_k + \|\Delta_k\|^2`, i.e.
  :math:`s_{k+1} = \sqrt{(s_k + a_k)^2 + d_k^2}` with :math:`a_k = \langle u_k, \Delta_k\rangle`
  and :math:`d_k = \|\Delta_k^\perp\|` (:func:`next_scale`, :func:`prenorm_scale`), and the
  angular step :math:`\|u_{k+1} - u_k\| \approx d_k / s_k` (:func:`angular_step`).

The controls of the paper act on these parameters (:func:`inter_loop_norm_scale`,
:func:`penalty_equilibrium_scale`, :func:`raw_readout_scale`). Tests:
``tests/test_toy_radial.py``; claims ``T1.*`` in :mod:`blindspot.checks.toy`.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

from blindspot.toy._validate import as_count, as_float, as_loops
from blindspot.toy.prediction import Prediction

REGIMES = ("bounded", "sqrt", "linear", "exponential", "constant", "decreasing")
"""Regime names returned by :func:`regime`."""

MODELS = ("prenorm", "scalar")
"""The two reductions :func:`regime` classifies: the pre-norm map
:math:`s_{k+1} = \\sqrt{(\\rho s_k + a)^2 + d^2}` and the scalar recurrence
:math:`s_{k+1} = \\rho s_k + a + \\sigma\\xi_k`."""


def geometric_sum(q, k) -> np.ndarray:
    r""":math:`G_k(q) = \sum_{j=0}^{k-1} q^j = (1 - q^k)/(1 - q)`, and :math:`k` at q = 1.

    Computed as ``expm1(k log q) / expm1(log q)``, which keeps full relative precision for
    q within round-off of 1 where the textbook quotient cancels (test:
    ``tests/test_toy_radial.py::test_geometric_sum_is_the_sum_and_stable_near_one``).
    """
    q = np.asarray(q, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        lq = np.log(q)
        out = np.expm1(k * lq) / np.expm1(lq)
    out = np.where(q == 1.0, k, out)
    out = np.where(q == 0.0, np.minimum(k, 1.0), out)  # 0^0 = 1, 0^j = 0 for j > 0
    return np.where(k == 0, 0.0, out)


def radial_moments(k, rho, a, sigma, s0=1.0, s0_var=0.0) -> Prediction:
    r"""Mean and spread of :math:`s_k` under :math:`s_{k+1} = \rho s_k + a + \sigma\xi_k`.

    .. math::
       E[s_k] = \rho^k s_0 + a\,G_k(\rho), \qquad
       \mathrm{Var}[s_k] = \rho^{2k}\,\mathrm{Var}[s_0] + \sigma^2 G_k(\rho^2)

    with :math:`G_k` the geometric sum (:func:`geometric_sum`). All arguments broadcast, so
    one call evaluates a whole grid of parameters (``benchmarks/toy_sweep.py``). Checked
    against simulation in claim ``T1.moments`` and
    ``tests/test_toy_radial.py::test_moments_match_simulation``.
    """
    kk = as_loops("k", k)
    rho = as_float("rho", rho, nonneg=True)
    a = as_float("a", a)
    sigma = as_float("sigma", sigma, nonneg=True)
    s0 = as_float("s0", s0)
    s0_var = as_float("s0_var", s0_var, nonneg=True)
    rk = np.power(rho, kk)
    mean = rk * s0 + a * geometric_sum(rho, kk)
    var = rk**2 * s0_var + sigma**2 * geometric_sum(rho**2, kk)
    return Prediction(
        "s_k", {"k": kk, "mean": mean, "var": var, "std": np.sqrt(var)},
        r"E[s_k]=\rho^k s_0+a\frac{1-\rho^k}{1-\rho},\ "
        r"\mathrm{Var}[s_k]=\rho^{2k}\mathrm{Var}[s_0]+\sigma^2\frac{1-\rho^{2k}}{1-\rho^2}",
        {"rho": rho, "a": a, "sigma": sigma, "s0": s0, "s0_var": s0_var})


def stationary_scale(rho, a, sigma=0.0) -> Prediction:
    r"""Bounded regime (:math:`\rho < 1`): :math:`s_\infty = a/(1-\rho)`,
    :math:`\mathrm{sd}_\infty = \sigma/\sqrt{1-\rho^2}`."""
    rho = as_float("rho", rho, nonneg=True)
    if np.any(rho >= 1):
        raise ValueError(f"a stationary scale exists only for rho < 1, got max rho {rho.max():g}; "
                         "for rho >= 1 the scale grows (see regime())")
    a = as_float("a", a)
    sigma = as_float("sigma", sigma, nonneg=True)
    return Prediction("s_inf", {"mean": a / (1 - rho), "std": sigma / np.sqrt(1 - rho**2)},
                      r"s_\infty=\frac{a}{1-\rho},\ "
                      r"\mathrm{sd}_\infty=\frac{\sigma}{\sqrt{1-\rho^2}}",
                      {"rho": rho, "a": a, "sigma": sigma})


def regime(rho, a, spread, *, model: str, tol: float = 0.0) -> np.ndarray:
    r"""Name the growth regime of the loop scale, elementwise, for the named ``model``.

    The two reductions agree except at ρ = 1, a < 0, so the caller says which one the
    parameters belong to:

    * ``model="prenorm"``: the exact pre-norm map :math:`s_{k+1} = \sqrt{(\rho s_k + a)^2 +
      d^2}` (:func:`prenorm_scale`), ``spread`` = the tangential norm d;
    * ``model="scalar"``: the scalar recurrence :math:`s_{k+1} = \rho s_k + a + \sigma\xi_k`
      (:func:`radial_moments`, :func:`simulate_radial`), ``spread`` = σ.

    With :math:`|\rho - 1| \le` ``tol`` counted as ρ = 1 and :math:`|a| \le` ``tol`` as a = 0:

    * ``bounded``: ρ < 1 (pre-norm fixed point :func:`prenorm_fixed_point`; scalar stationary
      mean :math:`a/(1-\rho)`, :func:`stationary_scale`); and, for the **pre-norm map only**,
      ρ = 1 with a < 0: the square root keeps s positive and, with d > 0, s settles at
      :math:`s^* = (a^2 + d^2)/(-2a)` (at d = 0 the map is :math:`|s + a|`: s falls by |a|
      per loop into [0, -a), then alternates between some σ and :math:`-σ - a`, a bounded
      2-cycle rather than a settling);
    * ``decreasing`` (**scalar only**): ρ = 1, a < 0: the mean :math:`s_0 + a k` falls without
      bound and leaves s ≥ 0, so the scalar reduction no longer describes a norm;
    * ``sqrt``: ρ = 1, a = 0, spread > 0 (pre-norm :math:`s_k^2 = s_0^2 + k d^2`; scalar:
      constant mean, spread :math:`\sigma\sqrt{k}`);
    * ``linear``: ρ = 1, a > 0 (:math:`s_k \approx s_0 + a k`);
    * ``exponential``: ρ > 1 (:math:`|s_k| \sim \rho^k`);
    * ``constant``: ρ = 1, a = 0, spread = 0.

    Test: ``tests/test_toy_radial.py::test_regime_names_the_model_it_classifies``.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}: the "
                         "pre-norm map and the scalar recurrence differ at rho = 1, a < 0")
    rho = as_float("rho", rho, nonneg=True)
    a = as_float("a", a)
    spread = as_float("spread", spread, nonneg=True)
    if tol < 0 or not np.isfinite(tol):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    rho, a, spread = np.broadcast_arrays(rho, a, spread)
    one = np.abs(rho - 1) <= tol
    zero_a = np.abs(a) <= tol
    out = np.full(rho.shape, "constant", dtype=object)
    out[(rho < 1) & ~one] = "bounded"
    out[(rho > 1) & ~one] = "exponential"
    out[one & ~zero_a & (a < 0)] = "bounded" if model == "prenorm" else "decreasing"
    out[one & ~zero_a & (a > 0)] = "linear"
    out[one & zero_a & (spread > 0)] = "sqrt"
    return out.astype(str)


def simulate_radial(K: int, rho, a, sigma, s0=1.0, *, n_paths: int = 1000,
                    seed: int = 0) -> np.ndarray:
    r"""Monte Carlo paths of :math:`s_{k+1} = \rho s_k + a + \sigma\xi_k`, shape
    ``(n_paths, K + 1, *broadcast(params))``. A seed fixes the result bit for bit."""
    K = as_count("K", K)
    n_paths = as_count("n_paths", n_paths)
    rho = as_float("rho", rho, nonneg=True)
    a, sigma = as_float("a", a), as_float("sigma", sigma, nonneg=True)
    s0 = as_float("s0", s0)
    shape = np.broadcast_shapes(rho.shape, a.shape, sigma.shape, s0.shape)
    rng = np.random.default_rng(seed)
    xi = rng.standard_normal((K, n_paths, *shape))
    s = np.empty((K + 1, n_paths, *shape))
    s[0] = s0
    for k in range(K):
        s[k + 1] = rho * s[k] + a + sigma * xi[k]
    return np.moveaxis(s, 0, 1)


def decompose_update(h, delta) -> dict[str, np.ndarray]:
    r"""Split an update Δ of a state h (last axis = features) into radial and tangential parts:
    :math:`s = \|h\|`, :math:`a = \langle h/s, \Delta\rangle`, :math:`d = \|\Delta - a\,u\|`."""
    h = as_float("h", h)
    delta = as_float("delta", delta)
    if h.shape != delta.shape or h.ndim == 0:
        raise ValueError(f"h and delta must have the same shape (..., n), got {h.shape} and "
                         f"{delta.shape}")
    # scale by max|h_i| first: squares of tiny (huge) entries under(over)flow in ‖h‖
    m = np.max(np.abs(h), axis=-1, keepdims=True)
    if np.any(m == 0):
        raise ValueError("h has a zero state: its direction u = h/‖h‖ is undefined")
    r = np.linalg.norm(h / m, axis=-1)
    s = m[..., 0] * r
    u = (h / m) / r[..., None]
    a = np.sum(u * delta, axis=-1)
    dperp = np.linalg.norm(delta - a[..., None] * u, axis=-1)
    return {"s": s, "a": a, "dperp": dperp}


def next_scale(s, a, dperp) -> np.ndarray:
    r"""Exact scale after one residual update (proofs/lemma2.md):
    :math:`s_{k+1} = \sqrt{s_k^2 + 2 s_k a_k + \|\Delta_k\|^2} = \sqrt{(s_k + a_k)^2 + d_k^2}`
    since :math:`\|\Delta\|^2 = a^2 + d^2`. Test:
    ``tests/test_toy_radial.py::test_prenorm_identity_is_exact_for_any_update``."""
    s = as_float("s", s, nonneg=True)
    a = as_float("a", a)
    dperp = as_float("dperp", dperp, nonneg=True)
    return np.hypot(s + a, dperp)


def angular_step(s, a, dperp) -> Prediction:
    r"""The angle a loop turns the direction by.

    Exact: :math:`\|u_{k+1}-u_k\| = \sqrt{2 - 2 (s+a)/s_{k+1}}` with :math:`s_{k+1}` from
    :func:`next_scale`; first order (Lemma 2): :math:`d/s`, with error
    :math:`O(s^{-2})`. So the loop's "step size" on the sphere shrinks like 1/s. Test:
    ``tests/test_toy_radial.py::test_angular_step_exact_and_first_order``.
    """
    s = as_float("s", s, positive=True)
    a = as_float("a", a)
    dperp = as_float("dperp", dperp, nonneg=True)
    s1 = np.hypot(s + a, dperp)
    # 2 - 2cos θ written as 2(s1 - (s+a))/s1 and (s1 - x) = d²/(s1 + x) avoids cancellation.
    x = s + a
    gap = np.where(x >= 0, dperp**2 / (s1 + np.abs(x)), s1 - x)
    exact = np.sqrt(2 * gap / s1)
    return Prediction("angular_step", {"exact": exact, "first_order": dperp / s},
                      r"\|u_{k+1}-u_k\|=\sqrt{2-2\frac{s+a}{\sqrt{(s+a)^2+d^2}}}"
                      r"=\frac{d}{s}+O(s^{-2})", {"s": s, "a": a, "dperp": dperp})


def prenorm_scale(K: int, s0, a, dperp, rho=1.0, *, asymptotic: bool = True) -> Prediction:
    r"""Deterministic scale trajectory of the pre-norm loop with radial part
    :math:`a_k = a + (\rho - 1) s_k` and tangential norm d:
    :math:`s_{k+1} = \sqrt{(\rho s_k + a)^2 + d^2}`, vectorized over parameters
    (``values["s"]`` has shape ``(K + 1, *params)``).

    Closed forms in ``values["asymptotic"]`` (ρ = 1): a = 0 gives exactly
    :math:`s_k = \sqrt{s_0^2 + k d^2}`; a > 0 gives
    :math:`s_k \approx s_0 + a k + \tfrac{d^2}{2a}\ln\tfrac{s_0 + a k}{s_0}`. Test:
    ``tests/test_toy_radial.py::test_prenorm_scale_closed_forms``. ``asymptotic=False``
    skips those forms (they cost several passes over a ``(K + 1, *params)`` array in a sweep).
    """
    K = as_count("K", K, minimum=0)
    s0 = as_float("s0", s0, positive=True)
    a = as_float("a", a)
    dperp = as_float("dperp", dperp, nonneg=True)
    rho = as_float("rho", rho, nonneg=True)
    shape = np.broadcast_shapes(s0.shape, a.shape, dperp.shape, rho.shape)
    s = np.empty((K + 1, *shape))
    s[0] = s0
    d2 = dperp**2
    # sqrt(x² + d²) rather than np.hypot: ~7x faster on large sweeps; it overflows only
    # beyond s ~ 1e154, far past any scale a float32/bf16 model could hold
    for k in range(K):
        x = rho * s[k] + a
        s[k + 1] = np.sqrt(x * x + d2)
    k = np.arange(K + 1).reshape((K + 1,) + (1,) * len(shape))
    formula = r"s_{k+1}=\sqrt{(\rho s_k+a)^2+d^2}"
    params = {"s0": s0, "a": a, "dperp": dperp, "rho": rho}
    if not asymptotic:
        return Prediction("s_k", {"k": k.ravel(), "s": s}, formula, params)
    # (d²/2a) ln(1 + ak/s0) written as (d² k/2s0)·ln(1+x)/x, x = ak/s0: no overflow for tiny a
    x = a * k / s0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.where(x == 0, 1.0, np.log1p(x) / np.where(x == 0, 1.0, x))
    lin = s0 + a * k + dperp**2 * k / (2 * s0) * log_ratio
    asym = np.where(a == 0, np.sqrt(s0**2 + k * dperp**2), lin)
    asym = np.where(rho == 1, asym, np.nan)
    return Prediction("s_k", {"k": k.ravel(), "s": s, "asymptotic": asym},
                      r"s_{k+1}=\sqrt{(\rho s_k+a)^2+d^2};\ \rho=1:\ a=0\Rightarrow "
                      r"s_k=\sqrt{s_0^2+kd^2},\ a>0\Rightarrow s_k\approx s_0+ak+"
                      r"\tfrac{d^2}{2a}\ln\tfrac{s_0+ak}{s_0}",
                      {"s0": s0, "a": a, "dperp": dperp, "rho": rho})


def prenorm_fixed_point(rho, a, dperp) -> np.ndarray:
    r"""Fixed point of :math:`s \mapsto \sqrt{(\rho s + a)^2 + d^2}` for ρ < 1 (the bounded
    regime): the positive root of :math:`(1-\rho^2)s^2 - 2\rho a s - (a^2 + d^2) = 0`,

    .. math:: s^* = \frac{\rho a + \sqrt{a^2 + (1 - \rho^2) d^2}}{1 - \rho^2}.

    At ρ = 1 with a < 0 it is :math:`(a^2 + d^2)/(-2a)`."""
    rho = as_float("rho", rho, nonneg=True)
    a = as_float("a", a)
    dperp = as_float("dperp", dperp, nonneg=True)
    bad = (rho > 1) | ((rho == 1) & (a >= 0))
    if np.any(bad):
        raise ValueError("no fixed point: the scale grows without bound when rho > 1 or "
                         "(rho == 1 and a >= 0); see regime()")
    c = 1 - rho**2
    with np.errstate(divide="ignore", invalid="ignore"):
        root = (rho * a + np.sqrt(a**2 + c * dperp**2)) / c
    return np.where(rho == 1, (a**2 + dperp**2) / np.where(a == 0, 1, -2 * a), root)


# ---------------------------------------------------------------- controls in the toy


def inter_loop_norm_scale(n: int, gain: float = 1.0) -> Prediction:
    r"""Inter-loop RMSNorm (ε = 0) maps every carried state to scale
    :math:`\|N(h)\| = g\sqrt{n}` whatever the update: in the radial recurrence ρ = 0,
    a = g√n, σ = 0, so :math:`s_k = g\sqrt{n}` for every k ≥ 1 (scale removed from the loop)."""
    n = as_count("n", n)
    gain = float(as_float("gain", gain, positive=True))
    return Prediction("s_k", {"scale": gain * np.sqrt(n), "rho": 0.0, "a": gain * np.sqrt(n)},
                      r"s_k=\|N(H_k)\|=g\sqrt{n}\ (\rho=0)", {"n": n, "gain": gain})


def penalty_equilibrium_scale(lam, n: int, step=1.0, a=0.0, dperp=1.0) -> Prediction:
    r"""Norm penalty :math:`\lambda\,\|h\|^2/n` on each loop state, in the toy.

    Modelling assumption (stated, tested only inside the toy): the trained loop update
    includes a gradient step of size η (``step``) on the penalty,
    :math:`\Delta_k \ni -\eta\,\partial_h(\lambda\|h\|^2/n) = -(2\eta\lambda/n)\,h_k`, a
    restoring radial term. Then :math:`\rho = 1 - 2\eta\lambda/n < 1` and the scale settles
    at the fixed point of :func:`prenorm_fixed_point`; in closed form in λ:

    .. math:: s^*(\lambda) = \frac{\rho a + \sqrt{a^2 + (1-\rho^2) d^2}}{1-\rho^2},\quad
              \rho = 1 - \frac{2\eta\lambda}{n},

    so :math:`s^* \approx a n/(2\eta\lambda)` (∝ 1/λ) when the radial drift a dominates and
    :math:`s^* \approx d\sqrt{n/(4\eta\lambda)}` (∝ λ^{-1/2}) when a = 0. Test:
    ``tests/test_toy_radial.py::test_penalty_equilibrium_matches_iteration``.
    """
    n = as_count("n", n)
    lam = as_float("lam", lam, positive=True)
    step = as_float("step", step, positive=True)
    rho = 1 - 2 * step * lam / n
    if np.any(rho <= 0):
        raise ValueError("2*step*lam/n must be < 1 for the toy's restoring term to be a "
                         f"contraction, got max {np.max(2 * step * lam / n):g}; lower lam or step")
    s_star = prenorm_fixed_point(rho, a, dperp)
    return Prediction("s_star", {"s_star": s_star, "rho": rho},
                      r"s^*=\frac{\rho a+\sqrt{a^2+(1-\rho^2)d^2}}{1-\rho^2},\ "
                      r"\rho=1-\frac{2\eta\lambda}{n}",
                      {"lam": lam, "n": n, "step": step, "a": a, "dperp": dperp})


def raw_readout_scale(z, q) -> Prediction:
    r"""A raw (scale-visible) readout puts a radial force on the state.

    Along a fixed direction u with logits :math:`z = W u` (so at scale s the logits are
    :math:`s z`) and data distribution q over targets, the expected cross-entropy
    :math:`L(s) = \mathrm{logsumexp}(s z) - s\,E_q[z]` is convex with
    :math:`L'(s) = E_{p_s}[z] - E_q[z]` (proofs/readouts.md) and
    :math:`L''(s) = \mathrm{Var}_{p_s}[z]`.
    When q is not concentrated on the top logit, the loss pulls s to the finite calibrated
    scale :math:`s_{opt}` solving :math:`E_{\mathrm{softmax}(s z)}[z] = E_q[z]`; the restoring
    stiffness is :math:`L''(s_{opt})`. A normalized readout has :math:`L' \equiv 0` (no force).
    Test: ``tests/test_toy_radial.py::test_raw_readout_pulls_scale_to_calibrated_value``.
    """
    z = as_float("z", z, ndim=1)
    q = as_float("q", q, ndim=1, nonneg=True)
    if z.shape != q.shape or z.size < 2:
        raise ValueError(f"z and q must be 1-D of the same length >= 2, got {z.shape}, {q.shape}")
    if not np.isclose(q.sum(), 1.0, rtol=0, atol=1e-9):  # 1e-9: float round-off of a sum
        raise ValueError(f"q must be a probability vector (sum 1), got sum {q.sum():g}")
    target = float(q @ z)

    def slope(s):
        p = special.softmax(s * z)
        return float(p @ z) - target

    if target >= z.max() - 1e-12 * max(1.0, abs(z.max())):
        raise ValueError("q puts all its mass on the top logit: the raw-readout loss then "
                         "decreases for ever as s grows (no finite calibrated scale)")
    if slope(0.0) >= 0:
        s_opt = 0.0  # the data is no more peaked than uniform: the loss wants zero scale
    else:
        hi = 1.0
        while slope(hi) < 0:
            hi *= 2
        s_opt = optimize.brentq(slope, 0.0, hi, xtol=1e-14, rtol=1e-13)
    p = special.softmax(s_opt * z)
    curvature = float(p @ z**2 - (p @ z) ** 2)
    return Prediction("s_opt", {"s_opt": s_opt, "curvature": curvature},
                      r"E_{\mathrm{softmax}(s z)}[z]=E_q[z],\ L''=\mathrm{Var}_{p_s}[z]",
                      {"z": z, "q": q})


# ---------------------------------------------------------------- a vector pre-norm loop


def direction_block(n: int, *, a: float | None = 0.0, d: float = 1.0, hidden: int = 32,
                    seed: int = 0):
    r"""A block that sees only the direction: :math:`\Delta(h) = B(u)`, u = h/‖h‖.

    B is a fixed random MLP :math:`m(u) = W_2\tanh(W_1\sqrt{n}\,u)` (RMSNorm input with unit
    gain). With ``a=None`` the raw MLP output is returned; otherwise its radial part is
    replaced by ``a`` and its tangential part rescaled to norm ``d``, so
    :math:`\Delta = a u + d\,t(u)` with :math:`t \perp u`, ‖t‖ = 1: the block of Lemma 2 with
    controlled :math:`a_k` and :math:`\|\Delta^\perp_k\|`. Returns ``block(h) -> Δ`` acting
    on the last axis."""
    n = as_count("n", n, minimum=2)
    rng = np.random.default_rng(seed)
    W1 = rng.standard_normal((hidden, n)) / np.sqrt(n)
    W2 = rng.standard_normal((n, hidden)) / np.sqrt(hidden)

    def block(h: np.ndarray) -> np.ndarray:
        u = h / np.linalg.norm(h, axis=-1, keepdims=True)  # (..., n)
        m = np.tanh(np.sqrt(n) * u @ W1.T) @ W2.T  # (..., n)
        if a is None:
            return m
        t = m - np.sum(m * u, axis=-1, keepdims=True) * u
        t /= np.linalg.norm(t, axis=-1, keepdims=True)
        return a * u + d * t

    return block


def simulate_prenorm_loop(block, h0, K: int, *, restoring: float = 0.0) -> dict[str, np.ndarray]:
    r"""Run :math:`h_{k+1} = h_k + \Delta_k - c\,h_k` with :math:`\Delta_k` = ``block(h_k)``
    and restoring coefficient c (``restoring``; the toy's norm penalty, ρ = 1 − c).
    Returns ``states`` (K + 1, ..., n), ``s`` (K + 1, ...), and the decomposition of the
    block update, ``a`` and ``dperp`` (K, ...)."""
    h0 = as_float("h0", h0)
    K = as_count("K", K, minimum=0)
    if not 0 <= restoring < 1:
        raise ValueError(f"restoring must be in [0, 1), got {restoring!r}")
    states = np.empty((K + 1, *h0.shape))
    states[0] = h0
    a = np.empty((K, *h0.shape[:-1]))
    dperp = np.empty_like(a)
    for k in range(K):
        delta = block(states[k])
        parts = decompose_update(states[k], delta)
        a[k], dperp[k] = parts["a"], parts["dperp"]
        states[k + 1] = (1 - restoring) * states[k] + delta
    return {"states": states, "s": np.linalg.norm(states, axis=-1), "a": a, "dperp": dperp}

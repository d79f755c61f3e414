r"""Across loops, vector form: the linear recurrence and its pre-norm twin (notebooks/toy.md,
"The vector loop").

* Linear loop :math:`h_{k+1} = \bar A h_k + B e + \xi_k`, :math:`\bar A = I + A`,
  :math:`\xi_k \sim N(0, Q)`: stable iff the spectral radius :math:`\rho(\bar A) < 1`; mean
  fixed point :math:`h^* = (I - \bar A)^{-1} B e`; stationary covariance Σ solving the
  discrete Lyapunov equation :math:`\Sigma = \bar A \Sigma \bar A^\top + Q`.
* Continuous-depth limit: n sub-steps of size 1/n, :math:`h \leftarrow h + (A h + B e)/n`,
  converge to the ODE :math:`\dot h = A h + B e` (:func:`continuous_depth`, solve_ivp).
* Pre-norm twin :math:`h_{k+1} = h_k + W N(h_k)`, :math:`N(h) = \sqrt{n}\,h/\|h\|`
  (RMSNorm, ε = 0, unit gain), F = W linear. In continuous depth its direction follows the
  *linear* flow on a slowed clock: :math:`h(t) = s_0\,e^{W\tau(t)} u_0` with
  :math:`\dot\tau = \sqrt{n}/\|h\|` (:func:`prenorm_twin_continuous`); the direction tends
  to the leading real eigenvector of W (eigenvalue μ) and the scale then grows linearly
  with slope :math:`a_\infty = \sqrt{n}\,\mu` per loop (:func:`prenorm_twin_growth`).

Tests: ``tests/test_toy_linear.py``; claims ``T2.*``.
"""

from __future__ import annotations

import numpy as np
from scipy import integrate, linalg

from blindspot.toy._validate import as_count, as_float
from blindspot.toy.prediction import Prediction


def _square(name: str, M) -> np.ndarray:
    M = as_float(name, M, ndim=2)
    if M.shape[0] != M.shape[1]:
        raise ValueError(f"{name} must be square (n, n), got shape {M.shape}")
    return M


def _drive(A: np.ndarray, B, e) -> np.ndarray:
    n = A.shape[0]
    if B is None and e is None:
        return np.zeros(n)
    if B is None or e is None:
        raise ValueError("input injection needs both B (n, m) and e (m,), or neither")
    B = as_float("B", B, ndim=2)
    e = as_float("e", e, ndim=1)
    if B.shape != (n, e.shape[0]):
        raise ValueError(f"B must have shape ({n}, len(e)) = ({n}, {e.shape[0]}), got {B.shape}")
    return B @ e  # (n,)


def spectral_radius(M) -> float:
    r""":math:`\rho(M) = \max_i |\lambda_i(M)|`."""
    return float(np.max(np.abs(np.linalg.eigvals(_square("M", M)))))


def linear_prediction(A, B=None, e=None, h0=None, K: int = 10, Q=None) -> Prediction:
    r"""Mean trajectory, fixed point and stationary covariance of
    :math:`h_{k+1} = (I + A) h_k + B e + \xi_k`.

    Mean: :math:`m_k = \bar A^k (h_0 - h^*) + h^*` when :math:`I - \bar A` is invertible
    (iterated directly otherwise, e.g. the additive carry Ā = I that drifts linearly,
    :math:`m_k = h_0 + k B e`). Fixed point and covariance are reported only when
    :math:`\rho(\bar A) < 1` (NaN otherwise). Test:
    ``tests/test_toy_linear.py::test_linear_prediction_matches_simulation``.
    """
    A = _square("A", A)
    n = A.shape[0]
    K = as_count("K", K, minimum=0)
    c = _drive(A, B, e)
    h0 = np.zeros(n) if h0 is None else as_float("h0", h0, ndim=1)
    if h0.shape != (n,):
        raise ValueError(f"h0 must have shape ({n},), got {h0.shape}")
    Abar = np.eye(n) + A
    rho = spectral_radius(Abar)
    mean = np.empty((K + 1, n))
    mean[0] = h0
    for k in range(K):
        mean[k + 1] = Abar @ mean[k] + c
    stable = rho < 1
    fixed = np.linalg.solve(np.eye(n) - Abar, c) if stable else np.full(n, np.nan)
    if Q is not None:
        Q = _square("Q", Q)
        if Q.shape != (n, n) or not np.allclose(Q, Q.T) or np.linalg.eigvalsh(Q).min() < -1e-12:
            raise ValueError(f"Q must be a symmetric positive semi-definite ({n}, {n}) noise "
                             "covariance")
        cov = linalg.solve_discrete_lyapunov(Abar, Q) if stable else np.full((n, n), np.nan)
    else:
        cov = None
    values = {"mean": mean, "fixed_point": fixed, "spectral_radius": rho, "stable": stable}
    if cov is not None:
        values["stationary_cov"] = cov
    return Prediction("h_k", values,
                      r"h^*=(I-\bar A)^{-1}Be,\ \Sigma=\bar A\Sigma\bar A^\top+Q,\ "
                      r"\text{stable iff }\rho(\bar A)<1", {"A": A, "c": c})


def simulate_linear(A, B=None, e=None, h0=None, K: int = 10, Q=None, *, n_paths: int = 1,
                    seed: int = 0) -> np.ndarray:
    """Monte Carlo paths of the linear loop, shape ``(n_paths, K + 1, n)``."""
    A = _square("A", A)
    n = A.shape[0]
    K, n_paths = as_count("K", K, minimum=0), as_count("n_paths", n_paths)
    c = _drive(A, B, e)
    h0 = np.zeros(n) if h0 is None else as_float("h0", h0, ndim=1)
    L = np.zeros((n, n)) if Q is None else np.linalg.cholesky(_square("Q", Q) + 0.0)
    rng = np.random.default_rng(seed)
    h = np.empty((n_paths, K + 1, n))
    h[:, 0] = h0
    Abar = np.eye(n) + A
    for k in range(K):
        h[:, k + 1] = h[:, k] @ Abar.T + c + rng.standard_normal((n_paths, n)) @ L.T
    return h


def continuous_depth(A, B=None, e=None, h0=None, T: float = 1.0,
                     substeps=(1, 4, 16, 64)) -> Prediction:
    r"""The continuous-depth limit :math:`\dot h = A h + B e` on [0, T] (``solve_ivp``,
    checked against the exact :math:`e^{AT}`), and the discrete loop with ``m`` sub-steps
    :math:`h \leftarrow h + (T/m)(A h + B e)`; the loop's error decays like 1/m (Euler).
    Test: ``tests/test_toy_linear.py::test_continuous_depth_limit_first_order``."""
    A = _square("A", A)
    n = A.shape[0]
    c = _drive(A, B, e)
    h0 = np.ones(n) if h0 is None else as_float("h0", h0, ndim=1)
    sol = integrate.solve_ivp(lambda t, h: A @ h + c, (0.0, T), h0, method="DOP853",
                              rtol=1e-12, atol=1e-12)
    ode = sol.y[:, -1]
    # exact solution through the augmented matrix exponential (handles singular A)
    M = np.zeros((n + 1, n + 1))
    M[:n, :n], M[:n, n] = A * T, c * T
    exact = (linalg.expm(M) @ np.append(h0, 1.0))[:n]
    errors = []
    for m in substeps:
        h = h0.copy()
        for _ in range(int(m)):
            h = h + (T / m) * (A @ h + c)
        errors.append(np.linalg.norm(h - exact))
    return Prediction("h_T", {"ode": ode, "exact": exact, "substeps": np.asarray(substeps),
                              "loop_error": np.asarray(errors)},
                      r"\dot h=Ah+Be,\ h(T)=e^{AT}h_0+\int_0^T e^{A(T-t)}Be\,dt",
                      {"A": A, "T": T})


def prenorm_twin_growth(W) -> Prediction:
    r"""Late-loop prediction for :math:`h_{k+1} = h_k + W N(h_k)`: if W has a real leading
    eigenvalue μ > 0 (largest real part) with unit eigenvector v, the direction tends to v
    (tangential part → 0) and the scale grows linearly, :math:`s_{k+1} - s_k \to \sqrt{n}\mu`.
    Test: ``tests/test_toy_linear.py::test_prenorm_twin_linear_growth``."""
    W = _square("W", W)
    n = W.shape[0]
    lam, vecs = np.linalg.eig(W)
    i = int(np.argmax(lam.real))
    mu = lam[i]
    if abs(mu.imag) > 1e-12 or mu.real <= 0:
        raise ValueError(f"the leading eigenvalue of W is {mu:.4g}: the twin's linear-growth "
                         "prediction needs it real and positive")
    v = np.real(vecs[:, i])
    return Prediction("a_inf", {"a_inf": np.sqrt(n) * mu.real, "mu": mu.real,
                                "direction": v / np.linalg.norm(v)},
                      r"a_\infty=\sqrt{n}\,\mu_{\max}(W),\ u_k\to v_{\max}", {"W": W})


def simulate_prenorm_twin(W, h0, K: int) -> np.ndarray:
    """States of :math:`h_{k+1} = h_k + \\sqrt{n} W h_k/\\|h_k\\|`, shape ``(K + 1, n)``."""
    W = _square("W", W)
    h0 = as_float("h0", h0, ndim=1)
    if h0.shape != (W.shape[0],) or np.linalg.norm(h0) == 0:
        raise ValueError(f"h0 must be a non-zero vector of shape ({W.shape[0]},)")
    K = as_count("K", K, minimum=0)
    n = W.shape[0]
    h = np.empty((K + 1, n))
    h[0] = h0
    for k in range(K):
        h[k + 1] = h[k] + np.sqrt(n) * (W @ h[k]) / np.linalg.norm(h[k])
    return h


def prenorm_twin_continuous(W, h0, T: float) -> Prediction:
    r"""Continuous-depth twin :math:`\dot h = \sqrt{n} W h/\|h\|` solved two ways with
    ``solve_ivp``: directly, and as the linear flow on a slowed clock,
    :math:`h = s_0 e^{W\tau} u_0` with :math:`\dot\tau = \sqrt{n}/(s_0\|e^{W\tau}u_0\|)`.
    The two agree (the pre-norm loop is a time-reparametrized linear system whose clock runs
    at 1/scale). Test:
    ``tests/test_toy_linear.py::test_prenorm_twin_is_reparametrized_linear_flow``."""
    W = _square("W", W)
    n = W.shape[0]
    h0 = as_float("h0", h0, ndim=1)
    s0 = float(np.linalg.norm(h0))
    if h0.shape != (n,) or s0 == 0:
        raise ValueError(f"h0 must be a non-zero vector of shape ({n},)")
    u0 = h0 / s0
    tol = dict(method="DOP853", rtol=1e-11, atol=1e-11)
    direct = integrate.solve_ivp(lambda t, h: np.sqrt(n) * W @ h / np.linalg.norm(h),
                                 (0.0, T), h0, **tol).y[:, -1]
    # integrate in the slow clock τ: dy/dτ = W y (linear), dt/dτ = s0‖y‖/√n, stop at t = T
    def rhs(tau, x):
        return np.append(W @ x[:n], s0 * np.linalg.norm(x[:n]) / np.sqrt(n))

    def reach(tau, x):
        return x[n] - T

    reach.terminal = True
    sol = integrate.solve_ivp(rhs, (0.0, 1e6), np.append(u0, 0.0), events=reach, **tol)
    if sol.status != 1:
        raise RuntimeError(f"the slow clock did not reach t = {T} (solve_ivp: {sol.message})")
    tau = float(sol.t_events[0][0])
    clock = s0 * linalg.expm(W * tau) @ u0  # the linear flow's exact solution at τ
    return Prediction("h_T", {"direct": direct, "reparametrized": clock, "tau": tau},
                      r"h(t)=s_0e^{W\tau(t)}u_0,\ \dot\tau=\frac{\sqrt n}{\|h\|}", {"W": W, "T": T})

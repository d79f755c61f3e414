# ruff: noqa: E501  (named error strings read best unbroken)
"""Float64 ``torch.func`` cross-checks of every certificate, at random points in dimension n.

The sympy certificates (:mod:`blindspot.symbolic.identities`) prove the algebra at n = 2..4;
these checks evaluate the same statements with autograd at n = 16 and against the closed
forms, so a sign or factor slip in either place shows up as a disagreement. Each check
returns a :class:`NumericReport` of named errors (relative, dimensionless) and passes when
every error is below its tolerance. Demonstrated in ``tests/test_symbolic_numeric.py``.

This module imports torch; :mod:`blindspot.symbolic` itself stays sympy-only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import grad, jacrev

DTYPE = torch.float64
# Float64 round-off is 1.1e-16 per operation; sums over n = 16 entries, a softmax over V = 10
# classes and random points with condition numbers ~1e2 leave errors ~1e-14. 1e-10 leaves a
# 1e4 margin above that and is still 1e4 below the smallest effect the checks must see (the
# ε-leak at ε = 1e-3, ms(h) ~ 1 is ~1e-3 of the gradient; the raw readout's radial
# derivative is O(1)).
TOL = 1e-10


@dataclass(frozen=True)
class NumericReport:
    name: str
    errors: dict[str, float]
    tolerances: dict[str, float]
    values: dict[str, float]  # measured quantities worth printing (not errors)

    @property
    def passed(self) -> bool:
        return all(math.isfinite(e) and e <= self.tolerances[k] for k, e in self.errors.items())

    def summary(self) -> str:
        errs = ", ".join(f"{k}={e:.1e} (tol {self.tolerances[k]:.0e})" for k, e in self.errors.items())
        vals = ", ".join(f"{k}={v:.4g}" for k, v in self.values.items())
        return f"float64 autograd {self.name}: {errs}" + (f"; measured {vals}" if vals else "")


# -- reference implementations (float64, functional) --------------------------------------

def rms_norm(h: torch.Tensor, gain: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """$N(h) = \\gamma \\odot h / \\sqrt{\\mathrm{ms}(h) + \\varepsilon}$ over the last axis."""
    r = torch.sqrt(h.pow(2).mean(-1, keepdim=True) + eps)  # (..., 1)
    return gain * h / r  # (..., n)


def layer_norm(h: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor | None = None,
               eps: float = 0.0) -> torch.Tensor:
    """$\\mathrm{LN}(h) = \\gamma \\odot P h / \\sqrt{\\lVert Ph\\rVert^2/n + \\varepsilon} + \\beta$."""
    p = h - h.mean(-1, keepdim=True)  # (..., n)
    out = gain * p / torch.sqrt(p.pow(2).mean(-1, keepdim=True) + eps)
    return out if bias is None else out + bias


def cross_entropy(z: torch.Tensor, y: int) -> torch.Tensor:
    return torch.logsumexp(z, -1) - z[y]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max(|b|, tiny): the error relative to the size of the reference."""
    scale = b.abs().max().clamp_min(torch.finfo(DTYPE).tiny)
    return float((a - b).abs().max() / scale)


class _Problem:
    """A random point: state h (n), gain γ, bias β, readout W (V, n), target y, and a small
    random block B(u) = W2 tanh(W1 u) standing for one loop's update from the direction."""

    def __init__(self, n: int = 16, V: int = 10, seed: int = 0):
        g = torch.Generator().manual_seed(seed)

        def randn(*shape):
            return torch.randn(*shape, generator=g, dtype=DTYPE)

        self.n, self.V = n, V
        self.h = randn(n)
        self.gain = 1.0 + 0.3 * randn(n)
        self.bias = randn(n)
        self.W = randn(V, n)
        self.y = int(torch.randint(V, (1,), generator=g))
        self.W1, self.W2 = randn(2 * n, n) / math.sqrt(n), randn(n, 2 * n) / math.sqrt(2 * n)

    def loss(self, eps: float = 0.0) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda h: cross_entropy(self.W @ rms_norm(h, self.gain, eps), self.y)

    def block(self, h: torch.Tensor) -> torch.Tensor:
        """Δ = B(N(h)): depends on h only through its direction (ε = 0)."""
        return self.W2 @ torch.tanh(self.W1 @ rms_norm(h, self.gain))


SCALES = (1e-30, 1e-8, 1.0, 1e8, 1e30)  # float64 handles squares of these (1e±60) exactly enough


def check_rmsnorm_invariance(n: int = 16, seed: int = 0) -> NumericReport:
    P = _Problem(n, seed=seed)
    N0 = rms_norm(P.h, P.gain)
    err = max(_rel(rms_norm(c * P.h, P.gain), N0) for c in SCALES)
    return NumericReport("RMSNORM_INVARIANCE", {"max_c |N(c h) - N(h)|/|N(h)|": err},
                         {"max_c |N(c h) - N(h)|/|N(h)|": TOL}, {})


def check_layernorm_invariance(n: int = 16, seed: int = 0) -> NumericReport:
    P = _Problem(n, seed=seed)
    L0 = layer_norm(P.h, P.gain, P.bias)
    # the shift b must stay small relative to c·h or float64 loses the centred part (|b|/c ~ 1e16)
    err = max(_rel(layer_norm(c * P.h + 0.7 * c, P.gain, P.bias), L0) for c in SCALES)
    return NumericReport("LAYERNORM_INVARIANCE", {"max_c |LN(c h + b) - LN(h)|/|LN|": err},
                         {"max_c |LN(c h + b) - LN(h)|/|LN|": TOL}, {})


def check_norm_jacobian(n: int = 16, seed: int = 0) -> NumericReport:
    P = _Problem(n, seed=seed)
    h, eps = P.h, 1e-3
    r = torch.sqrt(h.pow(2).mean() + eps)
    J = jacrev(lambda x: rms_norm(x, P.gain, eps))(h)  # (n, n)
    closed = torch.diag(P.gain) @ (torch.eye(n, dtype=DTYPE) / r - torch.outer(h, h) / (n * r**3))
    J0 = jacrev(lambda x: rms_norm(x, P.gain))(h)
    Jl = jacrev(lambda x: layer_norm(x, P.gain, P.bias))(h)
    ones = torch.ones(n, dtype=DTYPE)
    # numpy's SVD for norms and ranks: torch.linalg's first call costs ~1.5 s of lazy
    # initialisation, which the quick verify tier would pay for a 16 x 16 matrix
    J0n, Jln = J0.numpy(), Jl.numpy()
    norm0, norml = np.linalg.norm(J0n, 2), np.linalg.norm(Jln, 2)
    errors = {
        "J vs closed form": _rel(J, closed),
        "|J h|/(|J||h|) eps=0": float((J0 @ h).norm() / (norm0 * h.norm())),
        "|J_LN 1|/(|J_LN| sqrt n)": float((Jl @ ones).norm() / (norml * n**0.5)),
        "|J_LN h|/(|J_LN||h|)": float((Jl @ h).norm() / (norml * h.norm())),
        "rank J - (n-1)": float(abs(np.linalg.matrix_rank(J0n) - (n - 1))),
        "rank J_LN - (n-2)": float(abs(np.linalg.matrix_rank(Jln) - (n - 2))),
    }
    tol = dict.fromkeys(errors, TOL)
    return NumericReport("NORM_JACOBIAN", errors, tol, {})


def check_euler(n: int = 16, seed: int = 0) -> NumericReport:
    P = _Problem(n, seed=seed)
    L = P.loss()
    g = grad(L)(P.h)
    errors = {"<h,grad L>/(|h||grad L|)": float(P.h @ g / (P.h.norm() * g.norm()))}
    errors["max_c |c grad L(c h) - grad L|/|grad L|"] = max(
        _rel(c * grad(L)(c * P.h), g) for c in SCALES)
    errors = {k: abs(v) for k, v in errors.items()}
    return NumericReport("EULER", errors, dict.fromkeys(errors, TOL), {})


def check_hessian(n: int = 16, seed: int = 0) -> NumericReport:
    P = _Problem(n, seed=seed)
    L = P.loss()
    g = grad(L)(P.h)
    # reverse-over-reverse: torch.func.hessian (forward-over-reverse) calls the deprecated
    # torch.jit.script in torch 2.13, which the warnings-as-errors test setup rejects
    H = jacrev(grad(L))(P.h)  # (n, n)
    e = {"|hess L h + grad L|/|grad L|": _rel(H @ P.h, -g)}
    return NumericReport("HESSIAN", e, dict.fromkeys(e, TOL), {})


def radial_share(h: torch.Tensor, g: torch.Tensor) -> float:
    """$|\\langle h, g\\rangle| / (\\lVert h\\rVert \\lVert g\\rVert)$: cosine of the gradient with the
    radial direction."""
    return float((h @ g).abs() / (h.norm() * g.norm()))


def check_eps_leak(n: int = 16, seed: int = 0, eps: float = 1e-3) -> NumericReport:
    P = _Problem(n, seed=seed)
    errors, values = {}, {}
    for c in (1.0, 10.0, 100.0):
        h = c * P.h
        g = grad(P.loss(eps))(h)
        r = torch.sqrt(h.pow(2).mean() + eps)
        z = P.W @ rms_norm(h, P.gain, eps)
        outer = P.W.T @ (torch.softmax(z, -1) - torch.nn.functional.one_hot(
            torch.tensor(P.y), P.V).to(DTYPE))  # W^T (p - e_y)
        closed = eps / r**3 * ((P.gain * h) @ outer)
        # The radial derivative is a sum of terms of size |h||grad L| that cancel to a share
        # kappa ~ 1e-4..1e-8 of it, so round-off is measured against |h||grad L|; with the
        # closed share >= 2e-8 here, TOL still resolves a 0.5 % error in the closed form.
        errors[f"|<h,grad L> - closed|/(|h||grad L|) (c={c:g})"] = float(
            (h @ g - closed).abs() / (h.norm() * g.norm()))
        kappa = eps / (h.pow(2).mean() + eps)
        J = jacrev(lambda x: rms_norm(x, P.gain, eps))(h)
        u = h / h.norm()
        split = (torch.eye(n, dtype=DTYPE) - torch.outer(u, u) + kappa * torch.outer(u, u)) \
            @ torch.diag(P.gain) / r
        errors[f"J^T vs (1/r)[P_perp + kappa uu^T]diag(gamma) (c={c:g})"] = _rel(J.T, split)
        values[f"kappa(c={c:g})"] = float(kappa)
        values[f"radial share(c={c:g})"] = radial_share(h, g)
    return NumericReport("EPS_LEAK", errors, dict.fromkeys(errors, TOL), values)


def check_raw_readout(n: int = 16, seed: int = 0) -> NumericReport:
    P = _Problem(n, seed=seed)
    L = lambda h: cross_entropy(P.W @ h, P.y)  # noqa: E731
    g = grad(L)(P.h)
    z = P.W @ P.h
    closed = torch.softmax(z, -1) @ z - z[P.y]
    e = {"<h,grad L> vs E_p[z] - z_y": _rel(P.h @ g, closed)}
    return NumericReport("RAW_READOUT", e, dict.fromkeys(e, TOL),
                         {"E_p[z]-z_y": float(closed), "radial share": radial_share(P.h, g)})


def check_norm_penalty(n: int = 16, seed: int = 0, lam: float = 0.01) -> NumericReport:
    P = _Problem(n, seed=seed)
    L = lambda h: P.loss()(h) + lam * h.pow(2).sum()  # noqa: E731
    g = grad(L)(P.h)
    s2 = P.h.pow(2).sum()
    e = {"<h,grad(CE(W N h) + lam|h|^2)> vs 2 lam |h|^2": _rel(P.h @ g, 2 * lam * s2)}
    gm = grad(lambda h: lam * h.pow(2).mean())(P.h)
    e["<h, grad lam ms(h)> vs 2 lam |h|^2/n"] = _rel(P.h @ gm, 2 * lam * s2 / n)
    return NumericReport("NORM_PENALTY", e, dict.fromkeys(e, TOL), {})


def check_final_only(n: int = 16, seed: int = 0) -> NumericReport:
    P = _Problem(n, seed=seed)
    h1, h2 = P.h, _Problem(n, seed=seed + 1).h

    def L(a, b):  # raw readout at the intermediate loop, normalized readout at the final loop
        return cross_entropy(P.W @ a, P.y) + cross_entropy(P.W @ rms_norm(b, P.gain), P.y)

    g1, g2 = grad(L, argnums=(0, 1))(h1, h2)
    z = P.W @ h1
    closed = torch.softmax(z, -1) @ z - z[P.y]
    e = {"<H_k, grad_k> vs E_p[z]-z_y": _rel(h1 @ g1, closed),
         "|<H_K, grad_K>|/(|H_K||grad_K|)": radial_share(h2, g2)}
    return NumericReport("FINAL_ONLY", e, dict.fromkeys(e, TOL),
                         {"intermediate radial derivative": float(h1 @ g1)})


def check_lemma2_exact(n: int = 16, seed: int = 0) -> NumericReport:
    P = _Problem(n, seed=seed)
    e = {}
    for c in (1e-3, 1.0, 1e3):
        h = c * P.h
        D = P.block(h)
        s = h.norm()
        u = h / s
        a = u @ D
        Dp = D - a * u
        s1 = (h + D).norm()
        e[f"|h+D|^2 vs s^2+2sa+|D|^2 (c={c:g})"] = _rel((h + D).pow(2).sum(), s**2 + 2 * s * a + D.pow(2).sum())
        e[f"|h+D|^2 vs (s+a)^2+|Dperp|^2 (c={c:g})"] = _rel((h + D).pow(2).sum(), (s + a)**2 + Dp.pow(2).sum())
        # 2 - 2(s+a)/s' cancels catastrophically at large s; its exact rewrite
        # 2|Dperp|^2/(s'(s'+s+a)) (a residual of the certificate too) does not
        e[f"|u'-u|^2 vs 2|Dperp|^2/(s'(s'+s+a)) (c={c:g})"] = _rel(
            ((h + D) / s1 - u).pow(2).sum(), 2 * Dp.pow(2).sum() / (s1 * (s1 + s + a)))
    return NumericReport("LEMMA2_EXACT", e, dict.fromkeys(e, TOL), {})


def lemma2_terms(h: torch.Tensor, D: torch.Tensor) -> dict[str, torch.Tensor]:
    """Scale s, radial part a, tangential size β = ‖Δ⊥‖, the exact increment s' - s computed
    without cancellation as (2sa + ‖Δ‖²)/(s' + s), and the exact angular step."""
    s = h.norm()
    u = h / s
    a = u @ D
    beta = (D - a * u).norm()
    s1 = (h + D).norm()
    return {"s": s, "a": a, "beta": beta, "increment": (2 * s * a + D.pow(2).sum()) / (s1 + s),
            "angular_step": ((h + D) / s1 - u).norm()}


def lemma2_bound_excess(h: torch.Tensor, D: torch.Tensor) -> dict[str, float]:
    """How far one update lies outside the explicit Lemma 2 bounds (LEMMA2_BOUNDS), in units
    of its float64 round-off; 0 when inside. Needs s + a > 0.

    Radial: rem = s' - s - a - beta^2/(2s) is the difference of terms of size at most
    m = |s' - s| + |a| + beta^2/(2s), each carrying a few ulps, so the excess is measured in
    units of eps * m. Angular: |u' - u| is measured directly as the norm of a difference of
    two unit vectors, whose entries carry ~eps each: units of eps * sqrt(n)."""
    T = lemma2_terms(h, D)
    s, a, beta = T["s"], T["a"], T["beta"]
    x = s + a
    if not x > 0:
        raise ValueError(f"the bounds need s + a > 0, got s = {float(s):g}, a = {float(a):g}")
    s1 = (h + D).norm()
    rem = T["increment"] - a - beta**2 / (2 * s)
    upper = -a * beta**2 / (2 * s * x)
    lower = upper - beta**4 / (8 * x**3)
    eps = torch.finfo(DTYPE).eps
    m = T["increment"].abs() + a.abs() + beta**2 / (2 * s)
    ang = T["angular_step"]
    return {
        "radial": float(torch.clamp(torch.maximum(lower - rem, rem - upper), min=0) / (eps * m)),
        "angular": float(torch.clamp(torch.maximum(beta / s1 - ang, ang - beta / x), min=0)
                         / (eps * math.sqrt(h.numel()))),
        "rem": float(rem), "second": float(-a * beta**2 / (2 * s**2)),
        "bound_width": float(upper - lower),
    }


# A measured value outside a bound by more than this many units of its own round-off (see
# lemma2_bound_excess) is a real violation: float64 evaluation of a handful of sums carries a
# few ulps, and 64 leaves a wide margin while staying far below the s^-2 term's size.
BOUND_ULPS = 64.0


def check_lemma2_expansion(n: int = 16, seed: int = 0, block_scale: float = 1.0) -> NumericReport:
    """The s^-2 coefficient of s' - s, checked against the explicit bounds: at s = 1e2..1e4,
    rem = s' - s - a - beta^2/(2s) must lie between the LEMMA2_BOUNDS bounds (which pin it to
    -a beta^2/(2s^2) up to O(s^-3)), and the angular step between beta/s' and beta/(s+a).
    Dimensionally sound for every a, beta and block scale (errors are in units of round-off)."""
    P = _Problem(n, seed=seed)
    e, v = {}, {}
    for c in (1e2, 1e3, 1e4):
        h = c * P.h
        D = block_scale * P.block(h)
        x = lemma2_bound_excess(h, D)
        tag = f"(s={float(h.norm()):.3g})"
        e[f"rem outside radial bounds, ulps {tag}"] = x["radial"]
        e[f"|u'-u| outside angular bounds, ulps {tag}"] = x["angular"]
        v[f"rem/(-a beta^2/(2s^2)) {tag}"] = x["rem"] / x["second"]
    T = lemma2_terms(P.h, block_scale * P.block(P.h))
    v["a"], v["beta"] = float(T["a"]), float(T["beta"])
    return NumericReport("LEMMA2_EXPANSION", e, dict.fromkeys(e, BOUND_ULPS), v)


def check_lemma2_bounds(n: int = 16, seed: int = 0) -> NumericReport:
    """The explicit bounds at every scale, not only large ones: random states and updates
    with s/|Delta| from 0.3 to 1e4 (the bounds' gaps are O(1) relative at the small end), every
    draw with s + a > 0 checked."""
    g = torch.Generator().manual_seed(seed)
    e, v = {"max radial excess (ulps)": 0.0, "max angular excess (ulps)": 0.0}, {}
    checked = 0
    for ratio in (0.3, 1.0, 3.0, 1e2, 1e4):
        for _ in range(8):
            h = torch.randn(n, generator=g, dtype=DTYPE)
            D = torch.randn(n, generator=g, dtype=DTYPE)
            h = ratio * D.norm() * h / h.norm()
            if not (h.norm() + (h / h.norm()) @ D) > 0:
                continue  # outside the hypothesis s + a > 0
            x = lemma2_bound_excess(h, D)
            e["max radial excess (ulps)"] = max(e["max radial excess (ulps)"], x["radial"])
            e["max angular excess (ulps)"] = max(e["max angular excess (ulps)"], x["angular"])
            checked += 1
            if ratio == 0.3:
                v["radial bound width at s/|D|=0.3"] = x["bound_width"]
    v["updates checked"] = checked
    return NumericReport("LEMMA2_BOUNDS", e, dict.fromkeys(e, BOUND_ULPS), v)


def check_gd_norm(n: int = 16, seed: int = 0, eta: float = 0.5) -> NumericReport:
    P = _Problem(n, seed=seed)
    L = P.loss()
    w = P.h
    g = grad(L)(w)
    w1 = w - eta * g
    e = {"|w'|^2 vs |w|^2 + eta^2|g|^2": _rel(w1.pow(2).sum(), w.pow(2).sum() + eta**2 * g.pow(2).sum())}
    return NumericReport("GD_NORM", e, dict.fromkeys(e, TOL),
                         {"|w'|^2 - |w|^2": float(w1.pow(2).sum() - w.pow(2).sum())})


def check_weight_decay(n: int = 16, seed: int = 0, eta: float = 0.1, lam: float = 0.01) -> NumericReport:
    P = _Problem(n, seed=seed)
    L = P.loss()
    w = P.h
    g = grad(L)(w)
    q = eta * lam
    w1 = (1 - q) * w - eta * g
    e = {"one step |w'|^2": _rel(w1.pow(2).sum(), (1 - q) ** 2 * w.pow(2).sum() + eta**2 * g.pow(2).sum())}
    G = float(w.norm() * g.norm())  # scale-free gradient size at this direction
    x_star = math.sqrt(eta * G**2 / (lam * (2 - q)))
    x = float(w.pow(2).sum())
    for _ in range(20000):  # the scalar norm map contracts at rate ~ (1-q)^4 per step
        x = (1 - q) ** 2 * x + eta**2 * G**2 / x
    e["iterated norm map vs x*"] = abs(x - x_star) / x_star
    ws = w / w.norm() * math.sqrt(x_star)  # a state at the equilibrium norm, same direction
    gs = grad(L)(ws)
    ws1 = (1 - q) * ws - eta * gs
    angle = torch.arccos((ws @ ws1 / (ws.norm() * ws1.norm())).clamp(-1, 1))
    theta = math.acos(1 - q)
    e["angle at x* vs acos(1 - eta lam)"] = abs(float(angle) - theta) / theta
    tol = dict.fromkeys(e, TOL)
    # arccos near 1 amplifies round-off: d acos(x)/dx = -1/sqrt(1-x^2) ~ 1/theta ~ 20 here,
    # and the cosine itself carries ~1e-16; 1e-8 is the float64 floor for this angle, not slack
    tol["angle at x* vs acos(1 - eta lam)"] = 1e-8
    return NumericReport("WEIGHT_DECAY", e, tol,
                         {"G": G, "x*": x_star, "theta*": theta, "sqrt(2 eta lam)": math.sqrt(2 * q)})


def check_radial_clamp(n: int = 16, seed: int = 0) -> NumericReport:
    P = _Problem(n, seed=seed)
    h = 100.0 * P.h
    e, v = {}, {}
    D0 = P.block(h)
    for c in (1e-3, 10.0, 1e3):
        e[f"|N(cH) - N(H)| (c={c:g})"] = _rel(rms_norm(c * h, P.gain), rms_norm(h, P.gain))
        e[f"|Delta(cH) - Delta(H)| (c={c:g})"] = _rel(P.block(c * h), D0)
    T1 = lemma2_terms(h, D0)
    Tc = lemma2_terms(1e3 * h, D0)
    v["angular step ratio (c=1e3)"] = float(T1["angular_step"] / Tc["angular_step"])
    s, a, beta = T1["s"], T1["a"], T1["beta"]
    u = h / s
    Dp = D0 - a * u
    full = (h + D0) / (h + D0).norm()
    clamp = (h + Dp) / (h + Dp).norm()
    angle = torch.arccos((full @ clamp).clamp(-1, 1))
    v["clamp-vs-full angle"], v["a beta/s^2"] = float(angle), float(a.abs() * beta / s**2)
    # angular step of cH vs H: ratio c up to O(1/s) corrections (s ~ 400 here): 1e-2 relative
    e["angular step ratio vs c (c=1e3)"] = abs(v["angular step ratio (c=1e3)"] / 1e3 - 1)
    # clamp-vs-full angle: a beta/s^2 up to O(1/s) relative, and arccos of a cosine near 1
    # resolves angles only to ~1e-8 absolute: 5e-2 relative covers both at s ~ 400
    e["clamp angle vs |a| beta/s^2"] = abs(v["clamp-vs-full angle"] / v["a beta/s^2"] - 1)
    tol = dict.fromkeys(e, TOL)
    tol["angular step ratio vs c (c=1e3)"] = 1e-2
    tol["clamp angle vs |a| beta/s^2"] = 5e-2
    return NumericReport("RADIAL_CLAMP", e, tol, v)


CHECKS: dict[str, Callable[..., NumericReport]] = {
    "RMSNORM_INVARIANCE": check_rmsnorm_invariance,
    "LAYERNORM_INVARIANCE": check_layernorm_invariance,
    "NORM_JACOBIAN": check_norm_jacobian,
    "EULER": check_euler,
    "HESSIAN": check_hessian,
    "EPS_LEAK": check_eps_leak,
    "RAW_READOUT": check_raw_readout,
    "NORM_PENALTY": check_norm_penalty,
    "FINAL_ONLY": check_final_only,
    "LEMMA2_EXACT": check_lemma2_exact,
    "LEMMA2_EXPANSION": check_lemma2_expansion,
    "LEMMA2_BOUNDS": check_lemma2_bounds,
    "GD_NORM": check_gd_norm,
    "WEIGHT_DECAY": check_weight_decay,
    "RADIAL_CLAMP": check_radial_clamp,
}
"""Certificate name -> its float64 autograd cross-check."""

# ruff: noqa: E501  (named error strings read best unbroken)
"""Float64 ``torch.func`` cross-checks of every certificate, at random points in dimension n.

The sympy certificates (:mod:`blindspot.symbolic.identities`) prove the algebra at n = 2..4;
these checks evaluate the same statements with autograd at n = 16 and against the closed
forms, so a sign or factor slip in either place shows up as a disagreement. Each check
returns a :class:`NumericReport` of named errors (relative, dimensionless) and passes when
every error is below its tolerance. Demonstrated in ``tests/test_symbolic.py``, whose test of
each certificate runs its numeric twin for five seeds.

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


def temperature_force(z: torch.Tensor, y: int) -> torch.Tensor:
    """$\\mathbb{E}_p[z] - z_y$: the derivative of CE(tau z, y) in the inverse temperature at 1."""
    return torch.softmax(z, -1) @ z - z[y]


def check_eps_temperature(n: int = 16, seed: int = 0) -> NumericReport:
    """<h, grad CE(W N_eps(h), y)> = kappa (E_p z - z_y) with the model's own logits z, for
    eps in {1e-8, 1e-6, 1e-5, 1e-3} and scales 1e-3..1e3; N_eps = sqrt(m/(m+eps)) N_0; and the
    sign: the force points outward (-<h, grad L> > 0) exactly when z_y > E_p z."""
    P = _Problem(n, seed=seed)
    e = {"max |<h,grad L> - kappa(E_p z - z_y)|/(|h||grad L|)": 0.0,
         "max |N_eps - sqrt(m/(m+eps)) N_0|/|N_0|": 0.0, "sign mismatches": 0.0,
         "max relative error where resolved": 0.0}
    resolved = 0
    for eps in (1e-8, 1e-6, 1e-5, 1e-3):
        for c in (1e-3, 1.0, 1e3):
            h = c * P.h
            m = h.pow(2).mean()
            kappa = eps / (m + eps)
            g = grad(P.loss(eps))(h)
            z = P.W @ rms_norm(h, P.gain, eps)
            closed = kappa * temperature_force(z, P.y)
            scale = h.norm() * g.norm()
            # a cancelling sum of terms of size |h||grad L|: its round-off is ~eps64 of that
            e["max |<h,grad L> - kappa(E_p z - z_y)|/(|h||grad L|)"] = max(
                e["max |<h,grad L> - kappa(E_p z - z_y)|/(|h||grad L|)"],
                float((h @ g - closed).abs() / scale))
            e["max |N_eps - sqrt(m/(m+eps)) N_0|/|N_0|"] = max(
                e["max |N_eps - sqrt(m/(m+eps)) N_0|/|N_0|"],
                _rel(rms_norm(h, P.gain, eps), torch.sqrt(m / (m + eps)) * rms_norm(h, P.gain)))
            if closed.abs() > 1e6 * torch.finfo(DTYPE).eps * scale:
                # resolved to <= 1e-6 relative (round-off ~eps64 |h||grad L|): here the
                # closed form is checked against its own size, so a wrong factor shows even
                # where kappa ~ 1e-9 makes the whole force tiny
                resolved += 1
                e["max relative error where resolved"] = max(
                    e["max relative error where resolved"], float((h @ g - closed).abs()
                                                                  / closed.abs()))
                outward = bool(-(h @ g) > 0)
                wants_sharper = bool(z[P.y] > torch.softmax(z, -1) @ z)
                e["sign mismatches"] += float(outward != wants_sharper)
    tol = dict.fromkeys(e, TOL)
    tol["sign mismatches"] = 0.0
    tol["max relative error where resolved"] = 1e-5  # 10x the resolution guard above
    return NumericReport("EPS_TEMPERATURE", e, tol, {"signs resolved": resolved})


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


def _in_units(excess: torch.Tensor, unit: float | torch.Tensor) -> float:
    """A signed distance outside a bound (> 0 outside) in units of round-off: 0 inside or on
    the bound, whatever the unit (an update stored as exactly zero has m = 0 and must read as
    inside, not as 0/0), and inf outside with a zero unit."""
    excess = float(excess)
    if excess <= 0:
        return 0.0
    return excess / float(unit) if float(unit) > 0 else math.inf


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
        "radial": _in_units(torch.maximum(lower - rem, rem - upper), eps * m),
        "angular": _in_units(torch.maximum(beta / s1 - ang, ang - beta / x),
                             eps * math.sqrt(h.numel())),
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


def radial_clamp_terms(h: torch.Tensor, D: torch.Tensor) -> dict[str, float]:
    """The angle between the full update's direction u' = (h + Δ)/‖h + Δ‖ and the clamped one
    (h + Δ⊥)/‖h + Δ⊥‖, and how far it lies from its closed forms, dimensionally sound at every
    |a| (a = ⟨u, Δ⟩ → 0 makes the angle vanish, so a relative tolerance on it cannot be).

    Measured as 2 asin(‖full − clamp‖/2): the norm of a difference of two unit vectors, whose
    entries carry ~eps64 each, so its round-off is ~eps64·sqrt(n) absolute at every angle
    (arccos of their cosine resolves only ~1e-8). Exact: both directions lie in the plane of
    u and Δ⊥, at angles arctan(β/(s+a)) and arctan(β/s) from u, so the angle is
    |arctan(aβ/(s(s+a) + β²))| (the difference of the two arctangents, cancellation-free).
    First order: aβ/s² = x (1 + a/s + β²/s²) with x = aβ/(s(s+a) + β²), and x/arctan(x) lies
    in [1, 1/(1 - x²/3)], so |aβ/s² / arctan(x) - 1| <= |a|/s + β²/s² + x² (+ their
    products, covered by a factor 2): the O(s⁻³) remainder of RADIAL_CLAMP, relative.
    Returns the excess over each (0 inside) in units of round-off, and the values."""
    T = lemma2_terms(h, D)
    s, a, beta = T["s"], T["a"], T["beta"]
    u = h / s
    full = (h + D) / (h + D).norm()
    Dp = D - a * u
    clamp = (h + Dp) / (h + Dp).norm()
    measured = 2 * torch.asin((full - clamp).norm() / 2)
    x = a * beta / (s * (s + a) + beta**2)
    exact = torch.atan(x).abs()
    eps = torch.finfo(DTYPE).eps
    first = a * beta / s**2
    if a == 0:  # both forms vanish: nothing to compare
        rel, bound = 0.0, 0.0
    else:
        rel = float((first / torch.atan(x) - 1).abs())
        bound = float(2 * (a.abs() / s + beta**2 / s**2 + x**2))
    return {"measured vs exact (ulps)": _in_units((measured - exact).abs(),
                                                  eps * math.sqrt(h.numel())),
            # the ratio of two closed forms, each a few float64 operations: ~eps64 relative
            "first order outside its bound (ulps)": _in_units(
                torch.tensor(rel - bound), eps * max(1.0, rel)),
            "angle": float(measured), "a beta/s^2": float(first.abs()),
            "relative first-order error": rel, "bound": bound}


def check_radial_clamp(n: int = 16, seed: int = 0) -> NumericReport:
    P = _Problem(n, seed=seed)
    h = 100.0 * P.h
    e, v = {}, {}
    D0 = P.block(h)
    for c in (1e-3, 10.0, 1e3):
        e[f"|N(cH) - N(H)| (c={c:g})"] = _rel(rms_norm(c * h, P.gain), rms_norm(h, P.gain))
        e[f"|Delta(cH) - Delta(H)| (c={c:g})"] = _rel(P.block(c * h), D0)
    cc = 1e3
    T1, Tc = lemma2_terms(h, D0), lemma2_terms(cc * h, D0)
    ratio = T1["angular_step"] / (cc * Tc["angular_step"])
    v["angular step ratio (c=1e3)"] = float(cc * ratio)
    # |u'-u| ~ beta/(c s): by the Lemma 2 bounds beta/s' <= |u'-u| <= beta/(s+a) at both
    # states, so the ratio over c lies in [(c s + a)/(c s'), s'_c/(c (s+a))] (an O(1/s)
    # interval), measured in units of the two angles' round-off (~eps64 sqrt(n) each, absolute)
    s, a, s1 = T1["s"], T1["a"], (h + D0).norm()
    lo, hi = (cc * s + a) / (cc * s1), (cc * h + D0).norm() / (cc * (s + a))
    unit = torch.finfo(DTYPE).eps * math.sqrt(n) * ratio * (
        1 / T1["angular_step"] + 1 / Tc["angular_step"])
    e["angular step ratio / c outside its Lemma 2 interval, ulps (c=1e3)"] = _in_units(
        torch.maximum(lo - ratio, ratio - hi), unit)
    clamp = radial_clamp_terms(h, D0)
    v["clamp-vs-full angle"], v["a beta/s^2"] = clamp["angle"], clamp["a beta/s^2"]
    e["clamp angle vs exact, ulps"] = clamp["measured vs exact (ulps)"]
    e["clamp angle's first order a beta/s^2 outside its O(1/s) bound, ulps"] = \
        clamp["first order outside its bound (ulps)"]
    tol = dict.fromkeys(e, TOL)
    tol["angular step ratio / c outside its Lemma 2 interval, ulps (c=1e3)"] = BOUND_ULPS
    tol["clamp angle vs exact, ulps"] = BOUND_ULPS
    tol["clamp angle's first order a beta/s^2 outside its O(1/s) bound, ulps"] = BOUND_ULPS
    return NumericReport("RADIAL_CLAMP", e, tol, v)


# -- a small functional looped LM: parameters, total gradients, loop updates -------------

class LoopProblem:
    """A functional looped LM in float64 (``torch.func`` throughout): T tokens of width n,
    vocabulary V, token and position embeddings, per loop ``sublayers`` pre-norm sublayers
    (causal attention over N(x), then a tanh MLP; with ``sandwich`` each branch output is
    normalized again with its own gain), K loops, per-loop CE through an RMSNorm readout
    (the mean over loops and tokens, as the paper trains), tied to the token embedding or
    untied. Every norm has the same ε.

    ``stream`` names the parameter group P that writes the residual stream (token and
    position embeddings; each sublayer's output projection, or its post-norm gain for the
    sandwich block), the group PARAM_INVARIANCE is about."""

    def __init__(self, n: int = 16, V: int = 10, T: int = 6, K: int = 3, sublayers: int = 1,
                 *, tied: bool = False, sandwich: bool = False, eps: float = 0.0, seed: int = 0):
        g = torch.Generator().manual_seed(seed)

        def randn(*shape, std=1.0):
            return std * torch.randn(*shape, generator=g, dtype=DTYPE)

        self.n, self.V, self.T, self.K = n, V, T, K
        self.sublayers, self.tied, self.sandwich, self.eps = sublayers, tied, sandwich, eps
        p = {"E": randn(V, n), "pos": randn(T, n), "gain_f": 1 + randn(n, std=0.3)}
        if not tied:
            p["U"] = randn(V, n)
        for i in range(sublayers):
            p[f"gain{i}"] = 1 + randn(n, std=0.3)
            p[f"Wq{i}"], p[f"Wk{i}"], p[f"Wv{i}"] = (randn(n, n, std=n**-0.5) for _ in range(3))
            p[f"W1{i}"] = randn(2 * n, n, std=n**-0.5)
            p[f"O{i}"] = randn(n, 2 * n if i % 2 else n, std=0.5 * n**-0.5)
            if sandwich:
                p[f"post{i}"] = 1 + randn(n, std=0.3)
        self.params = p
        self.tokens = torch.randint(V, (T,), generator=g)
        self.targets = torch.randint(V, (T,), generator=g)
        writers = [f"post{i}" if sandwich else f"O{i}" for i in range(sublayers)]
        self.stream = ("E", "pos", *writers)

    def branch(self, p: dict, i: int, x: torch.Tensor) -> torch.Tensor:
        """Sublayer i's output for the states x (T, n): even i attention, odd i MLP."""
        a = rms_norm(x, p[f"gain{i}"], self.eps)  # (T, n)
        if i % 2 == 0:
            q, k, v = a @ p[f"Wq{i}"].T, a @ p[f"Wk{i}"].T, a @ p[f"Wv{i}"].T
            mask = torch.ones(self.T, self.T, dtype=torch.bool).tril()
            att = torch.softmax((q @ k.T / math.sqrt(self.n)).masked_fill(~mask, -math.inf), -1)
            out = (att @ v) @ p[f"O{i}"].T  # (T, n)
        else:
            out = torch.tanh(a @ p[f"W1{i}"].T) @ p[f"O{i}"].T  # (T, n)
        return rms_norm(out, p[f"post{i}"], self.eps) if self.sandwich else out

    def loop(self, p: dict, x: torch.Tensor) -> torch.Tensor:
        """One loop: every sublayer adds its branch output to the stream."""
        for i in range(self.sublayers):
            x = x + self.branch(p, i, x)
        return x

    def states(self, p: dict, deltas=None) -> list[torch.Tensor]:
        """H_0 (embeddings), H_1..H_K; ``deltas[k-1]`` is added to H_k after loop k (zero
        perturbations whose gradients are the total gradients grad_{H_k} L)."""
        h = p["E"][self.tokens] + p["pos"]  # (T, n)
        out = [h]
        for k in range(self.K):
            h = self.loop(p, h)
            if deltas is not None:
                h = h + deltas[k]
            out.append(h)
        return out

    def logits(self, p: dict, h: torch.Tensor) -> torch.Tensor:
        return rms_norm(h, p["gain_f"], self.eps) @ (p["E"] if self.tied else p["U"]).T  # (T, V)

    def loss(self, p: dict, deltas=None) -> torch.Tensor:
        """Per-loop CE, the mean over loops 1..K and over tokens."""
        return sum(torch.nn.functional.cross_entropy(self.logits(p, h), self.targets)
                   for h in self.states(p, deltas)[1:]) / self.K

    def loss_from(self, p: dict, k: int, h: torch.Tensor) -> torch.Tensor:
        """The same loss with the state after loop k (1..K) replaced by h and loops k+1..K run
        from it; loops before k contribute their own CE unchanged."""
        H = self.states(p)
        ce = [torch.nn.functional.cross_entropy(self.logits(p, x), self.targets)
              for x in H[1:k]]
        for _ in range(k, self.K + 1):
            ce.append(torch.nn.functional.cross_entropy(self.logits(p, h), self.targets))
            if len(ce) < self.K:
                h = self.loop(p, h)
        return sum(ce) / self.K

    def zeros(self) -> list[torch.Tensor]:
        return [torch.zeros(self.T, self.n, dtype=DTYPE) for _ in range(self.K)]


def stream_radial(problem: LoopProblem) -> dict[str, float]:
    """<P, grad_P L> over the stream-writing group, |P| |grad_P L|, and the tied-readout
    correction (1/K) sum_k mean_t (E_p z - z_y) (PARAM_INVARIANCE)."""
    p = problem.params
    g = grad(problem.loss)(p)
    inner = sum((p[k] * g[k]).sum() for k in problem.stream)
    size = math.sqrt(sum(float(p[k].pow(2).sum()) for k in problem.stream)) * \
        math.sqrt(sum(float(g[k].pow(2).sum()) for k in problem.stream))
    correction = 0.0
    for h in problem.states(p)[1:]:
        z = problem.logits(p, h)  # (T, V)
        pz = torch.softmax(z, -1)
        correction += float(((pz * z).sum(-1) - z.gather(-1, problem.targets[:, None])[:, 0]).mean())
    return {"inner": float(inner), "size": size, "correction": correction / problem.K}


def check_param_invariance(seed: int = 0) -> NumericReport:
    """Untied, eps = 0: <P, grad_P L> = 0 (pre-norm and sandwich, 1 and 2 sublayers per loop);
    tied: <P, grad_P L> = (1/K) sum_k mean(E_p z_k - z_{k,y}); the states are homogeneous of degree 1
    in P over c = 1e-3..1e3. Errors relative to |P| |grad_P L| (a cancelling sum of that size)."""
    e, v = {}, {}
    for sandwich in (False, True):
        for sub in (1, 2):
            tag = f"{'sandwich' if sandwich else 'pre-norm'}, {sub} sublayer(s)"
            for tied in (False, True):
                pr = LoopProblem(sublayers=sub, tied=tied, sandwich=sandwich, seed=seed)
                r = stream_radial(pr)
                want = r["correction"] if tied else 0.0
                e[f"{'tied' if tied else 'untied'} {tag}"] = abs(r["inner"] - want) / r["size"]
                if sub == 2 and not sandwich:
                    v[f"<P,grad_P L> {'tied' if tied else 'untied'}"] = r["inner"]
                    v["tied correction" if tied else "|P||grad_P L| untied"] = \
                        r["correction"] if tied else r["size"]
            H = pr.states(pr.params)
            for cc in (1e-3, 1e3):
                q = {k: cc * x if k in pr.stream else x for k, x in pr.params.items()}
                Hc = pr.states(q)
                e[f"|H_K(cP) - c H_K(P)|/|c H_K| (c={cc:g}, {tag})"] = _rel(Hc[-1], cc * H[-1])
    leak = LoopProblem(sublayers=2, eps=1e-5, seed=seed)
    r = stream_radial(leak)
    v["untied, eps=1e-5: <P,grad_P L>/(|P||grad_P L|)"] = r["inner"] / r["size"]
    return NumericReport("PARAM_INVARIANCE", e, dict.fromkeys(e, TOL), v)


def check_state_vs_param_norm(seed: int = 0) -> NumericReport:
    """|H_K(P)| = |P| |H_K(P/|P|)| on the looped problem; and the certificate's example
    evaluated in float64: |P| grows from 2 to 5/2 while |H_1|^2 falls from 2 to 1/2."""
    pr = LoopProblem(sublayers=2, seed=seed)
    p = pr.params
    norm = math.sqrt(sum(float(p[k].pow(2).sum()) for k in pr.stream))
    unit = {k: x / norm if k in pr.stream else x for k, x in p.items()}
    HK, HK_unit = pr.states(p)[-1], pr.states(unit)[-1]
    e = {"|H_K(P)| vs |P| |H_K(P/|P|)|": abs(float(HK.norm()) / (norm * float(HK_unit.norm())) - 1)}
    ones = torch.ones(2, dtype=DTYPE)

    def h1(O):
        return ones + O @ rms_norm(ones, torch.ones(2, dtype=DTYPE))

    before, after = h1(torch.zeros(2, 2, dtype=DTYPE)), h1(-torch.eye(2, dtype=DTYPE) / 2)
    e["|H_1(P)|^2 - 2"] = abs(float(before.pow(2).sum()) - 2)
    e["|H_1(P')|^2 - 1/2"] = abs(float(after.pow(2).sum()) - 0.5)
    return NumericReport("STATE_VS_PARAM_NORM", e, dict.fromkeys(e, TOL),
                         {"|P|": norm, "|H_K|": float(HK.norm())})


def total_radial_terms(problem: LoopProblem) -> dict[str, torch.Tensor]:
    """Per loop k = 1..K and token: R_k = <H_k, grad_{H_k} L> (total gradient, through every
    later loop) and the prediction -sum_{j>=k} <Delta_j, grad_{H_{j+1}} L>. Shapes (K, T)."""
    p = problem.params
    H = problem.states(p)  # H_0..H_K
    G = grad(problem.loss, argnums=1)(p, problem.zeros())  # grad_{H_k} L, k = 1..K
    R = torch.stack([(H[k] * G[k - 1]).sum(-1) for k in range(1, problem.K + 1)])
    steps = torch.stack([((H[j + 1] - H[j]) * G[j]).sum(-1) for j in range(1, problem.K)]
                        + [torch.zeros(problem.T, dtype=DTYPE)])  # <Delta_j, G_{j+1}>, j=1..K
    pred = -steps.flip(0).cumsum(0).flip(0)  # -sum_{j >= k}
    return {"R": R, "predicted": pred,
            "size": torch.stack([(H[k].norm(dim=-1) * G[k - 1].norm(dim=-1))
                                 for k in range(1, problem.K + 1)])}


def radial_by_differences(problem: LoopProblem, k: int, step: float = 1e-3) -> float:
    """d/dc L(H_k -> c H_k)|_{c=1} of the real total loss (later loops re-run from c H_k), by
    the 4-point central difference: the sum over tokens of R_k, measured without autograd.
    Error O(step^4) from the stencil plus ~eps64 |L|/step from the loss's round-off."""
    p = problem.params
    h = problem.states(p)[k]

    def f(cc: float) -> float:
        return float(problem.loss_from(p, k, cc * h))

    d = step
    return (-f(1 + 2 * d) + 8 * f(1 + d) - 8 * f(1 - d) + f(1 - 2 * d)) / (12 * d)


def check_total_radial(seed: int = 0) -> NumericReport:
    """One sublayer per loop, eps = 0: R_k = -sum_{j>=k} <Delta_j, grad_{H_{j+1}} L> per token,
    R_K = 0, while R_1 is O(1) of |H||grad|. Any loop (two sublayers, eps = 1e-5): the
    autograd R_k, summed over tokens, is the derivative of the real total loss along the
    state's own scale (finite differences of the loss with H_k -> c H_k and the later loops
    re-run), so R_k is what the loss feels, not an artefact of the backward pass."""
    e, v = {}, {}
    T = total_radial_terms(LoopProblem(K=4, sublayers=1, seed=seed))
    e["max_k,t |R - predicted|/(|H||G|)"] = float(((T["R"] - T["predicted"]).abs()
                                                    / T["size"]).max())
    e["max_t |R_K|/(|H_K||G_K|)"] = float((T["R"][-1].abs() / T["size"][-1]).max())
    v["mean_t R_1/(|H_1||G_1|)"] = float((T["R"][0] / T["size"][0]).mean())
    # earlier states do feel the total loss's radial force: R_1 must be resolvably non-zero
    # (1e-6 of |H||G| is 1e10 round-offs; the measured value is ~1e-2)
    e["R_1 unresolved: 1e-6 - max_t |R_1|/(|H_1||G_1|)"] = max(
        0.0, 1e-6 - float((T["R"][0].abs() / T["size"][0]).max()))
    pr = LoopProblem(K=4, sublayers=2, eps=1e-5, seed=seed)
    general = total_radial_terms(pr)
    # summed over tokens (the whole state scaled at once, as the difference quotient does)
    fd = torch.tensor([radial_by_differences(pr, k) for k in range(1, pr.K + 1)], dtype=DTYPE)
    e["max_k |sum_t R_k - d/dc L(c H_k)| (differences)/sum_t |H||G|"] = float(
        ((general["R"].sum(-1) - fd).abs() / general["size"].sum(-1)).max())
    v["two sublayers: max |R - predicted|/(|H||G|)"] = float(
        ((general["R"] - general["predicted"]).abs() / general["size"]).max())
    # the difference quotient: stencil error ~step^4 = 1e-12 times the loss's 5th derivative
    # along c (O(1) here), round-off ~2e-16 |L|/step ~ 1e-13 relative to |H||G| ~ 1; seeds
    # 0-4 measure <= 2.2e-13, so TOL keeps a ~500x margin, 1e8 below R_k (~1e-2 of |H||G|)
    return NumericReport("TOTAL_RADIAL", e, dict.fromkeys(e, TOL), v)


def direction_limit_terms(problem: LoopProblem, h: torch.Tensor) -> dict:
    """For one loop of ``problem`` at the states h (T, n): Delta(c h) for several c, the
    reparametrization F(t) = sum_i b_i(N(h + t acc_i)) (acc_i: the branch outputs before
    sublayer i), which equals Delta(h/t) exactly at eps = 0, its limit F(0) = Delta_inf and
    slope F'(0) (torch.func.jacrev)."""
    p = problem.params

    def F(tt):
        acc = torch.zeros_like(h)
        for i in range(problem.sublayers):
            acc = acc + problem.branch(p, i, h + tt * acc)
        return acc

    zero = torch.zeros((), dtype=DTYPE)
    limit, slope = F(zero), jacrev(F)(zero)  # F(0) = Delta_inf and F'(0)
    delta = {cc: problem.loop(p, cc * h) - cc * h for cc in (1e-2, 1.0, 1e1, 1e2, 1e3, 1e4)}
    return {"F": F, "limit": limit, "slope": slope, "delta": delta}


def check_direction_limit(seed: int = 0) -> NumericReport:
    """Two sublayers per loop (attention then MLP), eps = 0: Delta(c h) = F(1/c) exactly;
    Delta(c h) = Delta_inf + F'(0)/c + O(c^-2) (the remainder times c^2 stays bounded from
    c = 1e2 to 1e4); and F'(0) != 0, so Delta is not a function of h/|h| at finite scale."""
    pr = LoopProblem(sublayers=2, seed=seed)
    h = pr.states(pr.params)[1]
    D = direction_limit_terms(pr, h)
    e, v = {}, {}
    # F(1/c) adds the branches to h, Delta(c h) to c h: at c = 1e4 the latter keeps ~1e-12 of
    # a branch (one ulp of c|h|), well inside TOL
    e["max_c |Delta(c h) - F(1/c)|/|Delta|"] = max(_rel(d, D["F"](torch.tensor(1 / cc, dtype=DTYPE)))
                                                  for cc, d in D["delta"].items())
    rem = {cc: float((D["delta"][cc] - D["limit"] - D["slope"] / cc).norm()) * cc**2
           for cc in (1e2, 1e3, 1e4)}
    # second order: c^2 |remainder| converges; allow it to vary by 2x (O(1/c) corrections)
    e["c^2 |Delta(ch) - Delta_inf - F'(0)/c|: max/min over c = 1e2..1e4, minus 2"] = max(
        0.0, max(rem.values()) / min(rem.values()) - 2)
    ref = D["delta"][1.0]
    for cc in (1e-2, 1e1, 1e4):
        v[f"|Delta(ch) - Delta(h)|/|Delta(h)| (c={cc:g})"] = float((D["delta"][cc] - ref).norm() / ref.norm())
    for cc in (1e2, 1e4):
        v[f"|Delta(ch) - Delta_inf|/|Delta_inf| (c={cc:g})"] = float(
            (D["delta"][cc] - D["limit"]).norm() / D["limit"].norm())
    v["|F'(0)|/|Delta_inf|"] = float(D["slope"].norm() / D["limit"].norm())
    tol = dict.fromkeys(e, TOL)
    tol["c^2 |Delta(ch) - Delta_inf - F'(0)/c|: max/min over c = 1e2..1e4, minus 2"] = 0.0
    e["|F'(0)| = 0 (must not be)"] = float(D["slope"].norm() == 0)
    tol["|F'(0)| = 0 (must not be)"] = 0.0
    return NumericReport("DIRECTION_LIMIT", e, tol, v)


def scale_invariant_stream(n: int, steps: int, seed: int, signal: float = 0.3):
    """Per-step losses L_t(w) = <a + xi_t, w/|w|> (fixed a, fresh xi_t ~ N(0, I)): exactly
    scale invariant, noisy like minibatches."""
    g = torch.Generator().manual_seed(seed)
    a = signal * torch.randn(n, generator=g, dtype=DTYPE)
    xs = torch.randn(steps, n, generator=g, dtype=DTYPE)
    w0 = torch.randn(n, generator=g, dtype=DTYPE)
    return w0, [lambda w, x=x: (a + x) @ (w / w.norm()) for x in xs]


def run_optimizer(make, w0: torch.Tensor, losses) -> dict[str, torch.Tensor]:
    """Run a torch.optim optimizer (``make(params)``) over the losses; return the norms
    |w_t| (t = 0..T), and D_t = <w_t, v_{t+1}>, |v_t|^2 and |v_{t+1}|^2 (``v_next_sq``) when it
    keeps a momentum buffer."""
    w = w0.clone().requires_grad_(True)
    opt = make([w])
    norms, D, v_sq, v_next, prev = [float(w0.norm())], [], [], [], 0.0
    for L in losses:
        opt.zero_grad()
        L(w).backward()
        before = w.detach().clone()
        opt.step()
        norms.append(float(w.detach().norm()))
        buf = opt.state[w].get("momentum_buffer")
        if buf is not None:
            D.append(float(before @ buf))
            v_sq.append(prev)  # |v_t|^2, the buffer before this step (v_0 = 0)
            prev = float(buf.pow(2).sum())
            v_next.append(prev)
    return {"norm": torch.tensor(norms, dtype=DTYPE), "D": torch.tensor(D, dtype=DTYPE),
            "v_sq": torch.tensor(v_sq, dtype=DTYPE), "v_next_sq": torch.tensor(v_next, dtype=DTYPE)}


def check_momentum_growth(seed: int = 0, n: int = 16, steps: int = 300) -> NumericReport:
    """torch.optim.SGD (plain, heavy ball, Nesterov; no decay) on exactly scale-invariant
    noisy losses never shrinks |w|: every step's relative change is >= -round-off; and
    D_t <= -eta mu |v_t|^2 (heavy ball), D_t <= -(eta mu/2) |v_t|^2 (Nesterov)."""
    w0, losses = scale_invariant_stream(n, steps, seed)
    e, v = {}, {}
    for lr in (0.1, 1.0):
        for mom, nest in ((0.0, False), (0.9, False), (0.9, True)):
            name = "GD" if mom == 0 else "Nesterov" if nest else "heavy ball"
            r = run_optimizer(lambda ps, lr=lr, mom=mom, nest=nest: torch.optim.SGD(
                ps, lr=lr, momentum=mom, nesterov=nest), w0, losses)
            shrink = -(r["norm"][1:] / r["norm"][:-1] - 1).min()
            # |w| changes by ~lr |grad| ~ lr/|w| per step; one ulp of |w| is the floor
            e[f"{name} lr={lr:g}: max relative shrink"] = max(0.0, float(shrink))
            if mom > 0:
                bound = -(lr * mom / (2 if nest else 1)) * r["v_sq"]
                # D_t = <w_t, v_{t+1}> carries round-off ~eps64 |w_t||v_{t+1}|: that is its
                # unit (|v_t| is 0 at t = 0, where D_0 = <w_0, g_0> is round-off of 0)
                scale = r["norm"][:-1] * r["v_next_sq"].sqrt()
                e[f"{name} lr={lr:g}: max (D_t - bound)/(|w||v|)"] = max(
                    0.0, float(((r["D"] - bound) / scale).max()))
            v[f"{name} lr={lr:g}: |w_T|/|w_0|"] = float(r["norm"][-1] / r["norm"][0])
    tol = dict.fromkeys(e, 1e-14)  # ~50 ulps: round-off of a norm, a dot product, one update
    return NumericReport("MOMENTUM_GROWTH", e, tol, v)


def adam_shrink_fraction(seed: int = 0, n: int = 16, steps: int = 1000, lr: float = 0.01,
                         **adam) -> float:
    """Fraction of torch.optim.Adam steps that shrink |w| on the noisy scale-invariant losses
    of :func:`check_momentum_growth` (no guarantee applies: the step is not a gradient
    multiple, so it need not be orthogonal to w)."""
    w0, losses = scale_invariant_stream(n, steps, seed)
    r = run_optimizer(lambda ps: torch.optim.Adam(ps, lr=lr, **adam), w0, losses)
    return float((r["norm"][1:] < r["norm"][:-1]).double().mean())


def check_adam_counterexample(seed: int = 0) -> NumericReport:
    """torch.optim.Adam (float64, default betas and eps = 1e-8) from w = (2, 1) on
    L = <(1, -2), w/|w|> at lr 0.1: |w|^2 goes 5 -> 4.82 (the certificate's exact value, up to
    eps's effect ~1e-8); and in noisy runs a positive fraction of Adam steps shrink |w|."""
    w = torch.tensor([2.0, 1.0], dtype=DTYPE, requires_grad=True)
    cvec = torch.tensor([1.0, -2.0], dtype=DTYPE)
    opt = torch.optim.Adam([w], lr=0.1)
    (cvec @ (w / w.norm())).backward()
    orth = float(w.detach() @ w.grad)
    opt.step()
    sq = float(w.detach().pow(2).sum())
    frac = [adam_shrink_fraction(seed=s, steps=500) for s in range(seed, seed + 4)]
    e = {"|<w, grad L>|": abs(orth), "| |w'|^2 - 4.82 |": abs(sq - 4.82),
         "no shrinking step in 4 noisy runs": float(min(frac) == 0.0)}
    tol = {"|<w, grad L>|": TOL, "| |w'|^2 - 4.82 |": 1e-7,  # eps = 1e-8 moves the step by ~2e-8
           "no shrinking step in 4 noisy runs": 0.0}
    v = {"|w'|^2": sq, "shrinking fraction min": min(frac), "shrinking fraction max": max(frac)}
    return NumericReport("ADAM_COUNTEREXAMPLE", e, tol, v)


CHECKS: dict[str, Callable[..., NumericReport]] = {
    "RMSNORM_INVARIANCE": check_rmsnorm_invariance,
    "LAYERNORM_INVARIANCE": check_layernorm_invariance,
    "NORM_JACOBIAN": check_norm_jacobian,
    "EULER": check_euler,
    "HESSIAN": check_hessian,
    "EPS_LEAK": check_eps_leak,
    "EPS_TEMPERATURE": check_eps_temperature,
    "RAW_READOUT": check_raw_readout,
    "NORM_PENALTY": check_norm_penalty,
    "FINAL_ONLY": check_final_only,
    "LEMMA2_EXACT": check_lemma2_exact,
    "LEMMA2_EXPANSION": check_lemma2_expansion,
    "LEMMA2_BOUNDS": check_lemma2_bounds,
    "GD_NORM": check_gd_norm,
    "WEIGHT_DECAY": check_weight_decay,
    "RADIAL_CLAMP": check_radial_clamp,
    "TOTAL_RADIAL": check_total_radial,
    "DIRECTION_LIMIT": check_direction_limit,
    "PARAM_INVARIANCE": check_param_invariance,
    "STATE_VS_PARAM_NORM": check_state_vs_param_norm,
    "MOMENTUM_GROWTH": check_momentum_growth,
    "ADAM_COUNTEREXAMPLE": check_adam_counterexample,
}
"""Certificate name -> its float64 autograd cross-check."""

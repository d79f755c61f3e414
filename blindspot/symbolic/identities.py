# ruff: noqa: E501  (LaTeX statements and named residuals read best unbroken)
"""The statements of the theory (proofs/) as certificates (module-level objects claims name).

Each ``_derive_*`` function builds, at symbolic dimension n, the residuals that must vanish.
The proofs in ``proofs/`` state the hypotheses and argue why; the certificate is the
machine check of the algebra. Float64 autograd cross-checks live in
:mod:`blindspot.symbolic.numeric`; tests in ``tests/test_symbolic.py`` run both and compare
the lambdified closed forms against ``torch.func``.
"""

from __future__ import annotations

import sympy as sp

from blindspot.symbolic import expressions as ex
from blindspot.symbolic.certificate import Certificate, Derivation, Export

c = sp.Symbol("c", positive=True)  # rescaling factor
b = sp.Symbol("b", real=True)  # LayerNorm shift along the ones vector
eps = sp.Symbol("epsilon", positive=True)
lam = sp.Symbol("lambda", positive=True)
eta = sp.Symbol("eta", positive=True)
t = sp.Symbol("t", positive=True)  # t = 1/s: the expansion variable at large scale


def _generic_point(n: int) -> dict[sp.Symbol, sp.Rational]:
    """A fixed rational point with distinct, mixed-sign entries (no special structure)."""
    return {sp.Symbol(f"h{i + 1}", real=True): sp.Integer((-1) ** i * (2 * i + 1)) + sp.Rational(1, i + 2)
            for i in range(n)}


# -- 1. normalizers -----------------------------------------------------------------------

def _derive_rms_invariance(n: int) -> Derivation:
    h, g = ex.vector("h", n), ex.vector("gamma", n)
    N, N_eps = ex.rms_norm(h, g), ex.rms_norm(h, g, eps)
    return Derivation(
        residuals={"N(c h) - N(h)": ex.scaled(N, h, c) - N},
        exports={"rms_norm": Export((h, g, eps), N_eps)},
        # wrong: the same statement without its hypothesis eps = 0
        wrong={"N(c h) - N(h)": lambda: ex.scaled(N_eps, h, c) - N_eps},
    )


RMSNORM_INVARIANCE = Certificate(
    "RMSNORM_INVARIANCE",
    r"\varepsilon = 0,\ c > 0:\quad N(c\,h) = N(h),\quad N(h) = \gamma \odot h / \sqrt{\mathrm{ms}(h)}",
    ("h in R^n, h != 0", "eps = 0", "c > 0", "any gain gamma in R^n"),
    _derive_rms_invariance, page="proofs/normalizers.md")


def _derive_ln_invariance(n: int) -> Derivation:
    h, g, beta = ex.vector("h", n), ex.vector("gamma", n), ex.vector("beta", n)
    LN, LN_eps = ex.layer_norm(h, g, beta), ex.layer_norm(h, g, beta, eps)
    return Derivation(
        residuals={"LN(c h + b 1) - LN(h)": ex.scaled(LN, h, c, b) - LN},
        exports={"layer_norm": Export((h, g, beta, eps), LN_eps)},
        wrong={"LN(c h + b 1) - LN(h)": lambda: ex.scaled(LN_eps, h, c, b) - LN_eps},
    )


LAYERNORM_INVARIANCE = Certificate(
    "LAYERNORM_INVARIANCE",
    r"\varepsilon = 0,\ c > 0,\ b \in \mathbb{R}:\quad \mathrm{LN}(c\,h + b\,\mathbb{1}) = \mathrm{LN}(h)",
    ("h in R^n, P h != 0", "eps = 0", "c > 0", "any gain gamma, bias beta, shift b"),
    _derive_ln_invariance, page="proofs/normalizers.md")


def _rank_at(J: sp.Matrix, scale: sp.Expr, n: int, gains: dict) -> int:
    """Exact rank of J at the generic point: scale^3 J is rational there (scale > 0 does not
    change the rank), so the rank is computed over the rationals, not in floating point."""
    pt = _generic_point(n) | gains
    M = (J.subs(pt) * scale.subs(pt) ** 3).applyfunc(sp.expand)
    if not all(x.is_Rational for x in M):
        raise ArithmeticError(f"scaled Jacobian not rational at the generic point: {M}")
    return M.rank()


def _derive_jacobians(n: int) -> Derivation:
    h, g, beta = ex.vector("h", n), ex.vector("gamma", n), ex.vector("beta", n)
    ones = sp.ones(n, 1)
    r = ex.rms_scale(h, eps)
    J = ex.rms_norm(h, g, eps).jacobian(h)
    closed = sp.diag(*g) * (sp.eye(n) / r - h * h.T / (n * r**3))
    J0 = J.subs(eps, 0)
    Jl = ex.layer_norm(h, g, beta).jacobian(h)
    ph, sig = ex.center(h), ex.layer_scale(h, eps)
    P = sp.eye(n) - ones * ones.T / n
    Jl_eps = ex.layer_norm(h, g, beta, eps).jacobian(h)
    closed_ln = sp.diag(*g) * (P - ph * ph.T / (n * sig**2)) / sig
    # Rank at a generic point: r^3 J (and sigma^3 J_LN) are polynomial in h, and multiplying
    # by a positive scalar does not change the rank, so the rank is computed exactly.
    gains = {g[i]: sp.Integer(i + 2) for i in range(n)}
    r0, s0 = ex.rms_scale(h), ex.layer_scale(h)
    rank_rms = _rank_at(J0, r0, n, gains)
    rank_ln = _rank_at(Jl, s0, n, gains)
    J_eps = ex.rms_norm(h, g, eps).jacobian(h)
    return Derivation(
        residuals={
            "J_RMS - diag(gamma)[I/r - h h^T/(n r^3)]": J - closed,
            "J_RMS h (eps=0)": J0 * h,
            "c J_RMS(c h) - J_RMS(h) (eps=0: |J| ~ 1/|h|)": c * ex.scaled(J0, h, c) - J0,
            "J_LN - (gamma/sigma)[P - Ph Ph^T/(n sigma^2)]": Jl_eps - closed_ln,
            "J_LN 1 (any eps)": Jl_eps * ones,
            "J_LN h (eps=0)": Jl * h,
            "rank J_RMS - (n-1)": sp.Integer(rank_rms - (n - 1)),
            "rank J_LN - (n-2)": sp.Integer(rank_ln - (n - 2)),
        },
        exports={"rms_jacobian": Export((h, g, eps), closed),
                 "layer_norm_jacobian": Export((h, g, eps), closed_ln)},
        wrong={  # a closed form without its 1/n; eps > 0 where the statement needs eps = 0;
            # no 1/|h| scaling; LayerNorm without the centring P; ranks one off
            "J_RMS - diag(gamma)[I/r - h h^T/(n r^3)]":
                lambda: J - sp.diag(*g) * (sp.eye(n) / r - h * h.T / r**3),
            "J_RMS h (eps=0)": lambda: J_eps * h,
            "c J_RMS(c h) - J_RMS(h) (eps=0: |J| ~ 1/|h|)": lambda: ex.scaled(J0, h, c) - J0,
            "J_LN - (gamma/sigma)[P - Ph Ph^T/(n sigma^2)]":
                lambda: Jl_eps - sp.diag(*g) * (sp.eye(n) - ph * ph.T / (n * sig**2)) / sig,
            "J_LN 1 (any eps)": lambda: J_eps * ones,
            "J_LN h (eps=0)": lambda: Jl_eps * h,
            "rank J_RMS - (n-1)": lambda: sp.Integer(rank_rms - n),
            "rank J_LN - (n-2)": lambda: sp.Integer(rank_ln - (n - 1)),
        },
    )


NORM_JACOBIAN = Certificate(
    "NORM_JACOBIAN",
    r"J_N = \mathrm{diag}(\gamma)\Big[\frac{I}{r} - \frac{h h^\top}{n r^3}\Big],\ "
    r"J_N h = 0\ (\varepsilon=0),\ \mathrm{rank}\,J_N = n-1;\quad "
    r"J_{\mathrm{LN}}\mathbb{1} = 0,\ J_{\mathrm{LN}} h = 0\ (\varepsilon=0),\ "
    r"\mathrm{rank}\,J_{\mathrm{LN}} = n-2",
    ("h != 0 (P h != 0 for LayerNorm)", "gains non-zero for the rank statement",
     "rank at a generic point (fixed rational point with distinct entries)"),
    _derive_jacobians, dims=(3, 4), page="proofs/normalizers.md")


# -- 2. Euler: the blind spot -------------------------------------------------------------

def _generic_loss(n: int, N: sp.Matrix) -> sp.Expr:
    """A generic outer loss for second-order statements (Hessian): quadratic in N."""
    return ex.generic_quadratic_loss(N, ex.vector("a", n), ex.symmetric("G", n))


def _generic_linear_loss(n: int, N: sp.Matrix) -> sp.Expr:
    """A generic outer loss for first-order statements: the gradient of L = l(N(h)) depends
    on l only through the vector a = grad l(N(h)), so l(N) = <a, N> with symbolic a covers
    every differentiable l (proofs/euler.md)."""
    return ex.dot(ex.vector("a", n), N)


def _derive_euler(n: int) -> Derivation:
    h, g = ex.vector("h", n), ex.vector("gamma", n)
    L = _generic_linear_loss(n, ex.rms_norm(h, g))
    grad = ex.gradient(L, h)
    residuals = {
        "<h, grad L> (any outer loss)": ex.dot(h, grad),
        "c grad L(c h) - grad L(h)": c * ex.scaled(grad, h, c) - grad,
    }
    # wrong: eps > 0 where the statement needs eps = 0; a gradient that does not shrink
    # like 1/c; a raw readout in place of the normalized one
    wrong = {
        "<h, grad L> (any outer loss)": lambda: ex.dot(h, ex.gradient(
            _generic_linear_loss(n, ex.rms_norm(h, g, eps)), h)),
        "c grad L(c h) - grad L(h)": lambda: ex.scaled(grad, h, c) - grad,
    }
    # The concrete cross-entropy is a special case of the generic loss; it is checked at
    # n = V = 2 because its exp terms make the n = 3 simplification ~5x slower.
    V = 2
    W, h2, g2 = ex.matrix("W", V, 2), ex.vector("h", 2), ex.vector("gamma", 2)
    for y in range(V):
        ce = ex.cross_entropy(W * ex.rms_norm(h2, g2), y)
        name = f"<h, grad CE(W N(h), y={y})> (n=2)"
        residuals[name] = ex.dot(h2, ex.gradient(ce, h2))
        wrong[name] = lambda y=y: ex.dot(h2, ex.gradient(ex.cross_entropy(W * h2, y), h2))
    hl, beta = ex.vector("h", n), ex.vector("beta", n)
    Lln = _generic_linear_loss(n, ex.layer_norm(hl, g, beta))
    residuals["<h, grad L_LN> (any outer loss)"] = ex.dot(hl, ex.gradient(Lln, hl))
    wrong["<h, grad L_LN> (any outer loss)"] = lambda: ex.dot(hl, ex.gradient(
        _generic_linear_loss(n, ex.layer_norm(hl, g, beta, eps)), hl))
    return Derivation(residuals=residuals, wrong=wrong)


EULER = Certificate(
    "EULER",
    r"L(h) = \ell(N(h)),\ \varepsilon = 0:\quad \langle h, \nabla L(h)\rangle = 0,\quad "
    r"\nabla L(c\,h) = \nabla L(h)/c",
    ("eps = 0", "c > 0", "any smooth outer loss l (generic quadratic at the point); "
     "CE(W N(h), y) for symbolic W and every class y"),
    _derive_euler, dims=(2, 3), default_n=2, page="proofs/euler.md")


def _derive_hessian(n: int) -> Derivation:
    h, g = ex.vector("h", n), ex.vector("gamma", n)
    L = _generic_loss(n, ex.rms_norm(h, g))
    grad = ex.gradient(L, h)
    H = sp.hessian(L, list(h))
    return Derivation(residuals={"hess L h + grad L": H * h + grad},
                      wrong={"hess L h + grad L": lambda: H * h - grad})  # the sign slipped


HESSIAN = Certificate(
    "HESSIAN",
    r"L(h) = \ell(N(h)),\ \varepsilon = 0:\quad \nabla^2 L(h)\,h = -\nabla L(h)",
    ("eps = 0", "l twice differentiable (generic quadratic at the point)"),
    _derive_hessian, dims=(2, 3), default_n=2, page="proofs/euler.md")


def _direction_only_branch(tokens: list[sp.Matrix], g: sp.Matrix, name: str,
                           eps_: sp.Expr = 0) -> list[sp.Matrix]:
    """A generic branch that reads every token's state only through N(state) (attention,
    MLP, anything): output component i of token t is an undefined function g_{ti} of all the
    normalized inputs, so nothing about its form is assumed. ``eps_``: the norms' epsilon."""
    n = g.rows
    ins = [x for h in tokens for x in ex.rms_norm(h, g, eps_)]
    return [sp.Matrix([sp.Function(f"{name}{t}{i}")(*ins) for i in range(n)])
            for t in range(len(tokens))]


def _derive_total_radial(n: int) -> Derivation:
    # one loop on two tokens: H'_t = H_t + Delta_t(N(H_1), N(H_2)); the loss is the token's
    # own readout l(N(H_1)) (generic first-order: <a, N>) plus everything downstream, whose
    # gradient at H'_t is the total gradient b_t = grad_{H'_t} L (generic vectors)
    H = [ex.vector("h", n), ex.vector("x", n)]
    g = ex.vector("gamma", n)
    D = _direction_only_branch(H, g, "d")
    Hn = [H[t] + D[t] for t in range(2)]
    b = [ex.vector("b", n), ex.vector("e", n)]
    L = _generic_linear_loss(n, ex.rms_norm(H[0], g)) + sum(ex.dot(b[t], Hn[t]) for t in range(2))
    R = [ex.dot(H[t], ex.gradient(L, H[t])) for t in range(2)]
    R_next = [ex.dot(Hn[t], b[t]) for t in range(2)]  # R_{k+1} = <H_{k+1}, grad_{H_{k+1}} L>
    final = ex.dot(H[0], ex.gradient(_generic_linear_loss(n, ex.rms_norm(H[0], g)), H[0]))
    names = ["R_k - (R_{k+1} - <Delta_k, grad_{k+1} L>) (token 1, own readout)",
             "R_k - (R_{k+1} - <Delta_k, grad_{k+1} L>) (token 2, mixed by the branch)"]
    return Derivation(
        residuals={names[t]: R[t] - (R_next[t] - ex.dot(D[t], b[t])) for t in range(2)}
        | {"R_K = <H_K, grad l(N(H_K))> (no later loop)": final},
        wrong={  # the update's term with the wrong sign; a raw final readout
            names[0]: lambda: R[0] - (R_next[0] + ex.dot(D[0], b[0])),
            names[1]: lambda: R[1] - (R_next[1] + ex.dot(D[1], b[1])),
            "R_K = <H_K, grad l(N(H_K))> (no later loop)":
                lambda: ex.dot(H[0], ex.gradient(_generic_linear_loss(n, H[0]), H[0]))},
    )


TOTAL_RADIAL = Certificate(
    "TOTAL_RADIAL",
    r"L = \textstyle\sum_k \ell_k(N(H_k)),\ H_{k+1} = H_k + \Delta_k(N(H_k)),\ \varepsilon = 0:\quad "
    r"R_k := \langle H_k, \nabla_{H_k} L\rangle = -\sum_{j=k}^{K-1}\langle \Delta_j, \nabla_{H_{j+1}} L\rangle,\ R_K = 0",
    ("eps = 0 in every norm", "each update reads the states only through N (one pre-norm "
     "sublayer per loop, no inter-loop norm, no input injection)", "any smooth per-loop losses",
     "gradients are total (through every later loop); per token"),
    _derive_total_radial, dims=(2,), default_n=2, page="proofs/total_loss.md")


# -- 3. the exact epsilon leak ------------------------------------------------------------

def _derive_eps_leak(n: int) -> Derivation:
    h, g, beta = ex.vector("h", n), ex.vector("gamma", n), ex.vector("beta", n)
    a_, G = ex.vector("a", n), ex.symmetric("G", n)
    r = ex.rms_scale(h, eps)
    N = ex.rms_norm(h, g, eps)
    J = N.jacobian(h)
    gh = sp.Matrix([g[i] * h[i] for i in range(n)])
    L = ex.generic_quadratic_loss(N, a_, G)
    dl = a_ + G * N  # the outer gradient at N(h)
    closed_radial = eps / r**3 * ex.dot(gh, dl)
    s2 = ex.sqnorm(h)
    kappa = eps / (ex.mean_square(h) + eps)
    # J^T acts as (1/r)[(I - u u^T) + kappa u u^T] diag(gamma): tangential gain 1/r,
    # radial gain kappa/r
    split = (sp.eye(n) - h * h.T / s2 + kappa * h * h.T / s2) * sp.diag(*g) / r
    ph, sig = ex.center(h), ex.layer_scale(h, eps)
    Jl = ex.layer_norm(h, g, beta, eps).jacobian(h)
    gph = sp.Matrix([g[i] * ph[i] for i in range(n)])
    radial = ex.dot(h, ex.gradient(L, h))
    # (kappa's own properties, kappa <= eps/ms and kappa ~ eps/ms as ms grows, follow from its
    # definition and are not residuals: they would hold whatever the statement said)
    return Derivation(
        residuals={
            "J h - eps gamma*h / r^3": J * h - eps * gh / r**3,
            "J_LN h - eps gamma*Ph / sigma^3": Jl * h - eps * gph / sig**3,
            "<h, grad L> - eps/r^3 <gamma*h, grad l>": radial - closed_radial,
            "J^T - (1/r)[P_perp + kappa u u^T] diag(gamma)": J.T - split,
        },
        wrong={  # a power of r off; h in place of P h; the radial gain written as eps/ms(h)
            "J h - eps gamma*h / r^3": lambda: J * h - eps * gh / r**2,
            "J_LN h - eps gamma*Ph / sigma^3": lambda: Jl * h - eps * gh / sig**3,
            "<h, grad L> - eps/r^3 <gamma*h, grad l>":
                lambda: radial - eps / r**2 * ex.dot(gh, dl),
            "J^T - (1/r)[P_perp + kappa u u^T] diag(gamma)": lambda: J.T - (
                sp.eye(n) - h * h.T / s2 + eps / ex.mean_square(h) * h * h.T / s2)
                * sp.diag(*g) / r,
        },
        exports={
            "radial_derivative": Export((h, g, eps, a_), eps / r**3 * ex.dot(gh, a_)),
            "radial_gain": Export((h, eps), kappa),
            "J_times_h": Export((h, g, eps), eps * gh / r**3),
        },
    )


EPS_LEAK = Certificate(
    "EPS_LEAK",
    r"\varepsilon > 0:\ J h = \frac{\varepsilon\,\gamma\odot h}{r^3},\ "
    r"\langle h, \nabla L\rangle = \frac{\varepsilon}{r^3}\langle \gamma\odot h, \nabla\ell(N(h))\rangle,\ "
    r"J^\top = \tfrac1r\big[(I - uu^\top) + \kappa\,uu^\top\big]\mathrm{diag}(\gamma),\ "
    r"\kappa = \frac{\varepsilon}{\mathrm{ms}(h)+\varepsilon} \le \frac{\varepsilon}{\mathrm{ms}(h)}",
    ("eps > 0", "h != 0", "any smooth outer loss l"),
    _derive_eps_leak, dims=(2, 3), default_n=2, page="proofs/eps_leak.md")


def _derive_eps_temperature(n: int) -> Derivation:
    h, g = ex.vector("h", n), ex.vector("gamma", n)
    m = ex.mean_square(h)
    kappa = eps / (m + eps)
    N_eps, N_0 = ex.rms_norm(h, g, eps), ex.rms_norm(h, g)
    V = 2
    W = ex.matrix("W", V, n)
    z = W * N_eps  # the logits the model actually computes (with its epsilon)
    p = ex.softmax(z)
    M = sp.Symbol("m", positive=True)  # ms(h), for the export
    dz = sp.diff(ex.scaled(z, h, c), c).subs(c, 1)
    residuals = {
        "N_eps(h) - sqrt(m/(m+eps)) N_0(h)": N_eps - sp.sqrt(m / (m + eps)) * N_0,
        "d/dc z(c h)|_1 - kappa z": dz - kappa * z,
    }
    # wrong: the square root dropped; the gain written as eps/ms(h) (kappa > 0 itself is a
    # ratio of positive symbols: no sign part, it would hold by construction)
    wrong = {"N_eps(h) - sqrt(m/(m+eps)) N_0(h)": lambda: N_eps - m / (m + eps) * N_0,
             "d/dc z(c h)|_1 - kappa z": lambda: dz - eps / m * z}
    for y in range(V):
        L = ex.cross_entropy(z, y)
        name = f"<h, grad CE(W N_eps(h), {y})> - kappa (E_p[z] - z_y)"
        residuals[name] = ex.dot(h, ex.gradient(L, h)) - kappa * (ex.dot(p, z) - z[y])
        wrong[name] = lambda L=L, y=y: (ex.dot(h, ex.gradient(L, h))
                                        - eps / m * (ex.dot(p, z) - z[y]))
    return Derivation(
        residuals=residuals,
        wrong=wrong,
        exports={"temperature_force": Export((h, g, eps, W), [kappa * (ex.dot(p, z) - z[y])
                                                              for y in range(V)]),
                 "kappa": Export((M, eps), eps / (M + eps))},
    )


EPS_TEMPERATURE = Certificate(
    "EPS_TEMPERATURE",
    r"N_\varepsilon(h) = \sqrt{\tfrac{m}{m+\varepsilon}}\,N_0(h),\ m = \mathrm{ms}(h):\quad "
    r"\langle h, \nabla_h \mathrm{CE}(W N_\varepsilon(h), y)\rangle = \kappa\,(\mathbb{E}_p[z] - z_y),\ "
    r"\kappa = \frac{\varepsilon}{m + \varepsilon} > 0",
    ("RMSNorm with eps >= 0 and any gain, no bias", "z = W N_eps(h) the model's own logits",
     "p = softmax(z)", "h != 0"),
    _derive_eps_temperature, dims=(2, 3), default_n=2, page="proofs/eps_leak.md")


# -- 4. scale-visible readouts ------------------------------------------------------------

def _derive_raw_readout(n: int) -> Derivation:
    h = ex.vector("h", n)
    V = 2
    W = ex.matrix("W", V, n)
    z = W * h
    p = ex.softmax(z)
    residuals, wrong = {}, {}
    # (that <h, grad L> is d/dtau L(tau h) at tau = 1 is the chain rule, not a residual: it
    # would hold whatever the closed form said)
    for y in range(V):
        L = ex.cross_entropy(z, y)
        radial = ex.dot(h, ex.gradient(L, h))
        name = f"<h, grad CE(W h, {y})> - (E_p[z] - z_y)"
        residuals[name] = radial - (ex.dot(p, z) - z[y])
        wrong[name] = lambda radial=radial, y=y: radial - (z[y] - ex.dot(p, z))  # sign slip
    point = {W[i, j]: int(i == j) for i in range(V) for j in range(n)}
    point.update({h[i]: int(i == 0) for i in range(n)})
    witness = (ex.dot(p, z) - z[1]).subs(point)
    return Derivation(
        residuals=residuals,
        wrong=wrong,
        witnesses={"E_p[z] - z_y at W=I, h=e_1, y=2": witness},
        exports={"radial_derivative": Export((h, W), [ex.dot(p, z) - z[y] for y in range(V)])},
    )


RAW_READOUT = Certificate(
    "RAW_READOUT",
    r"L(h) = \mathrm{CE}(W h, y):\quad \langle h, \nabla L\rangle = \mathbb{E}_{p}[z] - z_y "
    r"= \tfrac{d}{d\tau}L(\tau h)\big|_{\tau=1} \neq 0\ \text{in general}",
    ("raw readout z = W h", "p = softmax(z)"),
    _derive_raw_readout, dims=(2, 3), page="proofs/readouts.md")


def _derive_norm_penalty(n: int) -> Derivation:
    h, g = ex.vector("h", n), ex.vector("gamma", n)
    s2 = ex.sqnorm(h)
    total = _generic_linear_loss(n, ex.rms_norm(h, g)) + lam * s2
    pen = ex.dot(h, ex.gradient(lam * s2, h))
    pen_ms = ex.dot(h, ex.gradient(lam * ex.mean_square(h), h))
    both = ex.dot(h, ex.gradient(total, h))
    return Derivation(
        residuals={
            "<h, grad lambda|h|^2> - 2 lambda |h|^2": pen - 2 * lam * s2,
            "<h, grad lambda ms(h)> - 2 lambda |h|^2/n": pen_ms - 2 * lam * s2 / n,
            "<h, grad(l(N(h)) + lambda|h|^2)> - 2 lambda |h|^2": both - 2 * lam * s2,
        },
        wrong={  # the factor 2 lost; the penalty summed over the width (no 1/n); and the
            # readout's part of the force when eps > 0 (no longer only the penalty's)
            "<h, grad lambda|h|^2> - 2 lambda |h|^2": lambda: pen - lam * s2,
            "<h, grad lambda ms(h)> - 2 lambda |h|^2/n": lambda: pen_ms - 2 * lam * s2,
            "<h, grad(l(N(h)) + lambda|h|^2)> - 2 lambda |h|^2": lambda: ex.dot(h, ex.gradient(
                _generic_linear_loss(n, ex.rms_norm(h, g, eps)) + lam * s2, h)) - 2 * lam * s2,
        },
        exports={"radial_derivative": Export((h, lam), 2 * lam * s2)},
    )


NORM_PENALTY = Certificate(
    "NORM_PENALTY",
    r"\langle h, \nabla(\lambda\lVert h\rVert^2)\rangle = 2\lambda\lVert h\rVert^2,\ "
    r"\langle h, \nabla(\lambda\,\mathrm{ms}(h))\rangle = 2\lambda\lVert h\rVert^2/n,\ "
    r"\text{and the whole radial force of } \ell(N(h)) + \lambda\lVert h\rVert^2",
    ("lambda > 0", "eps = 0 for the normalized readout"),
    _derive_norm_penalty, dims=(2, 3), page="proofs/readouts.md")


def _derive_final_only(n: int) -> Derivation:
    h1, h2, g = ex.vector("x", n), ex.vector("h", n), ex.vector("gamma", n)
    V = 2
    W = ex.matrix("W", V, n)
    z1 = W * h1
    L = ex.cross_entropy(z1, 0) + ex.cross_entropy(W * ex.rms_norm(h2, g), 1)
    p1 = ex.softmax(z1)
    point = {W[i, j]: int(i == j) for i in range(V) for j in range(n)}
    point.update({h1[i]: int(i == 1) for i in range(n)})
    # wrong: the switch's slips, the final readout left raw, or every loop normalized
    raw_final = ex.cross_entropy(z1, 0) + ex.cross_entropy(W * h2, 1)
    all_norm = ex.cross_entropy(W * ex.rms_norm(h1, g), 0) + ex.cross_entropy(W * ex.rms_norm(h2, g), 1)
    return Derivation(
        residuals={
            "<H_K, grad_{H_K} L> (normalized final readout)": ex.dot(h2, ex.gradient(L, h2)),
            "<H_k, grad_{H_k} L> - (E_p[z_k] - z_{k,y}) (raw intermediate readout)":
                ex.dot(h1, ex.gradient(L, h1)) - (ex.dot(p1, z1) - z1[0]),
        },
        wrong={
            "<H_K, grad_{H_K} L> (normalized final readout)":
                lambda: ex.dot(h2, ex.gradient(raw_final, h2)),
            "<H_k, grad_{H_k} L> - (E_p[z_k] - z_{k,y}) (raw intermediate readout)":
                lambda: ex.dot(h1, ex.gradient(all_norm, h1)) - (ex.dot(p1, z1) - z1[0]),
        },
        witnesses={"intermediate radial derivative at W=I, H_k=e_2": (ex.dot(p1, z1) - z1[0]).subs(point)},
    )


FINAL_ONLY = Certificate(
    "FINAL_ONLY",
    r"L = \textstyle\sum_{k<K}\mathrm{CE}(W H_k, y_k) + \mathrm{CE}(W N(H_K), y_K):\ "
    r"\langle H_K, \nabla_{H_K} L\rangle = 0,\ "
    r"\langle H_k, \nabla_{H_k} L\rangle = \mathbb{E}_{p_k}[z_k] - z_{k,y_k}\ (k<K)",
    ("each readout sees only its own state (gradient at its own readout)", "eps = 0"),
    _derive_final_only, dims=(2, 3), default_n=2, page="proofs/readouts.md")


# -- 5. residual recurrence: Lemma 2 ------------------------------------------------------

def _stable_angular_residual() -> sp.Expr:
    s, a, beta, s1, ang2 = lemma2_scalars()
    return ang2 - 2 * beta**2 / (s1 * (s1 + s + a))


def _derive_lemma2_exact(n: int) -> Derivation:
    h, D = ex.vector("h", n), ex.vector("Delta", n)
    s = sp.sqrt(ex.sqnorm(h))
    u = h / s
    a = ex.dot(u, D)
    Dperp = D - a * u
    s1 = sp.sqrt(ex.sqnorm(h + D))
    u1 = (h + D) / s1
    S, A, B, S1, ang2 = lemma2_scalars()
    return Derivation(
        residuals={
            "|h+D|^2 - (s^2 + 2 s a + |D|^2)": ex.sqnorm(h + D) - (s**2 + 2 * s * a + ex.sqnorm(D)),
            "<u, D_perp>": ex.dot(u, Dperp),
            "|D|^2 - a^2 - |D_perp|^2": ex.sqnorm(D) - a**2 - ex.sqnorm(Dperp),
            "|h+D|^2 - (s+a)^2 - |D_perp|^2": ex.sqnorm(h + D) - (s + a)**2 - ex.sqnorm(Dperp),
            "|u'-u|^2 - (2 - 2(s+a)/s')": ex.sqnorm(u1 - u) - (2 - 2 * (s + a) / s1),
            # the cancellation-free form used by numerics, in the scalars the lines above
            # reduce the vectors to (s, a, beta = |D_perp|, s' = sqrt((s+a)^2 + beta^2))
            "2 - 2(s+a)/s' - 2 beta^2/(s'(s'+s+a))": _stable_angular_residual(),
        },
        wrong={  # a factor 2 lost; the projection taken along h, not u; the tangential
            # part dropped; a in the angular step forgotten
            "|h+D|^2 - (s^2 + 2 s a + |D|^2)": lambda: ex.sqnorm(h + D) - (s**2 + s * a + ex.sqnorm(D)),
            "<u, D_perp>": lambda: ex.dot(u, D - a * h),
            "|D|^2 - a^2 - |D_perp|^2": lambda: ex.sqnorm(D) - 2 * a**2 - ex.sqnorm(Dperp),
            "|h+D|^2 - (s+a)^2 - |D_perp|^2": lambda: ex.sqnorm(h + D) - (s + a)**2,
            "|u'-u|^2 - (2 - 2(s+a)/s')": lambda: ex.sqnorm(u1 - u) - (2 - 2 * s / s1),
            "2 - 2(s+a)/s' - 2 beta^2/(s'(s'+s+a))": lambda: ang2 - B**2 / (S1 * (S1 + S + A)),
        },
        exports={"next_scale_sq": Export((h, D), s**2 + 2 * s * a + ex.sqnorm(D))},
    )


LEMMA2_EXACT = Certificate(
    "LEMMA2_EXACT",
    r"\lVert h+\Delta\rVert^2 = s^2 + 2 s a + \lVert\Delta\rVert^2 = (s+a)^2 + \lVert\Delta_\perp\rVert^2,\ "
    r"\lVert u'-u\rVert^2 = 2 - \frac{2(s+a)}{s'}",
    ("h != 0, h + Delta != 0", "s = |h|, u = h/s, a = <u, Delta>, Delta_perp = Delta - a u",
     "s + a > 0 for the cancellation-free form 2 beta^2/(s'(s'+s+a))"),
    _derive_lemma2_exact, dims=(2, 3, 4), page="proofs/lemma2.md")


def lemma2_scalars():
    """(s, a, beta) and the exact next scale / angular step as functions of them:
    $s' = \\sqrt{(s+a)^2 + \\beta^2}$, $\\lVert u'-u\\rVert^2 = 2 - 2(s+a)/s'$, with
    $\\beta = \\lVert\\Delta_\\perp\\rVert$ (LEMMA2_EXACT reduces the vectors to these)."""
    s = sp.Symbol("s", positive=True)
    a = sp.Symbol("a", real=True)
    beta = sp.Symbol("beta", positive=True)
    s1 = sp.sqrt((s + a)**2 + beta**2)
    return s, a, beta, s1, 2 - 2 * (s + a) / s1


def _derive_lemma2_expansion(n: int) -> Derivation:
    s, a, beta, s1, ang2 = lemma2_scalars()
    inc = (s1 - s).subs(s, 1 / t)
    inc_series = sp.series(inc, t, 0, 3).removeO()  # through the s^-2 term
    ang2_series = sp.series(ang2.subs(s, 1 / t), t, 0, 4).removeO()
    second = -a * beta**2 * t**2 / 2  # the s^-2 coefficient the statement names
    return Derivation(
        residuals={
            "series(s'-s, 1/s) to s^-2 - (a + beta^2/(2s) - a beta^2/(2s^2))":
                inc_series - (a + beta**2 * t / 2 + second),
            # |u'-u|^2 = beta^2 t^2 (1 - 2at + O(t^2)) gives |u'-u| = beta t - a beta t^2 + O(t^3)
            # directly, so the (slower) series of the square root adds nothing
            "series(|u'-u|^2, 1/s) to s^-3 - beta^2/s^2 (1 - 2a/s)":
                ang2_series - beta**2 * t**2 * (1 - 2 * a * t),
        },
        wrong={  # the s^-2 coefficient's sign; the s^-3 correction's sign
            "series(s'-s, 1/s) to s^-2 - (a + beta^2/(2s) - a beta^2/(2s^2))":
                lambda: inc_series - (a + beta**2 * t / 2 - second),
            "series(|u'-u|^2, 1/s) to s^-3 - beta^2/s^2 (1 - 2a/s)":
                lambda: ang2_series - beta**2 * t**2 * (1 + 2 * a * t),
        },
        exports={"increment": Export((s, a, beta), s1 - s),
                 "increment_first_order": Export((s, a, beta), a + beta**2 / (2 * s)),
                 "increment_second_order_term": Export((s, a, beta), second.subs(t, 1 / s)),
                 "angular_step": Export((s, a, beta), sp.sqrt(ang2))},
    )


LEMMA2_EXPANSION = Certificate(
    "LEMMA2_EXPANSION",
    r"s' - s = a + \frac{\lVert\Delta_\perp\rVert^2}{2s} - \frac{a\lVert\Delta_\perp\rVert^2}{2s^2} + O(s^{-3}),\quad "
    r"\lVert u'-u\rVert = \frac{\lVert\Delta_\perp\rVert}{s} + O(s^{-2})",
    ("s -> infinity with a and |Delta_perp| fixed", "s + a > 0 (true for s large)"),
    _derive_lemma2_expansion, dims=(1,), default_n=1, page="proofs/lemma2.md")


def lemma2_bound_scalars():
    """The variables in which the Lemma 2 bounds are polynomial identities: x = s + a > 0 (the
    hypothesis) and q = s' - x = beta^2/(s' + x) > 0, so that beta^2 = q(2x + q), s' = x + q
    and a = x - s. Returns (s, x, q, a, beta^2, s')."""
    s = sp.Symbol("s", positive=True)
    x = sp.Symbol("x", positive=True)
    q = sp.Symbol("q", positive=True)
    return s, x, q, x - s, q * (2 * x + q), x + q


def lemma2_bounds(s, a, beta):
    """Closed forms of the explicit Lemma 2 bounds in (s, a, beta), valid when s + a > 0:
    (lower, upper) for s' - s - a - beta^2/(2s), and (lower, upper) for |u' - u|."""
    x = s + a
    s1 = sp.sqrt(x**2 + beta**2)
    upper = -a * beta**2 / (2 * s * x)
    return {"radial_lower": upper - beta**4 / (8 * x**3), "radial_upper": upper,
            "angular_lower": beta / s1, "angular_upper": beta / x}


def _lemma2_gaps(bound: dict, s, x, q, a, beta2, s1) -> dict[str, sp.Expr]:
    """Each bound's gap (bound minus value, or value minus bound), which the statement says
    is non-negative: in (s, x, q) each factors into a product of positive symbols."""
    value = s1 - s - a - beta2 / (2 * s)  # s' - s - a - beta^2/(2s)
    ang2 = 2 * beta2 / (s1 * (s1 + x))  # LEMMA2_EXACT's cancellation-free |u'-u|^2
    return {"radial upper - value": bound["radial_upper"] - value,
            "value - radial lower": value - bound["radial_lower"],
            "upper^2 - |u'-u|^2": bound["angular_upper"]**2 - ang2,
            "|u'-u|^2 - lower^2": ang2 - bound["angular_lower"]**2}


def _derive_lemma2_bounds(n: int) -> Derivation:
    scal = lemma2_bound_scalars()
    s, x, q, a, beta2, s1 = scal
    bound = lemma2_bounds(s, a, sp.sqrt(beta2))  # the exported closed forms, in (s, x, q)
    gaps = _lemma2_gaps(bound, *scal)
    # wrong bounds: the expansion's term -a beta^2/(2 s^2) as the upper bound, the lower
    # bound's beta^4 term halved, beta/s for either angular bound
    slips = {"radial upper - value": {"radial_upper": -a * beta2 / (2 * s**2)},
             "value - radial lower": {"radial_lower": bound["radial_upper"] - beta2**2 / (16 * x**3)},
             "upper^2 - |u'-u|^2": {"angular_upper": sp.sqrt(beta2) / s},
             "|u'-u|^2 - lower^2": {"angular_lower": sp.sqrt(beta2) / s}}
    S, A, B, S1, _ = lemma2_scalars()
    Q = S1 - (S + A)  # q in the original variables
    sb, ab, bb = sp.symbols("s a beta", real=True)
    return Derivation(
        # the change of variables is exact: q = s' - (s+a) has beta^2 = q(2(s+a) + q)
        residuals={"beta^2 - q(2x+q) at q = s' - (s+a)": B**2 - Q * (2 * (S + A) + Q)},
        signs=gaps,
        wrong={"beta^2 - q(2x+q) at q = s' - (s+a)": lambda: B**2 - Q * ((S + A) + Q)}
        | {k: (lambda k=k, v=v: _lemma2_gaps(bound | v, *scal)[k]) for k, v in slips.items()},
        exports={k: Export((sb, ab, bb), v) for k, v in lemma2_bounds(sb, ab, bb).items()},
    )


LEMMA2_BOUNDS = Certificate(
    "LEMMA2_BOUNDS",
    r"s + a > 0:\ -\frac{a\beta^2}{2s(s+a)} - \frac{\beta^4}{8(s+a)^3} \le s' - s - a - \frac{\beta^2}{2s} "
    r"\le -\frac{a\beta^2}{2s(s+a)},\qquad \frac{\beta}{s'} \le \lVert u'-u\rVert \le \frac{\beta}{s+a}",
    ("s = |h| > 0, beta = |Delta_perp| > 0, s' = |h + Delta|", "s + a > 0",
     "no assumption on the size of s: the bounds hold at every scale"),
    _derive_lemma2_bounds, dims=(1,), default_n=1, page="proofs/lemma2.md")


def _derive_direction_limit(n: int) -> Derivation:
    # a loop of two pre-norm sublayers with linear branches b_i(v) = B_i v:
    # Delta(h) = B1 N(h) + B2 N(h + B1 N(h)); with H = h/t (t = 1/c):
    # Delta(h/t) = F(t) := B1 N(h) + B2 N(h + t B1 N(h)) exactly
    h, g = ex.vector("h", n), ex.vector("gamma", n)
    B1, B2 = ex.matrix("A", n, n), ex.matrix("B", n, n)
    v = ex.vector("v", n)
    b1 = B1 * ex.rms_norm(h, g)

    F = b1 + B2 * ex.rms_norm(h + t * b1, g)
    r = ex.rms_scale(h)
    J = sp.diag(*g) * (sp.eye(n) / r - h * h.T / (n * r**3))  # NORM_JACOBIAN at eps = 0
    slope = B2 * J * b1
    point = _generic_point(n) | {g[i]: 1 for i in range(n)}
    point.update({B1[i, j]: int(i == j == 0) for i in range(n) for j in range(n)})
    point.update({B2[i, j]: int(i == j) for i in range(n) for j in range(n)})
    dF = sp.diff(F, t).subs(t, 0)
    # (F(0) = Delta_inf is F's definition at t = 0, not a residual; the limit's content is
    # the reparametrization below and the smoothness of the branches, a hypothesis)
    return Derivation(
        residuals={
            # every sublayer input of the state h/t is h/t + v (v: the branches so far), and
            # its normalization is that of h + t v: so Delta(h/t) = F(t) sublayer by sublayer
            "N(h/t + v) - N(h + t v) (t > 0, any v)":
                ex.scaled(ex.rms_norm(h + v, g), h, 1 / t) - ex.rms_norm(h + t * v, g),
            "F'(0) - B2 J_N(h) B1 N(h)": dF - slope,
        },
        wrong={  # the branch offset left unscaled; the Jacobian without its radial projection
            "N(h/t + v) - N(h + t v) (t > 0, any v)":
                lambda: ex.scaled(ex.rms_norm(h + v, g), h, 1 / t) - ex.rms_norm(h + v, g),
            "F'(0) - B2 J_N(h) B1 N(h)": lambda: dF - B2 * sp.diag(*g) * b1 / r,
        },
        witnesses={"|F'(0)|^2 at a generic point (B1 = e1 e1^T, B2 = I, gamma = 1)":
                   ex.sqnorm(slope.subs(point))},
        exports={"first_order_coefficient": Export((h, g, B1, B2), slope)},
    )


DIRECTION_LIMIT = Certificate(
    "DIRECTION_LIMIT",
    r"\Delta(H) = b_1(N(H)) + b_2(N(H + b_1(N(H)))):\quad \Delta(s\,u) = \Delta_\infty(u) + "
    r"\frac{1}{s}\,J_{b_2}\,J_N(u)\,b_1(N(u)) + O(s^{-2}),\quad \Delta_\infty(u) = b_1(N(u)) + b_2(N(u))",
    ("eps = 0", "a loop of several pre-norm sublayers (two here; more by induction)",
     "branches b_i C^2 (or C^{1,1}) near N(u), for the O(s^-2) remainder; differentiable "
     "alone gives only o(1/s) (linear in the certificate)", "the 1/s coefficient is "
     "non-zero in general: Delta depends on u alone only as s -> infinity"),
    _derive_direction_limit, dims=(2, 3), default_n=2, page="proofs/lemma2.md")


# -- 6. gradient descent on a scale-invariant loss ----------------------------------------

def _derive_gd_norm(n: int) -> Derivation:
    w = ex.vector("w", n)
    L = _generic_linear_loss(n, ex.rms_norm(w, sp.ones(n, 1)))
    grad = ex.gradient(L, w)
    w1 = w - eta * grad
    return Derivation(
        residuals={
            "|w - eta grad|^2 - |w|^2 - eta^2 |grad|^2": ex.sqnorm(w1) - ex.sqnorm(w) - eta**2 * ex.sqnorm(grad),
            "|c w|^2 |grad L(c w)|^2 - |w|^2 |grad L(w)|^2 (effective lr eta/|w|^2)":
                c**2 * ex.sqnorm(ex.scaled(grad, w, c)) - ex.sqnorm(grad),
        },
        wrong={  # no growth (the step along the sphere); a gradient that ignores the scale
            "|w - eta grad|^2 - |w|^2 - eta^2 |grad|^2": lambda: ex.sqnorm(w1) - ex.sqnorm(w),
            "|c w|^2 |grad L(c w)|^2 - |w|^2 |grad L(w)|^2 (effective lr eta/|w|^2)":
                lambda: ex.sqnorm(ex.scaled(grad, w, c)) - ex.sqnorm(grad),
        },
    )


GD_NORM = Certificate(
    "GD_NORM",
    r"L(c\,w) = L(w):\quad \lVert w - \eta\nabla L(w)\rVert^2 = \lVert w\rVert^2 + \eta^2\lVert\nabla L(w)\rVert^2",
    ("plain gradient descent, step eta > 0", "L depends on w only through w/|w|"),
    _derive_gd_norm, dims=(2, 3), default_n=2, page="proofs/gd.md")


def weight_decay_equilibrium():
    """Symbols and closed forms of the weight-decay map on x = ‖w‖²:
    $x' = (1-\\eta\\lambda)^2 x + \\eta^2 G^2 / x$ with $G = \\lVert w\\rVert\\lVert\\nabla L(w)\\rVert$
    (scale-free by GD_NORM). Fixed point $x_*^2 = \\eta G^2 / (\\lambda(2 - \\eta\\lambda))$;
    angular step $\\theta_* = \\arccos(1 - \\eta\\lambda)$."""
    G = sp.Symbol("G", positive=True)
    x = sp.Symbol("x", positive=True)
    step = (1 - eta * lam)**2 * x + eta**2 * G**2 / x
    x_star = sp.sqrt(eta * G**2 / (lam * (2 - eta * lam)))
    theta_star = sp.acos(1 - eta * lam)
    return G, x, step, x_star, theta_star


def _derive_weight_decay(n: int) -> Derivation:
    w = ex.vector("w", n)
    L = _generic_linear_loss(n, ex.rms_norm(w, sp.ones(n, 1)))
    grad = ex.gradient(L, w)
    w1 = (1 - eta * lam) * w - eta * grad
    G, x, step, x_star, theta_star = weight_decay_equilibrium()
    q = sp.Symbol("q", positive=True)  # q = eta*lambda in (0, 1)
    tan_step = eta * G / ((1 - eta * lam) * x_star)  # tangent of the angle between w and w'
    x_approx = sp.sqrt(eta * G**2 / (2 * lam))
    return Derivation(
        wrong={  # decay not squared; the approximation as the fixed point; an approximation
            # off by 2; the angle of half the decay; the series' correction off by 2
            "|w'|^2 - (1-eta lam)^2|w|^2 - eta^2|grad|^2":
                lambda: ex.sqnorm(w1) - (1 - eta * lam) * ex.sqnorm(w) - eta**2 * ex.sqnorm(grad),
            "step(x*) - x*": lambda: step.subs(x, x_approx) - x_approx,
            "lim_{eta->0} x*^2 / (eta G^2/(2 lam)) - 1":
                lambda: sp.limit(x_star**2 / (eta * G**2 / lam), eta, 0) - 1,
            "tan(angle at x*)^2 - tan(acos(1 - eta lam))^2":
                lambda: tan_step**2 - sp.tan(sp.acos(1 - eta * lam / 2))**2,
            "series(acos(1-q)) - sqrt(2q)(1 + q/12)":
                lambda: sp.series(sp.acos(1 - q), q, 0, 2).removeO().expand()
                - sp.expand(sp.sqrt(2 * q) * (1 + q / 6)),
        },
        residuals={
            "|w'|^2 - (1-eta lam)^2|w|^2 - eta^2|grad|^2":
                ex.sqnorm(w1) - (1 - eta * lam)**2 * ex.sqnorm(w) - eta**2 * ex.sqnorm(grad),
            "step(x*) - x*": step.subs(x, x_star) - x_star,
            "lim_{eta->0} x*^2 / (eta G^2/(2 lam)) - 1":
                sp.limit(x_star**2 / (eta * G**2 / (2 * lam)), eta, 0) - 1,
            "tan(angle at x*)^2 - tan(acos(1 - eta lam))^2":
                tan_step**2 - sp.tan(theta_star)**2,
            "series(acos(1-q)) - sqrt(2q)(1 + q/12)":
                sp.series(sp.acos(1 - q), q, 0, 2).removeO().expand()
                - sp.expand(sp.sqrt(2 * q) * (1 + q / 12)),
        },
        exports={"x_star": Export((eta, lam, G), x_star),
                 "theta_star": Export((eta, lam), theta_star)},
    )


WEIGHT_DECAY = Certificate(
    "WEIGHT_DECAY",
    r"w' = (1-\eta\lambda)w - \eta\nabla L:\ \lVert w_*\rVert^4 = \frac{\eta G^2}{\lambda(2-\eta\lambda)} "
    r"\approx \frac{\eta G^2}{2\lambda},\ \theta_* = \arccos(1-\eta\lambda) \approx \sqrt{2\eta\lambda}",
    ("L scale invariant", "G = |w| |grad L(w)| constant along the trajectory (fixed direction class)",
     "0 < eta lambda < 1"),
    _derive_weight_decay, dims=(2, 3), default_n=2, page="proofs/gd.md")


# -- 7. parameters and optimizers: when does training grow the scale? --------------------

def _derive_param_invariance(n: int) -> Derivation:
    # two tokens, a stack of pre-norm sublayers whose branches read only N(state) (generic
    # undefined functions: attention, MLP, anything) and write through an output matrix O
    E = ex.matrix("E", n, 2)  # token embedding (n, V = 2)
    X = [ex.vector("h", n), ex.vector("x", n)]  # the states a sublayer receives
    g, gf, gp = ex.vector("gamma", n), ex.vector("phi", n), ex.vector("psi", n)
    O = ex.matrix("O", n, n)
    U = ex.matrix("U", 2, n)  # an untied readout

    def prenorm(X, O, eps_=0):
        B = _direction_only_branch(X, g, "f", eps_)
        return [X[t] + O * B[t] for t in range(2)]

    def sandwich(X, gp, O):  # the branch output is normalized again, with its own gain psi
        B = _direction_only_branch(X, g, "f")
        return [X[t] + ex.rms_norm(O * B[t], gp) for t in range(2)]

    # (the embedding H_0 = E[tok] + p is linear in (E, p): H_0(cP) = c H_0(P) by
    # construction, not a residual)
    Xc = [c * x for x in X]
    residuals, wrong = {}, {}
    for t in range(2):
        name = f"pre-norm sublayer S(cX; cO) - c S(X; O) (token {t + 1})"
        residuals[name] = prenorm(Xc, c * O)[t] - c * prenorm(X, O)[t]
        # wrong: eps > 0 in the branch's norm
        wrong[name] = lambda t=t: prenorm(Xc, c * O, eps)[t] - c * prenorm(X, O, eps)[t]
        name = f"sandwich sublayer S(cX; c psi) - c S(X; psi) (token {t + 1})"
        residuals[name] = sandwich(Xc, c * gp, O)[t] - c * sandwich(X, gp, O)[t]
        # wrong: the sandwich's P with the output projection in place of the post-norm gain
        wrong[name] = lambda t=t: sandwich(Xc, gp, c * O)[t] - c * sandwich(X, gp, O)[t]
    h = X[0]
    residuals["untied readout U N_f(c H) - U N_f(H)"] = \
        U * ex.rms_norm(c * h, gf) - U * ex.rms_norm(h, gf)
    wrong["untied readout U N_f(c H) - U N_f(H)"] = \
        lambda: U * ex.rms_norm(c * h, gf, eps) - U * ex.rms_norm(h, gf, eps)
    residuals["tied readout (cE)^T N_f(c H) - c E^T N_f(H)"] = \
        (c * E).T * ex.rms_norm(c * h, gf) - c * E.T * ex.rms_norm(h, gf)
    wrong["tied readout (cE)^T N_f(c H) - c E^T N_f(H)"] = \
        lambda: (c * E).T * ex.rms_norm(c * h, gf) - E.T * ex.rms_norm(h, gf)
    # The composite: by the lines above every state is homogeneous of degree 1 in P and the
    # tied logits z_{k,t} = E^T N_f(H_{k,t}) of degree 1, z_{k,t}(cP) = c z_{k,t}(P); the loss
    # is the mean over K loops and T tokens of CE(z_{k,t}, y_t), so <P, grad_P L> =
    # d/dc L(cP) at c = 1 (the chain rule along P) is the mean of the temperature forces,
    # with its 1/K. K = T = V = 2, targets (2, 1).
    K, T, y = 2, 2, (1, 0)
    Z = [[ex.vector(f"z{k + 1}{t + 1}_", 2) for t in range(T)] for k in range(K)]
    L_c = sum(ex.cross_entropy(c * Z[k][t], y[t]) for k in range(K) for t in range(T)) / (K * T)
    force = sum(ex.dot(ex.softmax(Z[k][t]), Z[k][t]) - Z[k][t][y[t]]
                for k in range(K) for t in range(T)) / T  # sum over loops, mean over tokens
    d_c = sp.diff(L_c, c).subs(c, 1)
    name = "d/dc L(cP)|_1 - (1/K) sum_k mean_t (E_p[z_kt] - z_kt,y) (tied, K = 2 loops)"
    residuals[name] = d_c - force / K
    wrong[name] = lambda: d_c - force  # the 1/K dropped
    return Derivation(residuals=residuals, wrong=wrong)


PARAM_INVARIANCE = Certificate(
    "PARAM_INVARIANCE",
    r"\text{untied},\ \varepsilon = 0,\ \text{pre-norm, bias-free}:\ \langle P, \nabla_P L\rangle = 0;\quad "
    r"\text{tied } (W = E):\ \langle P, \nabla_P L\rangle = \frac{1}{K}\textstyle\sum_{k=1}^{K} \mathrm{mean}\big(\mathbb{E}_{p_k}[z_k] - z_{k,y}\big)",
    ("P = every parameter that writes the residual stream: token and position embeddings, "
     "the output projection of every pre-norm sublayer (for the sandwich block: the post-norm "
     "gains instead)", "eps = 0 in every norm", "bias-free projections (or their biases in P)",
     "no inter-loop norm", "L = per-loop CE through normalized readouts, the mean over the K "
     "loops and over tokens (any K)"),
    _derive_param_invariance, dims=(2,), default_n=2, page="proofs/parameters.md")


def _derive_state_vs_param_norm(n: int) -> Derivation:
    # one pre-norm loop H_1 = e + O N(e) (unit gains): P = (e, O); two parameter values with
    # |P'| > |P| but |H_1(P')| < |H_1(P)|. H_1(cP) = c H_1(P), so |H_1| = |P| phi(P/|P|).
    e, O = ex.vector("e", n), ex.matrix("O", n, n)
    H1 = e + O * ex.rms_norm(e, sp.ones(n, 1))
    H1_eps = e + O * ex.rms_norm(e, sp.ones(n, 1), eps)

    def sq(e_val, O_val):
        sub = {e[i]: e_val[i] for i in range(n)}
        sub.update({O[i, j]: O_val[i, j] for i in range(n) for j in range(n)})
        return ex.sqnorm(H1.subs(sub)), sum(x**2 for x in e_val) + sum(x**2 for x in O_val)

    ones = sp.ones(n, 1)  # ms = 1, so N(e) = e: every number below is rational
    h_before, p_before = sq(ones, sp.zeros(n, n))
    h_after, p_after = sq(ones, -sp.eye(n) / 2)  # a direction change that shrinks H_1
    h_grow, _ = sq(ones, sp.eye(n) / 2)  # wrong example: this change grows H_1
    _, p_half = sq(ones / 2, sp.zeros(n, n))  # wrong example: P shrunk, not grown
    return Derivation(
        residuals={"H_1(cP) - c H_1(P)": ex.scaled(ex.scaled(H1, e, c), sp.Matrix(list(O)), c)
                   - c * H1},
        wrong={"H_1(cP) - c H_1(P)": lambda: ex.scaled(ex.scaled(H1_eps, e, c),
                                                       sp.Matrix(list(O)), c) - c * H1_eps,
               "|P'|^2 - |P|^2 (the parameter norm grew)": lambda: p_half - p_before,
               "|H_1(P)|^2 - |H_1(P')|^2 (the state norm shrank)": lambda: h_before - h_grow},
        witnesses={"|P'|^2 - |P|^2": p_after - p_before, "|H_1(P)|^2 - |H_1(P')|^2":
                   h_before - h_after},
        signs={"|P'|^2 - |P|^2 (the parameter norm grew)": p_after - p_before,
               "|H_1(P)|^2 - |H_1(P')|^2 (the state norm shrank)": h_before - h_after},
    )


STATE_VS_PARAM_NORM = Certificate(
    "STATE_VS_PARAM_NORM",
    r"\lVert H_K(P)\rVert = \lVert P\rVert\,\varphi\big(P/\lVert P\rVert\big):\ "
    r"\lVert P'\rVert > \lVert P\rVert \not\Rightarrow \lVert H_K(P')\rVert > \lVert H_K(P)\rVert",
    ("the hypotheses of PARAM_INVARIANCE (H_K is homogeneous of degree 1 in P)",
     "the direction P/|P| changes between the two parameter values"),
    _derive_state_vs_param_norm, dims=(2,), default_n=2, page="proofs/parameters.md")


mu = sp.Symbol("mu", positive=True)  # momentum coefficient (torch.optim.SGD's momentum)


def _derive_momentum_growth(n: int) -> Derivation:
    # torch.optim.SGD, dampening 0, no weight decay: v_{t+1} = mu v_t + g_t; heavy ball
    # w_{t+1} = w_t - eta v_{t+1}; Nesterov w_{t+1} = w_t - eta (g_t + mu v_{t+1}); v_0 = 0.
    # Symbols: w = w_{t-1}, v = v_{t-1}, and free gradients g_{t-1}, g_t. Each residual is a
    # polynomial identity in which the hypothesis enters as an explicit term <w_t, g_t>
    # (zero on a scale-invariant loss), so the algebra is checked without assuming it.
    w, v, g0, g1 = (ex.vector(s, n) for s in ("w", "v", "q", "r"))
    residuals, wrong = {}, {}
    for nesterov in (False, True):
        tag = "Nesterov" if nesterov else "heavy ball"
        v1 = mu * v + g0  # v_t
        d0 = g0 + mu * v1 if nesterov else v1
        w1 = w - eta * d0  # w_t
        v2 = mu * v1 + g1  # v_{t+1}
        d1 = g1 + mu * v2 if nesterov else v2
        w2 = w1 - eta * d1
        D_prev, D = ex.dot(w, v1), ex.dot(w1, v2)  # D_{t-1}, D_t
        ortho = ex.dot(w1, g1)  # <w_t, g_t> = 0 by the hypothesis
        lead = mu if nesterov else 1  # <w_t, d_t> = lead D_t + <w_t, g_t> (Nesterov)
        name = (f"{tag}: |w_(t+1)|^2 - |w_t|^2 + 2 eta {'mu ' if nesterov else ''}D_t "
                f"- eta^2 |d_t|^2{' + 2 eta <w_t, g_t>' if nesterov else ''}")
        grow = ex.sqnorm(w2) - ex.sqnorm(w1) - eta**2 * ex.sqnorm(d1) \
            + (2 * eta * ortho if nesterov else 0)
        residuals[name] = grow + 2 * eta * lead * D
        # wrong: the momentum term's sign (it would shrink |w| when D_t < 0)
        wrong[name] = lambda grow=grow, lead=lead, D=D: grow - 2 * eta * lead * D
        if nesterov:
            F_prev = D_prev + eta * mu / 2 * ex.sqnorm(v)
            F = D + eta * mu / 2 * ex.sqnorm(v1)
            name = ("Nesterov: F_t - mu F_(t-1) + eta mu (1+mu)/2 |v_t|^2 + eta mu^2/2 "
                    "|v_t - v_(t-1)|^2 - <w_t, g_t>, F_t = D_t + eta mu/2 |v_t|^2")
            rest = F - mu * F_prev + eta * mu**2 / 2 * ex.sqnorm(v1 - v) - ortho
            residuals[name] = rest + eta * mu * (1 + mu) / 2 * ex.sqnorm(v1)
            wrong[name] = lambda rest=rest, v1=v1: rest + eta * mu * (1 - mu) / 2 * ex.sqnorm(v1)
        else:
            name = "heavy ball: D_t - mu (D_(t-1) - eta |v_t|^2) - <w_t, g_t>"
            residuals[name] = D - mu * (D_prev - eta * ex.sqnorm(v1)) - ortho
            wrong[name] = lambda D=D, D_prev=D_prev, v1=v1, ortho=ortho: \
                D - mu * (D_prev + eta * ex.sqnorm(v1)) - ortho
    # The signs that turn these identities into growth (eta, mu >= 0 and the squares) are
    # products of non-negative symbols: the proof states them, no sign part checks them
    return Derivation(residuals=residuals, wrong=wrong)


MOMENTUM_GROWTH = Certificate(
    "MOMENTUM_GROWTH",
    r"L(cw) = L(w),\ v_0 = 0,\ \text{no decay}:\ \lVert w_{t+1}\rVert \ge \lVert w_t\rVert\ "
    r"\text{for GD, heavy ball, Nesterov};\ D_t = \langle w_t, v_{t+1}\rangle = "
    r"\mu\big(D_{t-1} - \eta\lVert v_t\rVert^2\big) \le 0\ \text{(heavy ball)}",
    ("torch.optim.SGD conventions: v_{t+1} = mu v_t + g_t (dampening 0), w_{t+1} = w_t - eta "
     "v_{t+1} (heavy ball) or w_t - eta (g_t + mu v_{t+1}) (Nesterov)", "v_0 = 0",
     "no weight decay", "<w_t, g_t> = 0 at every step (exactly scale-invariant loss)",
     "eta > 0, mu >= 0 (mu = 0: plain GD)"),
    _derive_momentum_growth, dims=(2,), default_n=2, page="proofs/gd.md")


def adam_example():
    """The counterexample's data: w = (2, 1), L(w) = <(1, -2), w/|w|>, so <w, grad L> = 0."""
    return sp.Matrix([2, 1]), sp.Matrix([1, -2])


def _derive_adam_counterexample(n: int) -> Derivation:
    w, cvec = adam_example()
    x = ex.vector("w", 2)
    L = ex.dot(cvec, x) / sp.sqrt(ex.sqnorm(x))
    grad = ex.gradient(L, x).subs({x[i]: w[i] for i in range(2)})
    b1, b2 = sp.symbols("beta1 beta2", positive=True)  # Adam's betas (any)
    m = (1 - b1) * grad
    v = (1 - b2) * grad.applyfunc(lambda e: e**2)
    m_hat, v_hat = m / (1 - b1), v / (1 - b2)  # bias correction at step 1
    step = sp.Matrix([m_hat[i] / sp.sqrt(v_hat[i]) for i in range(2)])  # eps = 0
    k = sp.Symbol("k", positive=True)  # lr = 1/(1+k): every lr in (0, 1)
    lr = 1 / (1 + k)
    w1 = w - lr * step
    w_tenth = w - step / 10
    # wrong: a loss that is not scale invariant (plus |x|^2/2); the step's signs flipped;
    # the shrinkage's sign; no change at lr = 1/10; and lr = 1 + k outside (0, 1)
    L_not = L + ex.sqnorm(x) / 2
    grad_not = ex.gradient(L_not, x).subs({x[i]: w[i] for i in range(2)})
    shrink = "|w|^2 - |w'|^2 (one Adam step of every lr in (0, 1) shrinks |w|)"
    return Derivation(
        residuals={"<w, grad L(w)> (L scale invariant)": ex.dot(w, grad),
                   "Adam's first step / lr - sign(grad L) = (1, -1)": step - sp.Matrix([1, -1]),
                   "|w - lr (1,-1)|^2 - (5 - 2 lr (1 - lr))": ex.sqnorm(w1) - (5 - 2 * lr * (1 - lr)),
                   "|w'|^2 - 241/50 at lr = 1/10 (5 -> 4.82)": ex.sqnorm(w_tenth) - sp.Rational(241, 50)},
        witnesses={"|w|^2 - |w'|^2 at lr = 1/10": ex.sqnorm(w) - ex.sqnorm(w_tenth)},
        # the shrinkage itself, from the step as computed (sympy factors it as 2k/(1+k)^2)
        signs={shrink: ex.sqnorm(w) - ex.sqnorm(w1)},
        wrong={"<w, grad L(w)> (L scale invariant)": lambda: ex.dot(w, grad_not),
               "Adam's first step / lr - sign(grad L) = (1, -1)": lambda: step - sp.Matrix([-1, 1]),
               "|w - lr (1,-1)|^2 - (5 - 2 lr (1 - lr))":
                   lambda: ex.sqnorm(w1) - (5 + 2 * lr * (1 - lr)),
               "|w'|^2 - 241/50 at lr = 1/10 (5 -> 4.82)": lambda: ex.sqnorm(w_tenth) - 5,
               shrink: lambda: ex.sqnorm(w) - ex.sqnorm(w - (1 + k) * step)},
    )


ADAM_COUNTEREXAMPLE = Certificate(
    "ADAM_COUNTEREXAMPLE",
    r"w = (2, 1),\ L(w) = \langle (1, -2), w/\lVert w\rVert\rangle:\ \text{one Adam step of lr } \eta \in (0, 1)\ "
    r"\text{gives } \lVert w'\rVert^2 = 5 - 2\eta(1 - \eta) < 5\quad (\eta = 0.1:\ 5 \to 4.82)",
    ("Adam with bias correction, any betas, eps = 0 (torch's eps = 1e-8 moves 4.82 by ~1e-8)",
     "the first step from m_0 = v_0 = 0", "L exactly scale invariant"),
    _derive_adam_counterexample, dims=(2,), default_n=2, page="proofs/gd.md")


# -- 8. radial clamp ----------------------------------------------------------------------

def _derive_radial_clamp(n: int) -> Derivation:
    h, g = ex.vector("h", n), ex.vector("gamma", n)
    B = ex.matrix("B", n, n)  # a generic (linearized) block: Delta = B N(h)
    D = B * ex.rms_norm(h, g)
    s, a, beta, s1, ang2 = lemma2_scalars()
    ang2_c = ang2.subs(s, c * s)
    theta_full = sp.atan(beta / (s + a))  # angle of u' from u with the full update
    theta_clamp = sp.atan(beta / s)  # ... with the radial part removed (H + Delta_perp)
    diff = (theta_clamp - theta_full).subs(s, 1 / t)
    N_eps = ex.rms_norm(h, g, eps)
    D_eps = B * N_eps
    return Derivation(
        wrong={  # eps > 0 (twice); the limit's scale written s + a; the series' factor 2
            "N(c H) - N(H)": lambda: ex.scaled(N_eps, h, c) - N_eps,
            "Delta(c H) - Delta(H)": lambda: ex.scaled(D_eps, h, c) - D_eps,
            "lim_{c->oo} c^2 |u'-u|^2 (state c H) - beta^2/s^2":
                lambda: sp.limit(c**2 * ang2_c, c, sp.oo) - beta**2 / (s + a)**2,
            "series(theta_clamp - theta_full, 1/s) - a beta/s^2":
                lambda: sp.series(diff, t, 0, 3).removeO() - a * beta * t**2 / 2,
        },
        residuals={
            "N(c H) - N(H)": ex.scaled(ex.rms_norm(h, g), h, c) - ex.rms_norm(h, g),
            "Delta(c H) - Delta(H)": ex.scaled(D, h, c) - D,
            "lim_{c->oo} c^2 |u'-u|^2 (state c H) - beta^2/s^2":
                sp.limit(c**2 * ang2_c, c, sp.oo) - beta**2 / s**2,
            "series(theta_clamp - theta_full, 1/s) - a beta/s^2":
                sp.series(diff, t, 0, 3).removeO() - a * beta * t**2,
        },
        exports={"clamp_direction_change": Export((s, a, beta), theta_clamp - theta_full)},
    )


RADIAL_CLAMP = Certificate(
    "RADIAL_CLAMP",
    r"N(c H_k) = N(H_k),\ \Delta_k(cH_k) = \Delta_k(H_k),\ \lVert u'-u\rVert \sim \frac{\lVert\Delta_\perp\rVert}{c\,s_k},\ "
    r"\angle(u'_{\mathrm{clamp}}, u'_{\mathrm{full}}) = \frac{a\lVert\Delta_\perp\rVert}{s^2} + O(s^{-3})",
    ("eps = 0", "c > 0", "Delta = B(N(H)) depends only on the direction (one pre-norm "
     "sublayer; a stack only as s -> infinity)", "s + a > 0 (the full update's angle is "
     "arctan(beta/(s+a)))", "one loop: what a clamp costs over many loops is measured, not "
     "implied"),
    _derive_radial_clamp, dims=(2, 3), default_n=2, page="proofs/radial_clamp.md")


ALL = (RMSNORM_INVARIANCE, LAYERNORM_INVARIANCE, NORM_JACOBIAN, EULER, HESSIAN, TOTAL_RADIAL,
       EPS_LEAK, EPS_TEMPERATURE, RAW_READOUT, NORM_PENALTY, FINAL_ONLY, LEMMA2_EXACT,
       LEMMA2_EXPANSION, LEMMA2_BOUNDS, DIRECTION_LIMIT, GD_NORM, WEIGHT_DECAY, MOMENTUM_GROWTH,
       ADAM_COUNTEREXAMPLE, PARAM_INVARIANCE, STATE_VS_PARAM_NORM, RADIAL_CLAMP)

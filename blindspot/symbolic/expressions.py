# ruff: noqa: E501  (LaTeX statements and named residuals read best unbroken)
"""Sympy building blocks: vectors of symbols, normalizers, readouts and losses.

Every function here is pure and returns sympy objects; :mod:`blindspot.symbolic.identities`
assembles them into certificates. Formulas (proofs/normalizers.md, proofs/readouts.md):

- RMSNorm  $N(h) = \\gamma \\odot h / r$, $r = \\sqrt{\\mathrm{ms}(h) + \\varepsilon}$,
  $\\mathrm{ms}(h) = \\lVert h \\rVert^2 / n$.
- LayerNorm $\\mathrm{LN}(h) = \\gamma \\odot P h / \\sigma + \\beta$, $P = I - \\mathbb{1}\\mathbb{1}^\\top/n$,
  $\\sigma = \\sqrt{\\lVert P h \\rVert^2 / n + \\varepsilon}$.
- Cross-entropy $\\mathrm{CE}(z, y) = \\log \\sum_j e^{z_j} - z_y$.

Symbols for state entries are real (any sign); gains, ε, scales and step sizes are positive,
which is what lets ``sqrt(c**2 * x)`` become ``c * sqrt(x)`` and the residuals cancel.
"""

from __future__ import annotations

import sympy as sp


def vector(name: str, n: int, **assumptions) -> sp.Matrix:
    """An (n, 1) column of fresh symbols ``name1..name<n>`` (real unless told otherwise)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"vector {name!r}: dimension must be a positive int, got {n!r}")
    kw = {"real": True} | assumptions
    return sp.Matrix(sp.symbols(f"{name}1:{n + 1}", **kw))


def matrix(name: str, rows: int, cols: int) -> sp.Matrix:
    """A (rows, cols) matrix of real symbols ``name_{ij}`` (e.g. a readout matrix W)."""
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}{i + 1}{j + 1}", real=True))


def symmetric(name: str, n: int) -> sp.Matrix:
    """A symmetric (n, n) matrix of real symbols (a generic Hessian of an outer loss)."""
    return sp.Matrix(n, n, lambda i, j: sp.Symbol(f"{name}{min(i, j) + 1}{max(i, j) + 1}",
                                                   real=True))


def dot(a: sp.Matrix, b: sp.Matrix) -> sp.Expr:
    return (a.T * b)[0, 0]


def sqnorm(h: sp.Matrix) -> sp.Expr:
    """$\\lVert h\\rVert^2$."""
    return dot(h, h)


def mean_square(h: sp.Matrix) -> sp.Expr:
    """$\\mathrm{ms}(h) = \\lVert h\\rVert^2 / n$."""
    return sqnorm(h) / h.rows


def rms_scale(h: sp.Matrix, eps: sp.Expr = 0) -> sp.Expr:
    """$r = \\sqrt{\\mathrm{ms}(h) + \\varepsilon}$."""
    return sp.sqrt(mean_square(h) + eps)


def rms_norm(h: sp.Matrix, gain: sp.Matrix, eps: sp.Expr = 0) -> sp.Matrix:
    """$N(h) = \\gamma \\odot h / r$."""
    r = rms_scale(h, eps)
    return sp.Matrix([gain[i] * h[i] / r for i in range(h.rows)])


def center(h: sp.Matrix) -> sp.Matrix:
    """$P h = h - \\mathrm{mean}(h)\\,\\mathbb{1}$."""
    mu = sum(h) / h.rows
    return h - sp.ones(h.rows, 1) * mu


def layer_scale(h: sp.Matrix, eps: sp.Expr = 0) -> sp.Expr:
    """$\\sigma = \\sqrt{\\lVert P h\\rVert^2 / n + \\varepsilon}$."""
    return sp.sqrt(mean_square(center(h)) + eps)


def layer_norm(h: sp.Matrix, gain: sp.Matrix, bias: sp.Matrix | None = None,
               eps: sp.Expr = 0) -> sp.Matrix:
    """$\\mathrm{LN}(h) = \\gamma \\odot P h / \\sigma + \\beta$."""
    p, s = center(h), layer_scale(h, eps)
    out = sp.Matrix([gain[i] * p[i] / s for i in range(h.rows)])
    return out if bias is None else out + bias


def scaled(expr, h: sp.Matrix, c: sp.Expr, shift: sp.Expr = 0):
    """``expr`` with every entry of h replaced by $c\\,h_i + \\text{shift}$ (simultaneously)."""
    return expr.subs({h[i]: c * h[i] + shift for i in range(h.rows)}, simultaneous=True)


def gradient(L: sp.Expr, h: sp.Matrix) -> sp.Matrix:
    """$\\nabla_h L$ as an (n, 1) column."""
    return sp.Matrix([sp.diff(L, x) for x in h])


def cross_entropy(z: sp.Matrix, y: int) -> sp.Expr:
    """$\\mathrm{CE}(z, y) = \\log\\sum_j e^{z_j} - z_y$."""
    if not 0 <= y < z.rows:
        raise ValueError(f"target y={y} outside the {z.rows} classes; use 0 <= y < {z.rows}")
    return sp.log(sum(sp.exp(zj) for zj in z)) - z[y]


def softmax(z: sp.Matrix) -> sp.Matrix:
    """$p_j = e^{z_j} / \\sum_k e^{z_k}$."""
    total = sum(sp.exp(zj) for zj in z)
    return sp.Matrix([sp.exp(zj) / total for zj in z])


def generic_quadratic_loss(y: sp.Matrix, lin: sp.Matrix, quad: sp.Matrix) -> sp.Expr:
    """$\\ell(y) = a^\\top y + \\tfrac12 y^\\top G y$ with symbolic a, symmetric G.

    Why this stands for *every* smooth outer loss: first and second derivatives of
    $L = \\ell \\circ N$ at a point depend on $\\ell$ only through $\\nabla \\ell$ and
    $\\nabla^2 \\ell$ at $N(h)$, and a generic quadratic realizes any such pair; so an identity
    between $\\nabla L$, $\\nabla^2 L$ and $h$ that holds for all (a, G) holds for all $\\ell$
    (proofs/euler.md).
    """
    return dot(lin, y) + (y.T * quad * y)[0, 0] / 2

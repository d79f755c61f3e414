"""``Certificate``: one statement of the theory (proofs/) as sympy residuals that must vanish.

A certificate builds, at a small symbolic dimension n, a :class:`Derivation`:

- ``residuals``: expressions (or matrices) that are identically zero iff the statement holds
  (e.g. $N(c h) - N(h)$, or $\\langle h, \\nabla L\\rangle - \\text{closed form}$);
- ``witnesses``: expressions that must *not* vanish (e.g. the raw readout's radial
  derivative at a concrete point), so "non-zero in general" is checked, not asserted;
- ``signs``: expressions that sympy must prove non-negative from the symbols' assumptions
  alone: the gap between a bound and the quantity it bounds, computed from both (sympy
  factors it into a product of positive symbols), never a product written down by hand,
  which would be non-negative whatever the statement said;
- ``exports``: named closed forms with their argument symbols, exported with
  :meth:`Certificate.lambdify` (numpy) and :meth:`Certificate.latex`, so numerics and the
  book use the same objects as the proof;
- ``wrong``: for every residual and every sign part, by its name, a thunk that builds the
  same part from a *wrong statement*: a factor, sign, power or term of the closed form
  changed, or a hypothesis dropped (ε > 0, a raw readout). :meth:`Certificate.falsify`
  evaluates each and reports whether the wrong statement is refuted, so a part that would
  hold whatever the statement said (zero by construction: both sides the same expression,
  or a product of symbols declared positive) is caught by ``tests/test_symbolic.py``,
  which requires every part to have a refuted wrong statement.

:meth:`Certificate.check` simplifies every residual (``cancel(expand(.))`` first, the full
``simplify`` only if that does not reach 0) and reports what it found. Results are cached per
(certificate, n) within a process: the derivation is deterministic, so the cache only saves
repeating the same exact computation. Demonstrated in ``tests/test_symbolic.py``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sympy as sp
from sympy.core.function import AppliedUndef


@dataclass(frozen=True)
class Export:
    args: tuple[sp.Symbol | sp.Matrix, ...]  # lambdify argument order
    expr: sp.Expr | sp.Matrix


@dataclass(frozen=True)
class Derivation:
    residuals: dict[str, sp.Expr | sp.Matrix]
    witnesses: dict[str, sp.Expr] = field(default_factory=dict)
    exports: dict[str, Export] = field(default_factory=dict)
    signs: dict[str, sp.Expr] = field(default_factory=dict)  # must be proved >= 0
    # residual or sign name -> the same part built from a wrong statement (must be refuted)
    wrong: dict[str, Callable[[], sp.Expr | sp.Matrix]] = field(default_factory=dict)


@dataclass(frozen=True)
class Part:
    name: str
    residual: sp.Expr | sp.Matrix  # as derived
    simplified: sp.Expr | sp.Matrix  # after simplification
    zero: bool  # residual: simplified to 0; witness: proved NON-zero; sign: proved >= 0
    kind: str  # "residual" | "witness" | "sign"

    def describe(self) -> str:
        if self.kind == "sign":
            return f"{self.name} >= 0" if self.zero else \
                f"{self.name}: sign not proved ({sp.sstr(self.simplified)[:200]})"
        if self.kind == "witness":
            return f"{self.name} = {sp.sstr(self.simplified)} != 0" if self.zero else \
                f"{self.name}: witness vanished ({sp.sstr(self.simplified)})"
        return f"{self.name} -> 0" if self.zero else \
            f"{self.name} -> {sp.sstr(self.simplified)[:200]} (NOT zero)"


@dataclass(frozen=True)
class CheckResult:
    name: str
    n: int
    parts: tuple[Part, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(p.zero for p in self.parts)

    def summary(self) -> str:
        ok = sum(p.zero for p in self.parts)
        return (f"{self.name} (n={self.n}): {ok}/{len(self.parts)} parts hold "
                f"[{'; '.join(p.describe() for p in self.parts)}] in {self.seconds:.2f} s")


def vanish(expr: sp.Expr | sp.Matrix) -> sp.Expr | sp.Matrix:
    """Simplify towards zero: rational cancellation first (fast and enough for every
    certificate here), ``sp.simplify`` only for what it leaves."""
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(vanish)
    e = sp.cancel(sp.expand(sp.sympify(expr)))
    if e != 0:
        e = sp.simplify(e)
    return e


def _is_zero(e: sp.Expr | sp.Matrix) -> bool:
    if isinstance(e, sp.MatrixBase):
        return all(x == 0 for x in e)
    return e == 0


@dataclass(frozen=True)
class Certificate:
    """A statement, its hypotheses, and the derivation that proves it at dimension n."""

    name: str
    statement_latex: str
    hypotheses: tuple[str, ...]
    derive: Callable[[int], Derivation]
    dims: tuple[int, ...] = (2, 3, 4)  # dimensions at which the derivation is valid and tested
    default_n: int = 3  # dimension the claims registry checks (kept small for the quick tier)
    page: str = ""  # proofs page that states and proves it

    def derivation(self, n: int | None = None) -> Derivation:
        n = self.default_n if n is None else n
        if n not in self.dims:
            raise ValueError(f"{self.name}: dimension n={n} not supported; use one of {self.dims}")
        return _derive_cached(self, n)

    def check(self, n: int | None = None) -> CheckResult:
        n = self.default_n if n is None else n
        key = (self.name, n)
        if key not in _CHECKS:
            t0 = time.perf_counter()
            d = self.derivation(n)
            parts = []
            for k, r in d.residuals.items():
                s = vanish(r)
                parts.append(Part(k, r, s, _is_zero(s), "residual"))
            for k, w in d.witnesses.items():
                s = sp.simplify(w)
                # sympy must *prove* the witness non-zero (is_zero False), not fail to decide
                parts.append(Part(k, w, s, s.is_zero is False, "witness"))
            for k, e in d.signs.items():
                s = sp.factor(sp.cancel(e))
                # proved from the symbols' assumptions (positive=True, ...), not sampled
                parts.append(Part(k, e, s, s.is_nonnegative is True, "sign"))
            _CHECKS[key] = CheckResult(self.name, n, tuple(parts), time.perf_counter() - t0)
        return _CHECKS[key]

    def falsify(self, n: int | None = None, seed: int = 0) -> dict[str, bool]:
        """For every part with a wrong statement (``Derivation.wrong``): whether it is refuted,
        i.e. a residual built from the wrong statement is non-zero, or a sign part from it
        is negative, at a point where the true part holds (so the point is admissible).

        Points: every symbol a rational in [1/10, 9/10], inside every hypothesis of the
        certificates in :mod:`blindspot.symbolic.identities` (ε, scales and steps positive,
        s + a > 0, ηλ < 1); undefined functions (generic branches) are replaced by concrete
        smooth ones, tanh of a random linear form, so that derivatives of them evaluate.
        Residuals are evaluated at 2 points, sign parts at up to 64, to 30 digits."""
        d = self.derivation(n)
        rng = random.Random(seed)
        out = {}
        for name, build in d.wrong.items():
            if name in d.residuals:
                true, kind = d.residuals[name], "residual"
            elif name in d.signs:
                true, kind = d.signs[name], "sign"
            else:
                raise KeyError(f"{self.name}: wrong statement for {name!r}, which is no "
                               f"residual or sign part of the certificate")
            out[name] = _refuted(true, build(), kind, rng)
        return out

    def latex(self, n: int | None = None) -> dict[str, str]:
        """LaTeX of the statement and of every exported closed form (for the book)."""
        out = {"statement": self.statement_latex}
        out.update({k: sp.latex(e.expr) for k, e in self.derivation(n).exports.items()})
        return out

    def lambdify(self, export: str, n: int | None = None) -> Callable:
        """A numpy function of an exported closed form; arguments in the export's order
        (vectors as arrays of length n)."""
        exports = self.derivation(n).exports
        if export not in exports:
            raise KeyError(f"{self.name} exports {sorted(exports)}, not {export!r}")
        e = exports[export]
        return sp.lambdify(e.args, e.expr, modules="numpy")


def _entries(e: sp.Expr | sp.Matrix) -> list[sp.Expr]:
    return list(e) if isinstance(e, sp.MatrixBase) else [sp.sympify(e)]


def _concrete(exprs: list[sp.Expr], rng: random.Random) -> list[sp.Expr]:
    """``exprs`` with every undefined function f(x_1..x_m) replaced by tanh(sum_j w_j x_j) + b
    (random rational w, b; one function per name), derivatives of them evaluated."""
    funcs = {type(a) for e in exprs for a in e.atoms(AppliedUndef)}
    if not funcs:
        return exprs
    repl = {}
    for f in sorted(funcs, key=str):
        m = len(next(a for e in exprs for a in e.atoms(AppliedUndef) if type(a) is f).args)
        xs = sp.symbols(f"_x1:{m + 1}")
        w = [sp.Rational(rng.randint(-9, 9), 10) for _ in range(m)]
        repl[f] = sp.Lambda(xs, sp.tanh(sum(wi * xi for wi, xi in zip(w, xs, strict=True))
                                         + sp.Rational(rng.randint(-9, 9), 10)))
    return [e.replace(lambda a: type(a) in repl, lambda a: repl[type(a)](*a.args)).doit()
            for e in exprs]


def _value(exprs: list[sp.Expr], point: dict) -> list[complex] | None:
    """The entries at ``point`` to 30 digits; None where one is undefined there."""
    try:
        return [complex(sp.N(e.subs(point), 30)) for e in exprs]
    except (TypeError, ValueError):  # zoo, nan: the point is outside a domain
        return None


def _refuted(true: sp.Expr | sp.Matrix, wrong: sp.Expr | sp.Matrix, kind: str,
             rng: random.Random) -> bool:
    """Whether ``wrong`` fails where ``true`` holds, at random admissible points
    (:meth:`Certificate.falsify`)."""
    k = len(_entries(true))
    both = _concrete(_entries(true) + _entries(wrong), rng)
    true_e, wrong_e = both[:k], both[k:]
    symbols = sorted(set().union(*(e.free_symbols for e in both)), key=str)
    for _ in range(2 if kind == "residual" else 64):
        point = {x: sp.Rational(rng.randint(1, 9), 10) for x in symbols}
        t, w = _value(true_e, point), _value(wrong_e, point)
        if t is None or w is None:
            continue
        if kind == "residual":
            # the true residual vanishes to 30 digits here, the wrong one clearly does not
            if max(abs(x) for x in t) < 1e-20 and max(abs(x) for x in w) > 1e-10:
                return True
        elif all(x.real >= -1e-20 for x in t) and any(x.real < -1e-10 for x in w):
            return True
    return False


_DERIVATIONS: dict[tuple[str, int], Derivation] = {}
_CHECKS: dict[tuple[str, int], CheckResult] = {}


def _derive_cached(cert: Certificate, n: int) -> Derivation:
    key = (cert.name, n)
    if key not in _DERIVATIONS:
        _DERIVATIONS[key] = cert.derive(n)
    return _DERIVATIONS[key]

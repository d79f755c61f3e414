"""``Certificate``: one statement of the theory (proofs/) as sympy residuals that must vanish.

A certificate builds, at a small symbolic dimension n, a :class:`Derivation`:

- ``residuals``: expressions (or matrices) that are identically zero iff the statement holds
  (e.g. $N(c h) - N(h)$, or $\\langle h, \\nabla L\\rangle - \\text{closed form}$);
- ``witnesses``: expressions that must *not* vanish (e.g. the raw readout's radial
  derivative at a concrete point), so "non-zero in general" is checked, not asserted;
- ``signs``: expressions that sympy must prove non-negative from the symbols' assumptions
  alone (e.g. the gap between a bound and the quantity it bounds, written as a product of
  positive symbols), so an inequality is checked as "gap = this expression" (a residual)
  plus "this expression >= 0" (a sign part);
- ``exports``: named closed forms with their argument symbols, exported with
  :meth:`Certificate.lambdify` (numpy) and :meth:`Certificate.latex`, so numerics and the
  book use the same objects as the proof.

:meth:`Certificate.check` simplifies every residual (``cancel(expand(.))`` first, the full
``simplify`` only if that does not reach 0) and reports what it found. Results are cached per
(certificate, n) within a process: the derivation is deterministic, so the cache only saves
repeating the same exact computation. Demonstrated in ``tests/test_symbolic.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sympy as sp


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


_DERIVATIONS: dict[tuple[str, int], Derivation] = {}
_CHECKS: dict[tuple[str, int], CheckResult] = {}


def _derive_cached(cert: Certificate, n: int) -> Derivation:
    key = (cert.name, n)
    if key not in _DERIVATIONS:
        _DERIVATIONS[key] = cert.derive(n)
    return _DERIVATIONS[key]

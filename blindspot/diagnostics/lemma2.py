r"""The Lemma 2 decomposition of every loop update (proofs/lemma2.md).

Loop k maps the state it receives, x = s·u (s = ‖x‖), to H = x + Δ. With the radial increment
a = ⟨u, Δ⟩ and the tangential part Δ⊥ = Δ − a·u, exactly

.. math:: s'^2 = s^2 + 2 s a + \|Δ\|^2, \qquad s' = \|H\|,

and for large s

.. math:: s' - s = a + \frac{\|Δ_\perp\|^2}{2s} + O(s^{-2}), \qquad
          \|u' - u\| = \frac{\|Δ_\perp\|}{s} + O(s^{-2}).

At every scale with s + a > 0 the update also lies between explicit bounds
(:func:`bound_excess`); the table counts, per loop, the updates it checked and those outside.

:func:`decompose_update` computes every term per token in float64 (the identity's residual
then measures only float64 round-off); :func:`lemma2_table` averages them per loop.
``tests/test_diagnostics_math.py::test_lemma2_identity_and_expansion_orders`` checks the
identity to round-off and the orders of both expansions over scales 1..1e6.
"""

from __future__ import annotations

import torch
from torch import Tensor

from blindspot.diagnostics.recorder import loop_inputs
from blindspot.diagnostics.table import Table
from blindspot.nn.trace import LoopTrace

LEMMA2_COLUMNS = [
    "loop", "scale_in", "scale_out", "scale_increment", "radial_increment", "tangential",
    "update_norm", "angular_step", "angular_step_predicted", "identity_residual",
    "radial_expansion_error", "radial_expansion_error_2nd", "angular_expansion_error", "tokens",
]
# Defined for every token, a zero input scale included (H_1 from a zero initial state): these
# average over all tokens; the other columns need the direction u = x/s.
EVERY_TOKEN = {"scale_in", "scale_out", "scale_increment", "update_norm"}


def decompose_update(x: Tensor, h: Tensor) -> dict[str, Tensor]:
    """Per-token terms of the update x -> h (shapes (..., d) -> (...)), float64.

    Tokens with s = ‖x‖ = 0 have no direction; their entries are NaN and ``valid`` is False.
    """
    x = x.detach().double()  # (..., d)
    h = h.detach().double()
    delta = h - x  # (..., d) Δ
    s = x.norm(dim=-1)  # (...)
    s_next = h.norm(dim=-1)
    valid = s > 0
    safe_s = torch.where(valid, s, torch.ones_like(s))
    u = x / safe_s.unsqueeze(-1)  # (..., d)
    a = (u * delta).sum(-1)  # radial increment ⟨u, Δ⟩
    perp = delta - a.unsqueeze(-1) * u  # (..., d) Δ⊥
    perp_norm = perp.norm(dim=-1)
    u_next = h / torch.where(s_next > 0, s_next, torch.ones_like(s_next)).unsqueeze(-1)
    angular = (u_next - u).norm(dim=-1)
    delta_sq = (delta * delta).sum(-1)
    # Residual of the exact identity, relative to the largest term so it is scale-free.
    biggest = torch.maximum(torch.maximum(s_next**2, s**2), delta_sq).clamp_min(1e-300)
    residual = (s_next**2 - (s**2 + 2 * s * a + delta_sq)).abs() / biggest
    inc = s_next - s
    nan = torch.full_like(s, float("nan"))

    def masked(t: Tensor) -> Tensor:
        return torch.where(valid, t, nan)

    return {
        "valid": valid, "scale_in": s, "scale_out": s_next, "scale_increment": inc,
        "radial_increment": masked(a), "tangential": masked(perp_norm),
        "update_norm": delta_sq.sqrt(), "angular_step": masked(angular),
        "angular_step_predicted": masked(perp_norm / safe_s),
        "identity_residual": masked(residual),
        "radial_expansion_error": masked((inc - a).abs()),
        "radial_expansion_error_2nd": masked((inc - a - perp_norm**2 / (2 * safe_s)).abs()),
        "angular_expansion_error": masked((angular - perp_norm / safe_s).abs()),
    }


BOUND_COLUMNS = ["bounds_checked", "bounds_violations"]
# A token is outside the explicit bounds only beyond this many float64 ulps of the terms that
# enter the comparison (bound_excess). States are converted to float64 exactly, so the only
# error is float64's own (a few ulps per sum); 64 is a wide margin that still resolves the
# bounds wherever they are wider than round-off.
BOUND_ULPS = 64.0


def explicit_bounds(s: Tensor, a: Tensor, beta: Tensor, s_next: Tensor) -> dict[str, Tensor]:
    """The explicit Lemma 2 bounds (s + a > 0): lower and upper for s' − s − a − β²/(2s)
    and for ‖u' − u‖; the same closed forms as the certificate's exports
    (``tests/test_diagnostics_theory.py::test_diagnostics_bounds_are_the_certified_closed_forms``)."""
    x = s + a
    upper = -a * beta**2 / (2 * s * x)
    return {"radial_lower": upper - beta**4 / (8 * x**3), "radial_upper": upper,
            "angular_lower": beta / s_next, "angular_upper": beta / x}


def bound_excess(d: dict[str, Tensor]) -> dict[str, Tensor]:
    r"""Per token, how far an update lies outside the explicit Lemma 2 bounds
    (proofs/lemma2.md), for s + a > 0:

    .. math:: -\frac{a\beta^2}{2sx} - \frac{\beta^4}{8x^3} \le s' - s - a - \frac{\beta^2}{2s}
              \le -\frac{a\beta^2}{2sx}, \qquad \frac{\beta}{s'} \le \lVert u'-u\rVert
              \le \frac{\beta}{x}, \qquad x = s + a,

    in units of float64 round-off (0 inside). ``checked`` marks the tokens the hypothesis
    covers (valid, s + a > 0); the excess is NaN elsewhere. Takes :func:`decompose_update`'s
    output."""
    s, s1, a, beta = d["scale_in"], d["scale_out"], d["radial_increment"], d["tangential"]
    ang = d["angular_step"]
    checked = d["valid"] & (s + a > 0)
    one = torch.ones_like(s)
    # outside the hypothesis evaluate at a harmless point (s = 1, a = 0); masked below
    s, a = torch.where(checked, s, one), torch.where(checked, a, torch.zeros_like(a))
    beta = torch.where(checked, beta, torch.zeros_like(beta))
    b = explicit_bounds(s, a, beta, torch.where(s1 > 0, s1, one))
    eps = torch.finfo(torch.float64).eps
    rem = d["scale_increment"] - a - beta**2 / (2 * s)
    # s' - s is a plain difference: its round-off is eps (s + s'), plus eps per other term
    radial_unit = eps * (s + s1 + a.abs() + beta**2 / (2 * s))
    radial = torch.clamp(torch.maximum(b["radial_lower"] - rem, rem - b["radial_upper"]),
                         min=0) / radial_unit
    # |u' - u| is the norm of a difference of unit vectors: round-off ~eps
    angular = torch.clamp(torch.maximum(b["angular_lower"] - ang, ang - b["angular_upper"]),
                          min=0) / eps
    nan = torch.full_like(s, float("nan"))
    return {"checked": checked, "radial": torch.where(checked, radial, nan),
            "angular": torch.where(checked, angular, nan)}


def lemma2_table(trace: LoopTrace) -> Table:
    """One row per loop k = 1..K: token means of every term of :func:`decompose_update` (the
    identity residual is the max over tokens). The scales and ‖Δ‖ average over every token;
    the terms that need the direction u average over tokens whose input scale is non-zero
    (NaN, and ``tokens`` = 0, when there is none, e.g. loop 1 from a zero initial state)."""
    rows = []
    for k, (x, h) in enumerate(zip(loop_inputs(trace), trace.states, strict=True), start=1):
        d = decompose_update(x, h)
        v = d["valid"]
        row = {"loop": k}
        for c in LEMMA2_COLUMNS[1:-1]:
            t = d[c] if c in EVERY_TOKEN else d[c][v]
            if not t.numel():
                t = torch.full((1,), float("nan"), dtype=torch.float64)
            row[c] = (t.max() if c == "identity_residual" else t.mean()).item()
        row["tokens"] = int(v.sum())
        b = bound_excess(d)
        outside = (b["radial"] > BOUND_ULPS) | (b["angular"] > BOUND_ULPS)
        row["bounds_checked"] = int(b["checked"].sum())
        row["bounds_violations"] = int((outside & b["checked"]).sum())
        rows.append(row)
    worst = max((r["identity_residual"] for r in rows if r["tokens"]), default=float("nan"))
    checked = sum(r["bounds_checked"] for r in rows)
    violations = sum(r["bounds_violations"] for r in rows)
    return Table("lemma2", LEMMA2_COLUMNS + BOUND_COLUMNS, rows,
                 notes=(f"exact identity s'^2 = s^2 + 2 s a + |Δ|^2 holds to a relative residual "
                        f"{worst:.2g} (float64 round-off); the first-order radial expansion error "
                        "|Δs − a| shrinks like 1/s, the second-order one and the angular one like "
                        f"1/s^2; {checked - violations} of {checked} updates with s + a > 0 lie "
                        f"inside the explicit bounds ({violations} outside by more than "
                        f"{BOUND_ULPS:g} ulps)"))

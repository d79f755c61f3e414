"""Symbolic layer (sympy only): normalizers, readouts and losses as sympy expressions, and
each statement of the theory (proofs/) as a :class:`Certificate` whose ``check()`` simplifies the
residuals to zero. Float64 autograd cross-checks: :mod:`blindspot.symbolic.numeric`
(imports torch; not imported here). Precision floors: :mod:`blindspot.symbolic.precision`.
"""

from blindspot.symbolic.certificate import Certificate, CheckResult, Derivation, Export, vanish
from blindspot.symbolic.identities import (
    ALL,
    EPS_LEAK,
    EULER,
    FINAL_ONLY,
    GD_NORM,
    HESSIAN,
    LAYERNORM_INVARIANCE,
    LEMMA2_EXACT,
    LEMMA2_EXPANSION,
    NORM_JACOBIAN,
    NORM_PENALTY,
    RADIAL_CLAMP,
    RAW_READOUT,
    RMSNORM_INVARIANCE,
    WEIGHT_DECAY,
)

__all__ = [
    "ALL", "Certificate", "CheckResult", "Derivation", "Export", "vanish",
    "EPS_LEAK", "EULER", "FINAL_ONLY", "GD_NORM", "HESSIAN", "LAYERNORM_INVARIANCE",
    "LEMMA2_EXACT", "LEMMA2_EXPANSION", "NORM_JACOBIAN", "NORM_PENALTY", "RADIAL_CLAMP",
    "RAW_READOUT", "RMSNORM_INVARIANCE", "WEIGHT_DECAY",
]

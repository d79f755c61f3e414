"""Claims of THEORY.md §1-§6 and §8: each check runs a sympy certificate (residuals simplified
to zero at small symbolic dimension) AND its float64 ``torch.func`` cross-check at n = 16,
and prints both."""

from __future__ import annotations

from blindspot.claims import Outcome, claim
from blindspot.symbolic import identities as I
from blindspot.symbolic.certificate import Certificate

_T = "tests/test_symbolic.py::"


def _run(*certs: Certificate) -> Outcome:
    from blindspot.symbolic.numeric import CHECKS  # torch only when a check actually runs

    passed, lines = True, []
    for cert in certs:
        sym = cert.check()
        num = CHECKS[cert.name]()
        passed &= sym.passed and num.passed
        lines += [f"sympy {sym.summary()}", num.summary()]
    return Outcome(passed, " | ".join(lines))


def _cert(c: Certificate) -> str:
    return f"blindspot.symbolic.identities.{c.name}"


@claim("S1.norm-invariance",
       "RMSNorm and LayerNorm with eps = 0 are scale invariant (LayerNorm also shift invariant): "
       "N(c h) = N(h) for c > 0, any gain.",
       paper_ref="§3 (scale-invariant readouts); THEORY 1", certificate=_cert(I.RMSNORM_INVARIANCE),
       test=_T + "test_norm_invariance_certificates", page="proofs/normalizers.md")
def norm_invariance() -> Outcome:
    return _run(I.RMSNORM_INVARIANCE, I.LAYERNORM_INVARIANCE)


@claim("S1.jacobian",
       "Normalizer Jacobians: J h = 0 at eps = 0 (LayerNorm also J 1 = 0); rank n-1 (n-2 for "
       "LayerNorm) at a generic point; closed forms of J.",
       paper_ref="§3; THEORY 2", certificate=_cert(I.NORM_JACOBIAN),
       test=_T + "test_jacobian_certificate", page="proofs/normalizers.md")
def jacobian() -> Outcome:
    return _run(I.NORM_JACOBIAN)


@claim("S2.euler",
       "The blind spot: for L = CE(W N(h), y) with eps = 0, <h, grad L> = 0 for every W, y, and "
       "grad L(c h) = grad L(h)/c.",
       paper_ref="§3, claim 3; THEORY 3", certificate=_cert(I.EULER),
       test=_T + "test_euler_certificate", page="proofs/euler.md")
def euler() -> Outcome:
    return _run(I.EULER)


@claim("S2.hessian", "Hessian identity of a scale-invariant loss: hess L(h) h = -grad L(h).",
       paper_ref="THEORY 3", certificate=_cert(I.HESSIAN),
       test=_T + "test_hessian_certificate", page="proofs/euler.md")
def hessian() -> Outcome:
    return _run(I.HESSIAN)


@claim("S3.eps-leak",
       "With eps > 0 the radial derivative is exactly eps/r^3 <gamma*h, grad l>, and the radial "
       "gain kappa = eps/(ms(h)+eps) <= eps/ms(h) vanishes as the scale grows.",
       paper_ref="THEORY 3", certificate=_cert(I.EPS_LEAK),
       test=_T + "test_eps_leak_certificate", page="proofs/eps_leak.md")
def eps_leak() -> Outcome:
    return _run(I.EPS_LEAK)


@claim("S4.raw-readout",
       "A raw readout sees the scale: <h, grad CE(W h, y)> = E_p[z] - z_y, non-zero in general.",
       paper_ref="§5 (scale-visible readouts); THEORY 4", certificate=_cert(I.RAW_READOUT),
       test=_T + "test_raw_readout_certificate", page="proofs/readouts.md")
def raw_readout() -> Outcome:
    return _run(I.RAW_READOUT)


@claim("S4.norm-penalty",
       "A norm penalty lambda |h|^2 has radial component 2 lambda |h|^2 (2 lambda |h|^2/n for the "
       "mean square), the whole radial force behind a normalized readout.",
       paper_ref="§5; THEORY 4", certificate=_cert(I.NORM_PENALTY),
       test=_T + "test_norm_penalty_certificate", page="proofs/readouts.md")
def norm_penalty() -> Outcome:
    return _run(I.NORM_PENALTY)


@claim("S4.final-only",
       "Final-only normalized readout: raw intermediate readouts see their state's scale "
       "(E_p[z]-z_y), the normalized final readout does not (exactly 0).",
       paper_ref="Table 1 (per-loop + final-only norm); THEORY 4", certificate=_cert(I.FINAL_ONLY),
       test=_T + "test_final_only_certificate", page="proofs/readouts.md")
def final_only() -> Outcome:
    return _run(I.FINAL_ONLY)


@claim("S5.lemma2-exact",
       "Residual update exactly: |h + D|^2 = s^2 + 2 s a + |D|^2 = (s+a)^2 + |D_perp|^2.",
       paper_ref="Lemma 2 (exact part); THEORY 5", certificate=_cert(I.LEMMA2_EXACT),
       test=_T + "test_lemma2_exact_certificate", page="proofs/lemma2.md")
def lemma2_exact() -> Outcome:
    return _run(I.LEMMA2_EXACT)


@claim("S5.lemma2-expansion",
       "Lemma 2 at large scale (s + a > 0): s' - s = a + |D_perp|^2/(2s) - a|D_perp|^2/(2s^2) "
       "+ O(s^-3), |u' - u| = |D_perp|/s + O(s^-2); the float64 twin checks the s^-2 term "
       "against the explicit bounds, in units of round-off.",
       paper_ref="Lemma 2", certificate=_cert(I.LEMMA2_EXPANSION),
       test=_T + "test_lemma2_expansion_twin_holds_for_every_seed_and_block_size",
       page="proofs/lemma2.md")
def lemma2_expansion() -> Outcome:
    return _run(I.LEMMA2_EXPANSION)


@claim("S5.lemma2-bounds",
       "Lemma 2 with explicit bounds, at every scale with s + a > 0: "
       "-a b^2/(2s(s+a)) - b^4/(8(s+a)^3) <= s' - s - a - b^2/(2s) <= -a b^2/(2s(s+a)) and "
       "b/s' <= |u' - u| <= b/(s+a), b = |D_perp|.",
       paper_ref="Lemma 2 (made non-asymptotic)", certificate=_cert(I.LEMMA2_BOUNDS),
       test=_T + "test_lemma2_bounds_certificate", page="proofs/lemma2.md")
def lemma2_bounds() -> Outcome:
    return _run(I.LEMMA2_BOUNDS)


@claim("S6.gd-norm",
       "GD on a scale-invariant loss grows the norm: |w - eta grad L|^2 = |w|^2 + eta^2|grad L|^2.",
       paper_ref="THEORY 6", certificate=_cert(I.GD_NORM),
       test=_T + "test_gd_norm_certificate", page="proofs/gd.md")
def gd_norm() -> Outcome:
    return _run(I.GD_NORM)


@claim("S6.weight-decay",
       "With weight decay the norm equilibrates at |w*|^4 = eta G^2/(lambda(2 - eta lambda)) "
       "~ eta G^2/(2 lambda), angular step acos(1 - eta lambda) ~ sqrt(2 eta lambda).",
       paper_ref="THEORY 6", certificate=_cert(I.WEIGHT_DECAY),
       test=_T + "test_weight_decay_certificate", page="proofs/gd.md")
def weight_decay() -> Outcome:
    return _run(I.WEIGHT_DECAY)


@claim("S8.radial-clamp",
       "Rescaling H_k leaves N(H_k) and the next update unchanged; only the angular step "
       "|D_perp|/(c s) changes; dropping the radial part turns the direction by a|D_perp|/s^2.",
       paper_ref="Table 4 (radial clamp); THEORY 8", certificate=_cert(I.RADIAL_CLAMP),
       test=_T + "test_radial_clamp_certificate", page="proofs/radial_clamp.md")
def radial_clamp() -> Outcome:
    return _run(I.RADIAL_CLAMP)

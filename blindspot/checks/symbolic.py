"""Claims of the theory (proofs/): each check runs a sympy certificate (residuals simplified
to zero at small symbolic dimension) AND its float64 ``torch.func`` twin, and prints both;
where a statement is about looped language models, the check also measures it on the
package's own ``LoopedLM`` (:mod:`blindspot.checks.theory_lm`) and prints that too."""

from __future__ import annotations

from collections.abc import Callable

from blindspot.claims import COMPANION, Outcome, claim
from blindspot.symbolic import identities as I
from blindspot.symbolic.certificate import Certificate

_T = "tests/test_symbolic.py::"
_LM = "tests/test_symbolic_lm.py::"


def _run(*certs: Certificate, model: Callable[[], tuple[bool, str]] | None = None) -> Outcome:
    """Every certificate and its float64 twin; then ``model()``, a measurement on a real
    LoopedLM returning (passed, evidence), when the statement is about looped models."""
    from blindspot.symbolic.numeric import CHECKS  # torch only when a check actually runs

    passed, lines = True, []
    for cert in certs:
        sym = cert.check()
        num = CHECKS[cert.name]()
        passed &= sym.passed and num.passed
        lines += [f"sympy {sym.summary()}", num.summary()]
    if model is not None:
        ok, text = model()
        passed &= ok
        lines.append(f"LoopedLM (float64): {text}")
    return Outcome(passed, " | ".join(lines))


def _cert(c: Certificate) -> str:
    return f"blindspot.symbolic.identities.{c.name}"


@claim("S1.norm-invariance",
       "RMSNorm and LayerNorm with eps = 0 are scale invariant (LayerNorm also shift invariant): "
       "N(c h) = N(h) for c > 0, any gain.",
       source="paper",
       paper_ref="§3 (scale-invariant readouts)", certificate=_cert(I.RMSNORM_INVARIANCE),
       test=_T + "test_norm_invariance_certificates", page="proofs/normalizers.md")
def norm_invariance() -> Outcome:
    return _run(I.RMSNORM_INVARIANCE, I.LAYERNORM_INVARIANCE)


@claim("S1.jacobian",
       "Normalizer Jacobians: J h = 0 at eps = 0 (LayerNorm also J 1 = 0); rank n-1 (n-2 for "
       "LayerNorm) at a generic point; closed forms of J.",
       source="paper",
       paper_ref="§3", certificate=_cert(I.NORM_JACOBIAN),
       test=_T + "test_jacobian_certificate", page="proofs/normalizers.md")
def jacobian() -> Outcome:
    return _run(I.NORM_JACOBIAN)


@claim("S2.euler",
       "The blind spot: for L = CE(W N(h), y) with eps = 0, <h, grad L> = 0 for every W, y, and "
       "grad L(c h) = grad L(h)/c.",
       source="paper",
       paper_ref="§3, claim 3", certificate=_cert(I.EULER),
       test=_T + "test_euler_certificate", page="proofs/euler.md")
def euler() -> Outcome:
    return _run(I.EULER)


@claim("S2.hessian", "Hessian identity of a scale-invariant loss: hess L(h) h = -grad L(h).",
       source="package",
       paper_ref=COMPANION, certificate=_cert(I.HESSIAN),
       test=_T + "test_hessian_certificate", page="proofs/euler.md")
def hessian() -> Outcome:
    return _run(I.HESSIAN)


def _lm_total_radial() -> tuple[bool, str]:
    """With one pre-norm sublayer per loop the prediction holds to round-off; on a LoopedLM
    (two sublayers per block, eps = 0): R_K = 0 to round-off, R_1 is not, and the prediction
    -sum <Delta_j, G_{j+1}> misses by O(1/|H|): scaling the embeddings by 1e3 shrinks the
    miss at least 100x."""
    from blindspot.checks.theory_lm import total_radial_at_scale, total_radial_exact

    exact = total_radial_exact()
    exact_miss = float(((exact["total"] - exact["predicted"]).abs() / exact["size"]).max())
    # where the premise holds (one pre-norm sublayer per loop) the formula is exact: float64
    # round-off of sums of size |H||G|, 1e-12 is ~1e4 ulps
    misses, ok = [], exact_miss <= 1e-12
    text = [f"one pre-norm sublayer per loop: max |R_k - predicted|/(|H||G|) = {exact_miss:.1e}"]
    for scale in (1.0, 1e3):
        t = total_radial_at_scale(scale)
        rel = t["total"].abs() / t["size"]  # R_k in units of the sum it cancels from
        misses.append(float(((t["total"] - t["predicted"]).abs() / t["size"]).max()))
        last, first = float(rel[-1].max()), float(rel[0].mean())
        # float64: 1e-12 of |H_K||G_K| is ~1e4 ulps; R_1 must be far above it
        ok &= last <= 1e-12 and first > 1e-6
        text.append(f"embeddings x{scale:g}: max|R_K|/(|H_K||G_K|) = {last:.1e}, mean "
                    f"|R_1|/(|H_1||G_1|) = {first:.3g}, prediction miss {misses[-1]:.2e}")
    ok &= misses[1] < misses[0] / 100  # O(1/s): 1e3 in scale gives 1e3; 100 leaves 10x
    return ok, "; ".join(text)


@claim("S2.total-radial",
       "What the total loss still sees: with per-loop CE, eps = 0 and updates that read H_k "
       "only through N(H_k), R_k = <H_k, grad_{H_k} L_total> = -sum_{j>=k} <D_j, "
       "grad_{H_{j+1}} L> and R_K = 0: only the final state is blind to its own scale.",
       source="package",
       paper_ref=COMPANION + "; qualifies claim 3", certificate=_cert(I.TOTAL_RADIAL),
       test=_T + "test_total_radial_certificate", page="proofs/total_loss.md")
def total_radial() -> Outcome:
    return _run(I.TOTAL_RADIAL, model=_lm_total_radial)


@claim("S3.eps-leak",
       "With eps > 0 the radial derivative is exactly eps/r^3 <gamma*h, grad l>, and the radial "
       "gain kappa = eps/(ms(h)+eps) <= eps/ms(h) vanishes as the scale grows.",
       source="package",
       paper_ref=COMPANION, certificate=_cert(I.EPS_LEAK),
       test=_T + "test_eps_leak_certificate", page="proofs/eps_leak.md")
def eps_leak() -> Outcome:
    return _run(I.EPS_LEAK)


def _lm_kappa() -> tuple[bool, str]:
    """kappa at both initializations matches eps/(2 sigma^2 + eps) (token + position
    embeddings of variance sigma^2 each) within 10% (sampling of ms over 4 x 16 tokens of
    width 128 moves it by ~2%)."""
    from blindspot.checks.theory_lm import kappa_at_init

    ok, text = True, []
    for init in ("paper", "gpt2"):
        k = kappa_at_init(init)
        ok &= abs(k["kappa_H0"] / k["kappa_H0_predicted"] - 1) < 0.1
        text.append(f"{init} init: ms(H_0) = {k['ms_H0']:.3g} (pred. {k['ms_H0_predicted']:.3g}), "
                    f"kappa(H_0) = {k['kappa_H0']:.3g}, kappa(H_K) = {k['kappa_HK']:.3g} at eps = "
                    f"{k['eps']:g}")
    return ok, "; ".join(text)


@claim("S3.eps-temperature",
       "The eps-leak is a temperature force: N_eps(h) = sqrt(m/(m+eps)) N_0(h), so "
       "<h, grad CE(W N_eps(h), y)> = kappa (E_p z - z_y), kappa = eps/(ms(h)+eps), pointing "
       "outward exactly when the loss wants sharper logits; kappa ~ 5e-7 at the paper's "
       "N(0, 1) init and ~1.2e-3 at a GPT-2 N(0, 0.02^2) init (eps = 1e-6).",
       source="package",
       paper_ref=COMPANION, certificate=_cert(I.EPS_TEMPERATURE),
       test=_T + "test_eps_temperature_certificate", page="proofs/eps_leak.md")
def eps_temperature() -> Outcome:
    return _run(I.EPS_TEMPERATURE, model=_lm_kappa)


@claim("S4.raw-readout",
       "A raw readout sees the scale: <h, grad CE(W h, y)> = E_p[z] - z_y, non-zero in general.",
       source="paper",
       paper_ref="§5 (scale-visible readouts)", certificate=_cert(I.RAW_READOUT),
       test=_T + "test_raw_readout_certificate", page="proofs/readouts.md")
def raw_readout() -> Outcome:
    return _run(I.RAW_READOUT)


@claim("S4.norm-penalty",
       "A norm penalty lambda |h|^2 has radial component 2 lambda |h|^2 (2 lambda |h|^2/n for the "
       "mean square), the whole radial force behind a normalized readout.",
       source="paper",
       paper_ref="§5", certificate=_cert(I.NORM_PENALTY),
       test=_T + "test_norm_penalty_certificate", page="proofs/readouts.md")
def norm_penalty() -> Outcome:
    return _run(I.NORM_PENALTY)


@claim("S4.final-only",
       "Final-only normalized readout: raw intermediate readouts see their state's scale "
       "(E_p[z]-z_y), the normalized final readout does not (exactly 0).",
       source="paper",
       paper_ref="Table 1 (per-loop + final-only norm)", certificate=_cert(I.FINAL_ONLY),
       test=_T + "test_final_only_certificate", page="proofs/readouts.md")
def final_only() -> Outcome:
    return _run(I.FINAL_ONLY)


@claim("S5.lemma2-exact",
       "Residual update exactly: |h + D|^2 = s^2 + 2 s a + |D|^2 = (s+a)^2 + |D_perp|^2.",
       source="paper",
       paper_ref="Lemma 2 (exact part)", certificate=_cert(I.LEMMA2_EXACT),
       test=_T + "test_lemma2_exact_certificate", page="proofs/lemma2.md")
def lemma2_exact() -> Outcome:
    return _run(I.LEMMA2_EXACT)


@claim("S5.lemma2-expansion",
       "Lemma 2 at large scale (s + a > 0): s' - s = a + |D_perp|^2/(2s) - a|D_perp|^2/(2s^2) "
       "+ O(s^-3), |u' - u| = |D_perp|/s + O(s^-2); the float64 twin checks the s^-2 term "
       "against the explicit bounds, in units of round-off.",
       source="paper",
       paper_ref="Lemma 2", certificate=_cert(I.LEMMA2_EXPANSION),
       test=_T + "test_lemma2_expansion_twin_holds_for_every_seed_and_block_size",
       page="proofs/lemma2.md")
def lemma2_expansion() -> Outcome:
    return _run(I.LEMMA2_EXPANSION)


@claim("S5.lemma2-bounds",
       "Lemma 2 with explicit bounds, at every scale with s + a > 0: "
       "-a b^2/(2s(s+a)) - b^4/(8(s+a)^3) <= s' - s - a - b^2/(2s) <= -a b^2/(2s(s+a)) and "
       "b/s' <= |u' - u| <= b/(s+a), b = |D_perp|.",
       source="package",
       paper_ref="Lemma 2 (made non-asymptotic)", certificate=_cert(I.LEMMA2_BOUNDS),
       test=_T + "test_lemma2_bounds_certificate", page="proofs/lemma2.md")
def lemma2_bounds() -> Outcome:
    return _run(I.LEMMA2_BOUNDS, model=_lm_lemma2_bounds)


def _lm_lemma2_bounds() -> tuple[bool, str]:
    """The diagnostics' Lemma 2 table of a LoopedLM over 12 loops: every update with s + a > 0
    lies inside the explicit bounds (to 64 float64 ulps), and every update is checked."""
    import torch

    from blindspot.checks.theory_lm import batch, small_lm
    from blindspot.diagnostics.adapter import adapter_for
    from blindspot.diagnostics.lemma2 import lemma2_table
    from blindspot.diagnostics.recorder import record

    m = small_lm(0)
    with torch.no_grad():
        rows = lemma2_table(record(adapter_for(m), batch(m)[0], num_loops=12)).rows
    checked = sum(r["bounds_checked"] for r in rows)
    outside = sum(r["bounds_violations"] for r in rows)
    tokens = sum(r["tokens"] for r in rows)
    return outside == 0 and checked == tokens > 0, (
        f"diagnostics lemma2 table, 12 loops: {checked} of {tokens} updates checked, "
        f"{outside} outside the bounds")


def _lm_direction_limit() -> tuple[bool, str]:
    """One loop of a LoopedLM: Delta(cH) = F(1/c) to round-off, Delta(cH) -> Delta_inf like
    1/c (10x per decade within 20%), while Delta(cH) differs from Delta(H) by O(0.1-1)."""
    from blindspot.checks.theory_lm import batch, direction_limit_on_lm, small_lm

    m = small_lm(0)
    r = direction_limit_on_lm(m, batch(m)[0])
    rate = r["to_limit_c=100"] / r["to_limit_c=10000"]  # 100 for an O(1/c) approach
    ok = r["reparametrization_error"] < 1e-9 and 80 < rate < 120
    return ok, (f"|D(cH)-D(H)|/|D(H)| = {r['change_c=0.01']:.2f}, {r['change_c=10']:.2f}, "
                f"{r['change_c=10000']:.2f} (c = 0.01, 10, 1e4); |D(cH)-D_inf|/|D_inf| = "
                f"{r['to_limit_c=100']:.1e}, {r['to_limit_c=10000']:.1e} (c = 1e2, 1e4); "
                f"reparametrization error {r['reparametrization_error']:.1e}")


@claim("S5.direction-limit",
       "A loop of several pre-norm sublayers is a function of the direction only in the limit: "
       "Delta(s u) = Delta_inf(u) + (1/s) J_{b2} J_N(u) b1(N(u)) + O(s^-2) for C^2 (or "
       "C^{1,1}) branches, with a non-zero 1/s term in general (so Lemma 2's premise holds "
       "only as s -> infinity).",
       source="package",
       paper_ref="Lemma 2 (its premise)", certificate=_cert(I.DIRECTION_LIMIT),
       test=_T + "test_direction_limit_certificate", page="proofs/lemma2.md")
def direction_limit() -> Outcome:
    return _run(I.DIRECTION_LIMIT, model=_lm_direction_limit)


@claim("S6.gd-norm",
       "GD on a scale-invariant loss grows the norm: |w - eta grad L|^2 = |w|^2 + eta^2|grad L|^2.",
       source="package",
       paper_ref=COMPANION, certificate=_cert(I.GD_NORM),
       test=_T + "test_gd_norm_certificate", page="proofs/gd.md")
def gd_norm() -> Outcome:
    return _run(I.GD_NORM)


@claim("S6.weight-decay",
       "With weight decay the norm equilibrates at |w*|^4 = eta G^2/(lambda(2 - eta lambda)) "
       "~ eta G^2/(2 lambda), angular step acos(1 - eta lambda) ~ sqrt(2 eta lambda).",
       source="package",
       paper_ref=COMPANION, certificate=_cert(I.WEIGHT_DECAY),
       test=_T + "test_weight_decay_certificate", page="proofs/gd.md")
def weight_decay() -> Outcome:
    return _run(I.WEIGHT_DECAY)


def _lm_optimizers() -> tuple[bool, str]:
    """An untied, eps = 0 LoopedLM trained 12 steps by plain SGD, heavy ball and Nesterov:
    |P| never decreases (to float64 round-off), while the mean |H_K| (on one fixed batch) may."""
    import numpy as np

    from blindspot.checks.theory_lm import optimizer_stream_norms

    ok, text = True, []
    for opt, lr in (("sgd", 0.5), ("heavy_ball", 0.05), ("nesterov", 0.05)):
        r = optimizer_stream_norms(opt, steps=12, lr=lr)
        P, H = np.array(r["P_norm"]), np.array(r["HK_norm"])
        shrink = float(np.max(-np.diff(P) / P[:-1]))
        ok &= shrink <= 1e-13  # |P| moves ~1e-2 per step; 1e-13 is ~500 ulps of round-off
        text.append(f"{opt}: |P| {P[0]:.4g} -> {P[-1]:.4g}, largest relative decrease "
                    f"{max(shrink, 0.0):.1e}; mean |H_K| on a fixed batch fell in "
                    f"{int((np.diff(H) < 0).sum())} of {len(H) - 1} steps")
    return ok, "; ".join(text)


@claim("S6.momentum-growth",
       "Growth is proved for the SGD family: GD, heavy ball and Nesterov (torch "
       "conventions, v_0 = 0, no decay) on an exactly scale-invariant loss never shrink |w|; "
       "heavy ball: D_t = <w_t, v_{t+1}> = mu(D_{t-1} - eta |v_t|^2) <= 0. (A sufficient "
       "condition: nothing is claimed about other optimizers beyond Adam's counterexample.)",
       source="package",
       paper_ref=COMPANION, certificate=_cert(I.MOMENTUM_GROWTH),
       test=_T + "test_momentum_growth_certificate", page="proofs/gd.md")
def momentum_growth() -> Outcome:
    return _run(I.MOMENTUM_GROWTH, model=_lm_optimizers)


@claim("S6.adam-counterexample",
       "Adam has no such guarantee: from w = (2, 1) on L = <(1, -2), w/|w|>, one Adam step of "
       "lr 0.1 takes |w|^2 from 5 to 4.82 (any lr in (0, 1) shrinks it), and in noisy runs "
       "a sizeable fraction of Adam steps shrink |w|.",
       source="package",
       paper_ref=COMPANION, certificate=_cert(I.ADAM_COUNTEREXAMPLE),
       test=_T + "test_adam_counterexample_certificate", page="proofs/gd.md")
def adam_counterexample() -> Outcome:
    return _run(I.ADAM_COUNTEREXAMPLE)


def _lm_tied_untied() -> tuple[bool, str]:
    """On a LoopedLM (pre-norm and sandwich blocks): untied, <P, grad_P L> = 0; tied, it equals
    (1/K) sum_k mean(E_p z_k - z_{k,y}), which is resolvably non-zero. Relative to
    |P||grad_P L| (a cancelling sum of that size): 1e-12 is ~1e4 float64 ulps."""
    from blindspot.checks.theory_lm import tied_vs_untied

    ok, text = True, []
    for block in ("pre", "sandwich"):
        r = tied_vs_untied(block_norm=block)
        t, u = r["tied"], r["untied"]
        ok &= (abs(u["inner"]) <= 1e-12 * u["size"]
               and abs(t["inner"] - t["correction"]) <= 1e-12 * t["size"]
               and abs(t["correction"]) > 1e-6 * t["size"])
        text.append(f"{block}: untied <P,grad_P L> = {u['inner']:.1e} (|P||grad| "
                    f"{u['size']:.3g}); tied {t['inner']:.4g} vs closed form "
                    f"{t['correction']:.4g}")
    return ok, "; ".join(text)


@claim("S6.param-invariance",
       "The real premise of norm growth over training: the parameters P that write the stream "
       "are scale-blind, <P, grad_P L> = 0, only with an untied readout, eps = 0, pre-norm and "
       "bias-free projections (sandwich: P holds the post-norm gains); with the readout tied to "
       "the embedding <P, grad_P L> = (1/K) sum_k mean(E_p z_k - z_{k,y}).",
       source="package",
       paper_ref="premise of claims 3-4", certificate=_cert(I.PARAM_INVARIANCE),
       test=_T + "test_param_invariance_twin_on_every_seed", page="proofs/parameters.md")
def param_invariance() -> Outcome:
    return _run(I.PARAM_INVARIANCE, model=_lm_tied_untied)


@claim("S6.state-vs-param",
       "Growth of |P| need not grow the state: |H_K| = |P| phi(P/|P|), and a change of direction "
       "can grow |P| while |H_K| shrinks (an exact example; and steps of SGD on a LoopedLM).",
       source="package",
       paper_ref=COMPANION, certificate=_cert(I.STATE_VS_PARAM_NORM),
       test=_T + "test_state_vs_param_norm_certificate", page="proofs/parameters.md")
def state_vs_param() -> Outcome:
    return _run(I.STATE_VS_PARAM_NORM, model=_lm_state_vs_param)


def _lm_state_vs_param() -> tuple[bool, str]:
    """The same plain-SGD run as S6.momentum-growth: some step grows |P| yet shrinks the mean
    |H_K| on one fixed batch (so the fall is the parameters' doing, not a change of data)."""
    import numpy as np

    from blindspot.checks.theory_lm import optimizer_stream_norms

    r = optimizer_stream_norms("sgd", steps=12, lr=0.5)
    dP, dH = np.diff(r["P_norm"]), np.diff(r["HK_norm"])
    both = int(((dP > 0) & (dH < 0)).sum())
    return both > 0, (f"plain SGD, untied, eps = 0: |P| grew in {int((dP > 0).sum())} of "
                      f"{len(dP)} steps; in {both} of them mean |H_K| on a fixed batch shrank")


@claim("S8.radial-clamp",
       "Rescaling H_k leaves N(H_k) and the next update unchanged; only the angular step "
       "|D_perp|/(c s) changes; with s + a > 0, dropping the radial part of one update turns "
       "the direction by a|D_perp|/s^2 (what clamping costs over many loops is measured, not "
       "implied).",
       source="package",
       paper_ref="Table 4 (radial clamp)", certificate=_cert(I.RADIAL_CLAMP),
       test=_T + "test_radial_clamp_certificate", page="proofs/radial_clamp.md")
def radial_clamp() -> Outcome:
    return _run(I.RADIAL_CLAMP)

r"""The growth law: how large every loop's blind state gets, over training, from a config.

It replaces the self-logit model of :mod:`blindspot.toy.scale_growth` (kept, with its
committed predictions and their verdicts) after the growth-law study measured the mechanism
(``results/growth-law``: the split of each state along its own token embedding, the readout's
self-logit, the radial increments, loop by loop and over training). What the study showed,
and what the law is built from (proofs/growth_law.md states and proves the derived parts):

1. **The self-logit identity (derived, exact).** Through a tied readout z = E·(γ ⊙ H/rms(H))
   with a uniform gain γ, the current token's logit above the vocabulary mean is
   γ√d⟨E[x_t] − Ē, H⟩/‖H‖. Writing H = α e + β p + r (e = E[x_t], p = P[t], r ⟂ both), its
   embedding part is γ α σ_E² d^{3/2}/‖H‖ up to O(σ_E² d) cross terms. Training holds this
   self-logit at some m nats (the study measures it in every run: it grows with d and not with
   K or L); with the token coefficient α_1 that loop 1 leaves, the first state's scale is

   .. math:: \lVert H_1\rVert = \frac{\alpha_1}{m}\,\gamma\,\sigma_E^2\, d^{3/2} .

   The dependence on γ σ_E² is derived (γ and σ_E at their initial values: the law does not
   follow them over training); α_1/m is **fitted** as a power law in the width d (with a
   curvature in ln d), the loop count K, the layers per loop L, the learning rate η and the
   cumulative learning rate τ, times a factor for the word vocabulary (:class:`GrowthLaw`).
2. **Later loops are radial (derived from Lemma 2, proofs/lemma2.md).** Once ‖H_1‖ is large
   the angular step of loop k is O(1/‖H_k‖), so every later state keeps loop 1's direction
   (and the same self-logit) and each loop adds about the same radial increment a:

   .. math:: \lVert H_k\rVert = \lVert H_1\rVert\,\big(1 + (k-1)\,\rho\big),\qquad
             \rho = a/\lVert H_1\rVert \ \text{(fitted: a power law in } d,\ \eta,\ \tau) .

3. **The clock (fitted).** The plateau is reached within a cumulative learning rate
   τ(t) = Σ_{i<t} η_i of a few hundredths: ‖H_1‖ rises as
   √(s_0² + min(c τ, √(plateau² − s_0²))²) (the committed model's premise 3, its rate c
   refitted); after it the plateau moves as τ^ν and ρ as τ^−μ (fitted across runs that end at
   different τ, up to the study's longest phase-1 run).

Domain (where the constants were fitted; :meth:`GrowthLaw.domain_issues` names what a config
leaves): per-loop CE through an RMSNorm readout tied to the token embedding, no inter-loop
norm, the paper's init (σ_E such that the initial self-logit γσ_E²d^{3/2}/‖H_0‖ is far above
m: the *self-logit regime*), a constant lr, and the fitted ranges of d, K, L, η and τ
(:attr:`GrowthLaw.domain`), byte or regex-word vocabulary. Outside, the law still answers,
flagged as an extrapolation; where it was tested outside (the second set), it missed.
Tests: ``tests/test_toy_growth_law.py``; its claims: ``growth.v2_*``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from blindspot.toy._validate import as_float
from blindspot.toy.prediction import Prediction

FORMULA = (r"\|H_k\|(\tau)=\|H_1\|(\tau)\,(1+(k-1)\rho(\tau)),\ "
           r"\|H_1\|_\infty(\tau)=\kappa\,(d/128)^{q_d+q_{dd}\ln(d/128)}(K/4)^{q_K}(L/2)^{q_L}"
           r"(\eta/2\cdot10^{-3})^{q_\eta}v\,\gamma\sigma_E^2d^{3/2}(\tau/\tau_0)^{\nu},\ "
           r"\rho(\tau)=\rho_0(d/128)^{r_d}(\eta/2\cdot10^{-3})^{r_\eta}(\tau/\tau_0)^{-\mu}")
D_REF, K_REF, L_REF = 128, 4, 2  # the CPU preset's shape: the exponents are relative to it
LR_REF = 2e-3  # the CPU preset's lr
TAU_REF = 0.4  # the CPU preset's cumulative lr (200 steps at 2e-3): the levels are read there
LATE_TAU = 0.1  # the late trend is fitted on evaluations at tau >= this (after the jump)


@dataclass(frozen=True)
class GrowthLaw:
    """The fitted constants (see the module doc) and where they were fitted."""

    kappa: float  # alpha_1/m at the reference shape and tau_0 (1/nats)
    q_d: float  # exponent of d in alpha_1/m (at d = 128)
    q_dd: float  # its curvature: alpha_1/m goes as (d/128)^(q_d + q_dd ln(d/128))
    q_K: float  # exponent of K in alpha_1/m
    q_L: float  # exponent of L in alpha_1/m
    q_lr: float  # exponent of the (constant) learning rate in alpha_1/m, at a given tau
    word_factor: float  # alpha_1/m of the regex-word vocabulary over bytes' (1 for bytes)
    rho: float  # rho_0: radial increment of loops >= 2 over ||H_1||, at the reference
    r_d: float  # exponent of d in rho
    r_lr: float  # exponent of the learning rate in rho
    nu: float  # late trend of ||H_1||: tau^nu
    mu: float  # late trend of rho: tau^-mu
    rate: float  # c: growth of ||H_1|| per unit tau before the plateau
    log_sd: float  # rms log error of the fit on its own runs (in-sample)
    domain: dict = field(default_factory=dict)  # name -> [low, high] fitted on
    cv_log_sd: float = 0.0  # rms log error of leave-one-group-out refits: the uncertainty

    def first_plateau(self, d, K, L, sigma_E, gain=1.0, word=False, tau=TAU_REF,
                      lr=LR_REF) -> float:
        """‖H_1‖ at the plateau at cumulative lr ``tau`` (premises 1 and 3)."""
        d, K, L, lr = (float(as_float(n, v, positive=True)) for n, v in (
            ("d", d), ("K", K), ("L", L), ("lr", lr)))
        x = math.log(d / D_REF)
        k = self.kappa * math.exp(self.q_d * x + self.q_dd * x * x) * (K / K_REF) ** self.q_K \
            * (L / L_REF) ** self.q_L * (lr / LR_REF) ** self.q_lr \
            * (self.word_factor if word else 1.0)
        late = (float(as_float("tau", tau, positive=True)) / TAU_REF) ** self.nu
        return float(k * as_float("gain", gain, positive=True)
                     * as_float("sigma_E", sigma_E, positive=True) ** 2 * d ** 1.5 * late)

    def ratio(self, tau, d=D_REF, lr=LR_REF) -> np.ndarray:
        """ρ(τ) = ρ_0 (d/128)^{r_d} (η/2e-3)^{r_lr} (τ/τ_0)^-μ."""
        tau = np.maximum(as_float("tau", tau, nonneg=True), 1e-12)
        return self.rho * (float(d) / D_REF) ** self.r_d * (float(lr) / LR_REF) ** self.r_lr \
            * (tau / TAU_REF) ** (-self.mu)

    def loop_scales(self, tau, s0_first, d, K, L, sigma_E, gain=1.0, word=False,
                    lr=LR_REF) -> Prediction:
        """Predicted ‖H_k‖, k = 1..K, at cumulative learning rates ``tau``: ``values["scale"]``
        of shape (len(tau), K), ``values["tau_plateau"]`` (when the rise meets the plateau of
        τ_0). During the rise the later loops' share grows with it: ρ_eff = ρ(max(τ, τ_p)) ×
        (‖H_1‖ − s_0)/(plateau − s_0), so every loop starts at ‖H_1‖ = s_0 at init (the
        measured init profile is within a few percent of flat)."""
        tau = as_float("tau", tau, ndim=1, nonneg=True)
        s0 = float(as_float("s0_first", s0_first, positive=True))
        plateau = np.array([self.first_plateau(d, K, L, sigma_E, gain, word, max(t, 1e-12), lr)
                            for t in tau])
        room = np.sqrt(np.maximum(plateau**2 - s0**2, 0.0))
        first = np.sqrt(s0**2 + np.minimum(self.rate * tau, room) ** 2)
        p0 = self.first_plateau(d, K, L, sigma_E, gain, word, TAU_REF, lr)
        t_plateau = np.sqrt(max(p0**2 - s0**2, 0.0)) / self.rate
        grown = np.clip((first - s0) / np.maximum(plateau - s0, 1e-12), 0.0, 1.0)
        rho = self.ratio(np.maximum(tau, t_plateau), d, lr) * grown
        loops = np.arange(int(K))  # k - 1
        scale = first[:, None] * (1 + loops[None, :] * rho[:, None])
        return Prediction("loop_scales", {"tau": tau, "scale": scale, "tau_plateau": t_plateau},
                          FORMULA, {"plateau_first": p0, "rho": self.rho, "s0": s0})

    def domain_issues(self, **values: float) -> list[str]:
        """What of ``values`` (d, K, L, tau, ...) lies outside the fitted ranges."""
        out = []
        for name, v in values.items():
            if name in self.domain:
                lo, hi = self.domain[name]
                if not lo <= v <= hi:
                    out.append(f"{name} = {v:g} outside the fitted {lo:g}..{hi:g}")
        return out


def final_log_errors(law: GrowthLaw, r: Run) -> np.ndarray:
    """log(predicted / measured) of every loop's final ‖H_k‖ of run ``r``."""
    p = law.loop_scales([r.tau[-1]], r.scale[0, 0], r.d, r.K, r.L, r.sigma_E, r.gain, r.word,
                        r.lr)["scale"][0]
    return np.log(p / r.scale[-1])


def cross_validated(runs: list[Run], groups: list[str]) -> GrowthLaw:
    """:func:`fit_growth_law` on every run, with ``cv_log_sd`` the rms log error of each
    group's runs (an arm's seeds) predicted by the law refitted without that group: the
    law's uncertainty out of sample, larger than its in-sample ``log_sd``."""
    if len(groups) != len(runs):
        raise ValueError("cross_validated needs one group name per run")
    errs = []
    for g in sorted(set(groups)):
        rest = [r for r, h in zip(runs, groups, strict=True) if h != g]
        held = [r for r, h in zip(runs, groups, strict=True) if h == g]
        try:
            law = fit_growth_law(rest)
        except ValueError:
            continue
        for r in held:
            errs.extend(final_log_errors(law, r))
    law = fit_growth_law(runs)
    return GrowthLaw(**{**law.__dict__, "cv_log_sd": float(np.sqrt(np.mean(np.square(errs))))})


@dataclass(frozen=True)
class Run:
    """What the fit needs of one trained run: its shape and init, and its evaluations
    (cumulative lr, per-loop ‖H_k‖) from init to the end."""

    d: int
    K: int
    L: int
    word: bool
    lr: float  # the constant learning rate
    sigma_E: float  # at init
    gain: float  # at init
    tau: np.ndarray  # (n,) cumulative lr of each evaluation (the first is 0, at init)
    scale: np.ndarray  # (n, K) evaluated ||H_k|| there
    curve_tau: np.ndarray  # cumulative lr of the logged training steps
    curve_first: np.ndarray  # ||H_1|| there (training batch)


def _common_slope(xs: list[np.ndarray], ys: list[np.ndarray]) -> float:
    """Least-squares slope shared by several series, each with a free intercept."""
    if not xs:
        return 0.0
    x = np.concatenate([v - v.mean() for v in xs])
    y = np.concatenate([v - v.mean() for v in ys])
    return float(np.sum(x * y) / np.sum(x * x)) if np.sum(x * x) > 0 else 0.0


def fit_growth_law(runs: list[Run]) -> GrowthLaw:
    """Fit the constants by least squares in log space over the runs' last evaluations:

    - κ, q_d, q_dd, q_K, q_L, q_lr, the word factor and ν: log(‖H_1‖/(γσ²d^{3/2})) on
      log(d/128), its square, log(K/4), log(L/2), log(η/2e-3), the vocabulary indicator and
      log(τ/τ_0) (a factor not varied is left at 1; the square of log d needs three widths);
    - ρ_0, r_d, r_lr and μ: log ρ, ρ = (‖H_K‖/‖H_1‖ − 1)/(K − 1), on log(d/128), log(η/2e-3)
      and log(τ/τ_0) (runs with K ≥ 2);
    - c: the median over runs of the largest (‖H_1‖² − s_0²)^{1/2}/τ over the logged training
      steps still below 90 % of the run's final ‖H_1‖ (the rise; a lower bound where the jump
      is over by the first logged step).

    The uncertainty is the rms log error of the fitted law's final ‖H_k‖ over every run and
    loop."""
    if len(runs) < 8:
        raise ValueError("fit_growth_law needs at least 8 runs (8 constants of the plateau)")

    def lstsq(X: np.ndarray, y: np.ndarray, needs_three_widths: int | None = None) -> np.ndarray:
        cols = [j for j in range(X.shape[1]) if j == 0 or np.ptp(X[:, j]) > 0]
        if needs_three_widths is not None and len({r.d for r in runs}) < 3:
            cols = [j for j in cols if j != needs_three_widths]
        coef = np.zeros(X.shape[1])
        coef[cols] = np.linalg.lstsq(X[:, cols], y, rcond=None)[0]
        return coef

    def logs(r: Run) -> tuple[float, float, float]:
        return np.log(r.d / D_REF), np.log(r.lr / LR_REF), np.log(r.tau[-1] / TAU_REF)

    X = np.array([[1.0, logs(r)[0], logs(r)[0] ** 2, np.log(r.K / K_REF), np.log(r.L / L_REF),
                   logs(r)[1], float(r.word), logs(r)[2]] for r in runs])
    y = np.array([np.log(r.scale[-1, 0] / (r.gain * r.sigma_E**2 * r.d**1.5)) for r in runs])
    c1 = lstsq(X, y, needs_three_widths=2)
    looped = [r for r in runs if r.K >= 2]
    Xr = np.array([[1.0, *logs(r)] for r in looped])
    yr = np.array([np.log(max(r.scale[-1, -1] / r.scale[-1, 0] - 1, 1e-6) / (r.K - 1))
                   for r in looped])
    c2 = lstsq(Xr, yr)
    rates = []
    for r in runs:
        rising = (r.curve_first < 0.9 * r.scale[-1, 0]) & (r.curve_tau > 0)
        if rising.any():
            rates.append(float(np.max(np.sqrt(np.maximum(
                r.curve_first[rising] ** 2 - r.scale[0, 0] ** 2, 0.0)) / r.curve_tau[rising])))
    if not rates:
        raise ValueError("no run logs a point of its rise: log the training curve earlier")
    law = GrowthLaw(float(np.exp(c1[0])), float(c1[1]), float(c1[2]), float(c1[3]),
                    float(c1[4]), float(c1[5]), float(np.exp(c1[6])),
                    float(np.exp(c2[0])), float(c2[1]), float(c2[2]), float(c1[7]),
                    float(-c2[3]), float(np.median(rates)), 0.0, {
                        "d": [min(r.d for r in runs), max(r.d for r in runs)],
                        "K": [min(r.K for r in runs), max(r.K for r in runs)],
                        "L": [min(r.L for r in runs), max(r.L for r in runs)],
                        "lr": [min(r.lr for r in runs), max(r.lr for r in runs)],
                        "tau": [0.0, max(float(r.tau[-1]) for r in runs)]})
    errs = np.concatenate([final_log_errors(law, r) for r in runs])
    return GrowthLaw(**{**law.__dict__, "log_sd": float(np.sqrt(np.mean(np.square(errs))))})

r"""Across training, for a whole looped LM: how large the scale-blind state ‖H_K‖ gets.

The *self-logit model* predicts the training curve of ‖H_K‖ under per-loop CE through a
scale-invariant readout tied to the token embedding E, from the init and the recipe. Write a
state as H = H_0 + B: the first state H_0 = E[x_t] + P[t] plus B, everything the residual
branches wrote. Premises:

1. **The tied readout decodes H_0 as the current token.** Through z = E·(γ ⊙ H/rms(H)) the
   embedding part of H gives the current token x_t the logit
   ⟨E[x_t], γ ⊙ E[x_t]⟩/rms(H) ≈ γ σ_E² d / rms(H) = γ σ_E² d^{3/2}/‖H‖ (embedding entries of
   std σ_E, width d, rms(H) = ‖H‖/√d, B about orthogonal to E[x_t]). Next-token prediction
   needs that self-logit small, at most some m (nats) the trained model tolerates.
2. **The readout does not see ‖H‖, so growing B is free.** Raising ‖H‖ lowers the self-logit
   without touching anything the loss sees; the blind state therefore settles where the
   self-logit is m:

   .. math:: s_\infty = \max\!\Big(\frac{\gamma\,\sigma_E^2\, d^{3/2}}{m},\; f\Big),

   with f the level the stream reaches for reasons unrelated to the embedding (the plateau of
   a run whose self-logit is already small: small σ_E, or an untied readout). A raw readout
   sees ‖H‖ and cancels H_0 instead; the model is silent about it.
3. **Growth is coherent.** Until the plateau, Adam moves each branch weight by ≈ η_t per step
   in a consistent direction, so ‖B‖ grows in proportion to the cumulative learning rate
   τ(t) = Σ_{i<t} η_i:

   .. math:: s(t) = \sqrt{s_0^2 + \min\!\big(c\,\tau(t),\ \sqrt{s_\infty^2 - s_0^2}\big)^2}.

s_0 (‖H_K‖ at init, measured before any step), σ_E, γ (1 at init) and d come from the init,
τ(t) from the recipe's schedule; the three constants m, f and c are fitted
(:func:`fit_self_logit_model`). The form itself (premises 1-3, the floor, the clock τ) was
chosen while looking at exploratory CPU runs (seed 100, not committed) and at the four
calibration arms it is fitted on; only the constants and the predictions were fixed before the
runs they predict. The model names its own limits: it holds σ_E and γ at their
initial values (Adam moves an N(0, 1) entry by at most τ ≈ 0.4 in 200 steps at lr 2e-3, but a
0.02 entry by 20x), and it says nothing about a readout that sees the scale. Tests:
``tests/test_toy_scale_growth.py``; the comparison with trained models is the claim
``growth.scale_prediction`` (:mod:`blindspot.experiments.scale_prediction`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from blindspot.toy._validate import as_float
from blindspot.toy.prediction import Prediction

FORMULA = (r"s(t)=\sqrt{s_0^2+\min\big(c\,\tau(t),\sqrt{s_\infty^2-s_0^2}\big)^2},\ "
           r"s_\infty=\max\big(\gamma\sigma_E^2d^{3/2}/m,\ f\big),\ \tau(t)=\sum_{i<t}\eta_i")


def cumulative_lr(lr_per_step) -> np.ndarray:
    """τ(t) for t = 0..T: ``tau[t]`` is the sum of the learning rates of the first t optimizer
    steps (``lr_per_step[i]`` is the lr of step i), so ``tau[0] = 0``."""
    lr = as_float("lr_per_step", lr_per_step, ndim=1, nonneg=True)
    return np.concatenate([[0.0], np.cumsum(lr)])


def self_logit(embed_std, width, scale, gain=1.0) -> np.ndarray:
    """γ σ_E² d^{3/2}/‖H‖: the logit a tied normalized readout gives the current token
    through the embedding part of a state of norm ``scale`` (premise 1)."""
    return (as_float("gain", gain, positive=True) * as_float("embed_std", embed_std, nonneg=True)
            ** 2 * as_float("width", width, positive=True) ** 1.5
            / as_float("scale", scale, positive=True))


def plateau_scale(embed_std, width, tolerated_logit, floor, gain=1.0) -> np.ndarray:
    """s_∞ = max(γ σ_E² d^{3/2}/m, f) (premise 2)."""
    m = as_float("tolerated_logit", tolerated_logit, positive=True)
    f = as_float("floor", floor, positive=True)
    need = self_logit(embed_std, width, 1.0, gain) / m  # the ‖H‖ at which the self-logit is m
    return np.maximum(need, f)


def predict_blind_scale(tau, s0, plateau, rate) -> Prediction:
    """Predicted ‖H_K‖ at cumulative learning rates ``tau``, from ‖H_K‖ = ``s0`` at init,
    growing at ``rate`` per unit τ until ``plateau`` (premise 3). ``values``: ``tau``,
    ``scale`` and ``tau_plateau``, the τ at which the plateau is reached."""
    tau = as_float("tau", tau, nonneg=True)
    s0 = float(as_float("s0", s0, positive=True))
    plateau = float(as_float("plateau", plateau, positive=True))
    c = float(as_float("rate", rate, positive=True))
    room = np.sqrt(max(plateau**2 - s0**2, 0.0))
    scale = np.sqrt(s0**2 + np.minimum(c * tau, room) ** 2)
    return Prediction("scale_K", {"tau": tau, "scale": scale, "tau_plateau": room / c},
                      FORMULA, {"s0": s0, "plateau": plateau, "rate": c})


@dataclass(frozen=True)
class SelfLogitFit:
    """The model's fitted constants and how well they fit the curves they came from."""

    tolerated_logit: float  # m, nats
    floor: float  # f, the plateau when the self-logit needs no growth
    rate: float  # c, growth of ‖B‖ per unit cumulative learning rate
    rms_log_error: float  # root mean square of log(predicted / measured) over the points
    n_points: int

    def predict(self, tau, s0, embed_std, width, gain=1.0) -> Prediction:
        plateau = float(plateau_scale(embed_std, width, self.tolerated_logit, self.floor, gain))
        return predict_blind_scale(tau, s0, plateau, self.rate)


@dataclass(frozen=True)
class Curve:
    """A measured training curve of ‖H_K‖ and what the model needs to know of its run."""

    tau: np.ndarray  # cumulative learning rate at each measured point
    scale: np.ndarray  # measured ‖H_K‖ there
    s0: float  # ‖H_K‖ at init
    embed_std: float  # σ_E at init
    width: int  # d


def fit_self_logit_model(curves: list[Curve]) -> SelfLogitFit:
    """Least squares in log ‖H_K‖ over every point of ``curves`` (log errors weigh a factor 2
    the same at 20 and at 2,000), for the three constants (m, f, c)."""
    if not curves:
        raise ValueError("fit_self_logit_model needs at least one curve")
    pts = []
    for i, cv in enumerate(curves):
        tau = as_float(f"curves[{i}].tau", cv.tau, ndim=1, nonneg=True)
        scale = as_float(f"curves[{i}].scale", cv.scale, ndim=1, positive=True)
        if tau.shape != scale.shape:
            raise ValueError(f"curves[{i}]: tau has {tau.size} points but scale {scale.size}")
        pts.append((tau, scale, cv))
    if sum(t.size for t, _, _ in pts) < 3:
        raise ValueError("fit_self_logit_model needs at least 3 points to fit 3 constants")

    def residual(p: np.ndarray) -> np.ndarray:
        m, f, c = np.exp(p)
        out = []
        for tau, scale, cv in pts:
            plateau = float(plateau_scale(cv.embed_std, cv.width, m, f))
            pred = predict_blind_scale(tau, cv.s0, plateau, c)["scale"]
            out.append(np.log(pred) - np.log(scale))
        return np.concatenate(out)

    # start: f at the smallest plateau seen, m from the largest, c from the steepest rise
    last = np.array([s[-1] for _, s, _ in pts])
    big = pts[int(np.argmax(last))][2]
    m0 = float(self_logit(big.embed_std, big.width, last.max())) or 1.0
    rises = [s[0] / t[0] for t, s, _ in pts if t[0] > 0]
    c0 = float(np.median(rises)) if rises else 1.0
    fit = least_squares(residual, np.log([max(m0, 1e-6), last.min(), max(c0, 1e-6)]))
    m, f, c = np.exp(fit.x)
    return SelfLogitFit(float(m), float(f), float(c), float(np.sqrt(np.mean(fit.fun**2))),
                        int(fit.fun.size))


def rate_at_width(rate_ref: float, width_ref: int, writes_ref: int, width: int,
                  writes: int) -> float:
    r"""Carry c to another model: :math:`c \propto W\, d^{3/2}`, with W the residual writes per
    forward (2 per layer per loop) and d the width. Premise: a sign-coherent Adam step of a
    d×d output projection, by η in every coordinate, moves its output by
    :math:`\eta\,\lVert x\rVert_1\sqrt{d} \approx \eta\, d^{3/2}` for an input x of unit RMS,
    and B adds W such outputs. An extrapolation, not a measurement: no CPU run varies d."""
    for name, v in (("rate_ref", rate_ref), ("width_ref", width_ref), ("writes_ref", writes_ref),
                    ("width", width), ("writes", writes)):
        as_float(name, v, positive=True)
    return rate_ref * (writes / writes_ref) * (width / width_ref) ** 1.5

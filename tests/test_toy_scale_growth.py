"""The self-logit model of ‖H_K‖ over training: its premise 1 against a direct computation,
its closed form, and its fit recovering known constants from curves it generated."""

import math

import numpy as np
import pytest
import torch

from blindspot.nn import rms_norm
from blindspot.toy.scale_growth import (
    Curve,
    cumulative_lr,
    fit_self_logit_model,
    plateau_scale,
    predict_blind_scale,
    rate_at_width,
    self_logit,
)


@pytest.mark.parametrize("sigma, d, extra", [(1.0, 128, 1000.0), (0.3, 256, 200.0),
                                              (1.0, 512, 8000.0)])
def test_self_logit_is_the_tied_readouts_logit_of_the_current_token(sigma, d, extra):
    """Premise 1: through z = E·N(H_0 + B) the current token's logit from the embedding part
    is γσ²d^{3/2}/‖H‖, for B orthogonal to E[x] of any size."""
    g = torch.Generator().manual_seed(0)
    E = sigma * torch.randn(64, d, generator=g, dtype=torch.float64)  # 64 tokens' embeddings
    B = torch.randn(64, d, generator=g, dtype=torch.float64)
    B -= (B * E).sum(-1, keepdim=True) / (E * E).sum(-1, keepdim=True) * E  # B ⟂ E[x]
    B *= extra / B.norm(dim=-1, keepdim=True)
    H = E + B
    z_self = (E * rms_norm(H)).sum(-1)  # ⟨E[x], N(H)⟩ per token, γ = 1, ε = 0
    closed = torch.as_tensor(self_logit(sigma, d, H.norm(dim=-1).numpy()))
    # ‖E[x]‖² = σ²·χ²_d: its relative spread is √(2/d) ≤ 12.5 % per token; over 64 tokens the
    # mean is within ~2 % (4 sigma), so 5 % checks the formula, not the sampling
    assert abs((z_self / closed).mean().item() - 1) < 0.05


def test_closed_form_growth_and_plateau():
    tau = cumulative_lr([0.01] * 100)  # constant lr: τ(t) = 0.01 t
    assert tau[0] == 0 and tau[-1] == pytest.approx(1.0)
    p = predict_blind_scale(tau, s0=3.0, plateau=5.0, rate=2.0)
    s = p["scale"]
    assert s[0] == pytest.approx(3.0)  # at init
    assert s[10] == pytest.approx(math.hypot(3.0, 2.0 * 0.1))  # growing: √(s0² + (cτ)²)
    assert p["tau_plateau"] == pytest.approx(4.0 / 2.0)  # room √(25 - 9) = 4 at rate 2
    assert np.all(np.diff(s) >= 0) and s.max() <= 5.0
    big = predict_blind_scale(tau, s0=3.0, plateau=5.0, rate=100.0)["scale"]
    assert big[-1] == pytest.approx(5.0)  # capped at the plateau
    assert predict_blind_scale(tau, 6.0, 5.0, 1.0)["scale"][-1] == pytest.approx(6.0)
    # the plateau: the self-logit term or the floor, whichever is larger
    assert plateau_scale(1.0, 128, 1.5, 100.0) == pytest.approx(128**1.5 / 1.5)
    assert plateau_scale(0.1, 128, 1.5, 100.0) == pytest.approx(100.0)


def test_fit_recovers_the_constants_of_curves_it_generated():
    m, f, c = 1.5, 80.0, 15000.0
    rng = np.random.default_rng(0)
    curves = []
    for sigma, lr in ((1.0, 2e-3), (0.3, 2e-3), (0.1, 2e-3), (1.0, 3e-4)):
        tau = cumulative_lr([lr] * 200)[5::5]
        plateau = float(plateau_scale(sigma, 128, m, f))
        s = predict_blind_scale(tau, 18.0, plateau, c)["scale"]
        noisy = s * np.exp(0.02 * rng.standard_normal(s.shape))  # 2 % measurement noise
        curves.append(Curve(tau, noisy, 18.0, sigma, 128))
    fit = fit_self_logit_model(curves)
    # 160 points with 2 % log noise pin each constant to well under 5 %
    assert fit.tolerated_logit == pytest.approx(m, rel=0.05)
    assert fit.floor == pytest.approx(f, rel=0.05)
    assert fit.rate == pytest.approx(c, rel=0.05)
    assert fit.rms_log_error == pytest.approx(0.02, rel=0.2)
    pred = fit.predict(curves[0].tau, 18.0, 1.0, 128)["scale"]
    assert np.allclose(pred, predict_blind_scale(curves[0].tau, 18.0, 128**1.5 / m, c)["scale"],
                       rtol=0.05)


def test_rate_carries_with_writes_and_width_to_the_power_three_halves():
    assert rate_at_width(10.0, 128, 16, 128, 16) == 10.0
    assert rate_at_width(10.0, 128, 16, 512, 64) == pytest.approx(10.0 * 4 * 8)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="at least one curve"):
        fit_self_logit_model([])
    with pytest.raises(ValueError, match="tau has 3 points but scale 2"):
        fit_self_logit_model([Curve(np.ones(3), np.ones(2), 1.0, 1.0, 8)])
    with pytest.raises(ValueError, match="s0 must be > 0"):
        predict_blind_scale([0.0], 0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="lr_per_step contains NaN"):
        cumulative_lr([1.0, float("nan")])

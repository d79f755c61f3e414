"""The scale-visible loss controls: values, radial forces against their closed forms, errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from blindspot.control import NormPenalty, RawReadoutLoss
from blindspot.train import losses

# float64: ⟨h, g⟩ over d ≤ 64 terms carries ~d·2.2e-16 of its size; a wrong factor is O(1)
scales = st.floats(min_value=-6, max_value=6).map(lambda e: 10.0 ** e)


def _state(seed: int, scale: float, d: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(2, 3, d, generator=g, dtype=torch.float64)  # (B, T, d)


def _radial(term, h):
    """(B, T) ⟨h, ∇_h Σ term(h)⟩."""
    h = h.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(term(h).sum(), h)
    return (h * g).sum(-1)


@settings(max_examples=25, deadline=None)
@given(scale=scales, lam=st.floats(1e-4, 1.0), d=st.integers(2, 64), seed=st.integers(0, 99))
def test_norm_penalty_radial_force_matches_closed_form(tol, scale, lam, d, seed):
    h = _state(seed, scale, d)
    p = NormPenalty(lam)
    closed = 2 * lam * h.pow(2).sum(-1) / d  # NORM_PENALTY: 2λ‖h‖²/n
    torch.testing.assert_close(_radial(p.per_token, h), closed, rtol=tol.float64, atol=0)
    torch.testing.assert_close(p.radial_force(h), closed, rtol=tol.float64, atol=0)


def test_norm_penalty_is_the_trainers_and_upcasts_bf16(tol):
    states = [_state(k, 10.0 ** k) for k in range(3)]
    # the same mean of squares, summed per token first: float64 round-off only
    torch.testing.assert_close(NormPenalty(0.01)(states), losses.norm_penalty(states, 0.01),
                               rtol=tol.float64, atol=0)
    low = [h.bfloat16() for h in states]
    value = NormPenalty(0.01)(low)
    assert value.dtype == torch.float32  # accumulated in float32, as the trainer does
    # float32 summation order: a few units of 6e-8
    torch.testing.assert_close(value, losses.norm_penalty(low, 0.01), rtol=1e-6, atol=0)


def _head(d: int, V: int, seed: int, bias: bool = True) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(d, V, bias=bias, dtype=torch.float64)


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(-3, 2).map(lambda e: 10.0 ** e), mu=st.floats(1e-3, 1.0),
       bias=st.booleans(), seed=st.integers(0, 99))
def test_raw_readout_radial_force_matches_closed_form(tol, scale, mu, bias, seed):
    h = _state(seed, scale)
    head = _head(16, 7, seed, bias)
    y = torch.randint(0, 7, (2, 3), generator=torch.Generator().manual_seed(seed))
    aux = RawReadoutLoss(head, mu)
    with torch.no_grad():
        z0 = h @ head.weight.T  # (B, T, V) linear part W h
        p = head(h).softmax(-1)
        closed = mu * ((p * z0).sum(-1) - z0.gather(-1, y[..., None])[..., 0])  # RAW_READOUT
    # relative to the logits' size: E_p[z0] − z0_y is a difference of O(‖z0‖) terms
    atol = tol.float64 * max(1.0, z0.abs().max().item())
    torch.testing.assert_close(_radial(lambda s: aux.per_token(s, y), h), closed, rtol=tol.float64,
                               atol=atol)
    torch.testing.assert_close(aux.radial_force(h, y).detach(), closed, rtol=tol.float64, atol=atol)


def test_raw_readout_loss_is_mu_times_the_mean_raw_ce(tol):
    states = [_state(k, 1.0) for k in range(3)]
    head = _head(16, 7, 0)
    y = torch.randint(0, 7, (2, 3), generator=torch.Generator().manual_seed(0))
    want = 0.3 * sum(F.cross_entropy(head(h).flatten(0, 1), y.flatten()) for h in states) / 3
    torch.testing.assert_close(RawReadoutLoss(head, 0.3)(states, y), want, rtol=tol.float64, atol=0)


def test_loss_controls_name_bad_input():
    h = _state(0, 1.0)
    y = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="got no states: record them"):
        NormPenalty(0.01)([])
    with pytest.raises(FloatingPointError, match="NaN or inf .* lower the learning rate"):
        NormPenalty(0.01)([h, h * math.inf])
    with pytest.raises(ValueError, match=r"weight \(λ\) must be >= 0"):
        NormPenalty(-1.0)
    with pytest.raises(TypeError, match="head must be callable"):
        RawReadoutLoss("lm_head")
    flat = RawReadoutLoss(lambda s: s.flatten(0, 1) @ torch.ones(16, 7, dtype=s.dtype))
    with pytest.raises(ValueError, match=r"returned \(6, 7\) for a state of shape \(2, 3, 16\): "
                                         r"it must map \(B, T, d\) to \(B, T, V\)"):
        flat([h], y)
    with pytest.raises(ValueError, match=r"targets of shape \(2, 3\) .* got \(2, 2\)"):
        RawReadoutLoss(_head(16, 7, 0))([h], y[:, :2])

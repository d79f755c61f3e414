"""The training objectives against hand computations, and the radial force each one puts on a
state (proofs/euler.md, proofs/eps_leak.md, proofs/readouts.md): none through an ε = 0 RMSNorm
readout, E_p[z] − z_y through a raw one, 2λ‖H‖²/(K·N·d) from the norm penalty."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from blindspot.nn.functional import rms_norm
from blindspot.train import losses as L


def _batch(seed, K=3, B=2, T=5, d=6, V=7, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    states = [scale * torch.randn(B, T, d, generator=g, dtype=torch.float64) for _ in range(K)]
    W = torch.randn(V, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, V, (B, T), generator=g)
    return states, W, y


def test_per_loop_ce_is_the_mean_negative_log_likelihood(tol):
    states, W, y = _batch(0)
    logits = [h @ W.T for h in states]
    ce = L.per_loop_cross_entropy(logits, y)
    hand = torch.stack([-z.log_softmax(-1).gather(-1, y[..., None]).mean() for z in logits])
    assert ce.dtype == torch.float64 and torch.allclose(ce, hand, atol=tol.float64)
    assert torch.allclose(L.supervision_loss(ce, "per_loop"), ce.mean())
    assert L.supervision_loss(ce, "terminal") == ce[-1]
    with pytest.raises(ValueError, match="valid: per_loop, terminal"):
        L.supervision_loss(ce, "dense")


def test_norm_penalty_is_lambda_times_mean_square_activation(tol):
    states, _, _ = _batch(1)
    d = states[0].shape[-1]
    hand = sum((h.norm(dim=-1) ** 2 / d).mean() for h in states) / len(states)
    assert abs(L.norm_penalty(states, 0.01).item() - 0.01 * hand.item()) < tol.float64 * hand.item()
    direct = torch.stack([h.norm(dim=-1).mean() for h in states])
    assert torch.allclose(L.mean_scale(states), direct, atol=0, rtol=tol.float64)


@given(seed=st.integers(0, 10_000), log_scale=st.floats(-3, 3), lam=st.floats(1e-4, 1.0))
@settings(max_examples=40, deadline=None)
def test_radial_force_of_each_objective(tol, seed, log_scale, lam):
    states, W, y = _batch(seed, scale=10.0 ** log_scale)
    K, (B, T, d) = len(states), states[0].shape
    hs = [h.clone().requires_grad_(True) for h in states]

    # per-loop CE through an ε = 0 RMSNorm readout: no radial force on any state (proofs/euler.md)
    logits = [rms_norm(h, None, 0.0) @ W.T for h in hs]  # K x (B, T, V)
    loss = L.supervision_loss(L.per_loop_cross_entropy(logits, y), "per_loop")
    grads = torch.autograd.grad(loss, hs)
    for h, g in zip(hs, grads, strict=True):
        radial = (h * g).sum()
        # relative to ‖h‖·‖g‖ the radial share is float64 round-off
        assert abs(radial.item()) <= tol.float64 * h.norm().item() * g.norm().item()

    # the norm penalty: ⟨H_k, ∇P⟩ = 2λ‖H_k‖²/(K·B·T·d) (proofs/readouts.md, mean-square form)
    grads = torch.autograd.grad(L.norm_penalty(hs, lam), hs)
    for h, g in zip(hs, grads, strict=True):
        want = 2 * lam * (h.detach() ** 2).sum() / (K * B * T * d)
        assert abs((h.detach() * g).sum() - want) <= tol.float64 * want


def test_raw_readout_radial_force_is_the_inverse_temperature_derivative(tol):
    states, W, y = _batch(2, K=1)
    h = states[0].clone().requires_grad_(True)  # (B, T, d)
    z = h @ W.T  # (B, T, V)
    ce = torch.nn.functional.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1),
                                           reduction="sum")
    (g,) = torch.autograd.grad(ce, h)
    p = z.detach().softmax(-1)
    want = ((p * z.detach()).sum(-1) - z.detach().gather(-1, y[..., None]).squeeze(-1)).sum()
    assert abs((h.detach() * g).sum() - want) <= tol.float64 * (1 + abs(want))
    assert abs(want) > 1e-3  # and it is not zero: the raw readout sees the scale


def test_objective_adds_the_penalty_only_when_lambda_is_positive():
    states, W, y = _batch(3)
    logits = [h @ W.T for h in states]
    l0, ce = L.objective(logits, states, y, "terminal", 0.0)
    l1, _ = L.objective(logits, states, y, "terminal", 0.5)
    assert l0 == ce[-1]
    assert torch.allclose(l1 - l0, L.norm_penalty(states, 0.5).to(l1.dtype))

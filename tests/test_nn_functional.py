"""The functional kernels of blindspot.nn against their formulas (float64), and the
invariances proofs/normalizers.md and proofs/lemma2.md state for them."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from blindspot.nn import causal_attention, layer_norm, radial_split, rms_norm
from blindspot.nn import functional as BF

# float64 round-off of a handful of O(1) operations on O(1) numbers is ~1e-16 relative, far
# inside tol.float64; a wrong formula would be off at the 1e-1 level.
EPSILONS = st.sampled_from([0.0, 1e-8, 1e-6, 1e-5])
SCALES = st.floats(1e-3, 1e3)


def _x(seed: int, shape=(3, 5, 16)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), log_scale=st.floats(-6, 6), eps=EPSILONS)
def test_rms_norm_matches_its_formula(tol, seed, log_scale, eps):
    x = _x(seed) * 10.0**log_scale
    w = _x(seed + 1, (16,))
    r = torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    torch.testing.assert_close(rms_norm(x, w, eps), w * x / r, rtol=tol.float64, atol=0)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), c=SCALES)
def test_rms_norm_is_scale_invariant_at_eps_zero(tol, seed, c):
    x, w = _x(seed), _x(seed + 1, (16,))
    torch.testing.assert_close(rms_norm(c * x, w, 0.0), rms_norm(x, w, 0.0),
                               rtol=tol.float64, atol=tol.float64)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), log_scale=st.floats(-6, 6), eps=EPSILONS)
def test_layer_norm_matches_its_formula(tol, seed, log_scale, eps):
    x = _x(seed) * 10.0**log_scale
    w, b = _x(seed + 1, (16,)), _x(seed + 2, (16,))
    px = x - x.mean(-1, keepdim=True)
    sigma = torch.sqrt(px.pow(2).mean(-1, keepdim=True) + eps)
    # atol: the bias b is O(1) and is added to w·Px/σ = O(1); tol.float64 of O(1) absolute.
    torch.testing.assert_close(layer_norm(x, w, b, eps), w * px / sigma + b,
                               rtol=tol.float64, atol=tol.float64)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), c=SCALES, shift=st.floats(-10, 10))
def test_layer_norm_is_scale_and_shift_invariant_at_eps_zero(seed, c, shift):
    x, w, b = _x(seed), _x(seed + 1, (16,)), _x(seed + 2, (16,))
    # The shift b·1 is removed by the mean subtraction, which in float64 leaves round-off of
    # order |shift|·1e-16 relative to a unit-size centred vector: 1e-10 bounds it for |shift| <= 10.
    torch.testing.assert_close(layer_norm(c * x + shift, w, b, 0.0), layer_norm(x, w, b, 0.0),
                               rtol=1e-10, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), log_h=st.floats(-8, 8), log_d=st.floats(-8, 8))
def test_radial_split_reconstructs_and_is_orthogonal(tol, seed, log_h, log_d):
    h, delta = _x(seed) * 10.0**log_h, _x(seed + 1) * 10.0**log_d
    a, perp = radial_split(h, delta)
    s = h.norm(dim=-1)
    u = h / s.unsqueeze(-1)
    assert a.shape == h.shape[:-1] and perp.shape == h.shape
    scale_d = delta.norm(dim=-1)
    # Δ = a·u + Δ⊥ and ⟨u, Δ⊥⟩ = 0 up to float64 round-off relative to ‖Δ‖.
    torch.testing.assert_close(a.unsqueeze(-1) * u + perp, delta, rtol=0,
                               atol=tol.float64 * scale_d.max().item())
    assert ((u * perp).sum(-1).abs() <= tol.float64 * scale_d).all()
    # The exact expansion of proofs/lemma2.md: ‖h+Δ‖² = ‖h‖² + 2‖h‖a + ‖Δ‖²; relative round-off is
    # measured against the largest term.
    lhs = (h + delta).pow(2).sum(-1)
    rhs = s**2 + 2 * s * a + scale_d**2
    big = torch.maximum(s**2, scale_d**2)
    assert ((lhs - rhs).abs() <= tol.float64 * big).all()


def test_radial_split_of_a_zero_state_is_all_tangential():
    h = torch.zeros(2, 4, dtype=torch.float64)
    delta = _x(0, (2, 4))
    a, perp = radial_split(h, delta)
    assert torch.equal(a, torch.zeros(2, dtype=torch.float64))
    assert torch.equal(perp, delta)


def test_radial_split_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        radial_split(torch.ones(2, 4), torch.ones(2, 5))


def test_causal_attention_matches_explicit_softmax(tol):
    q, k, v = (_x(s, (2, 3, 7, 4)) for s in (1, 2, 3))  # (B, H, T, d_h)
    scores = q @ k.transpose(-1, -2) / math.sqrt(4)  # (B, H, T, T)
    future = torch.triu(torch.ones(7, 7, dtype=torch.bool), diagonal=1)
    expected = scores.masked_fill(future, float("-inf")).softmax(-1) @ v
    torch.testing.assert_close(causal_attention(q, k, v), expected, rtol=tol.float64,
                               atol=tol.float64)


@pytest.mark.parametrize("T", [1, 2, 7, 33])
def test_explicit_attention_equals_sdpa_in_float64(tol, T):
    """The two kernels of causal_attention compute one function: outputs and the gradients
    of q, k, v agree at dropout 0. Both evaluate a softmax over at most 33 terms of O(1)
    numbers and two products of that length in float64, where round-off is ~1e-15; a wrong
    mask, scale or softmax axis would be off at the 1e-1 level. T = 1 is the first token,
    which attends to itself only."""
    q, k, v = (_x(s, (2, 3, T, 4)).requires_grad_() for s in (1, 2, 3))  # (B, H, T, d_h)
    up = _x(4, (2, 3, T, 4))  # an upstream gradient that weighs every output differently
    out, grads = {}, {}
    for kernel in ("sdpa", "explicit", "blocked", "auto"):
        y = causal_attention(q, k, v, kernel=kernel)
        out[kernel] = y
        grads[kernel] = torch.autograd.grad((y * up).sum(), (q, k, v))
    for kernel in ("explicit", "blocked", "auto"):
        torch.testing.assert_close(out[kernel], out["sdpa"], rtol=tol.float64, atol=tol.float64)
        for a, b in zip(grads[kernel], grads["sdpa"], strict=True):
            torch.testing.assert_close(a, b, rtol=tol.float64, atol=tol.float64)


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 40), block=st.integers(1, 48), seed=st.integers(0, 2**16))
def test_blocked_attention_equals_explicit_for_any_block_size(tol, T, block, seed):
    """Blocks that end mid-sequence, a short last block, one block longer than T: every split
    of the queries computes the same function and gradients (float64 round-off, as above)."""
    q, k, v = (_x(seed + s, (2, 2, T, 4)).requires_grad_() for s in (1, 2, 3))
    up = _x(seed + 4, (2, 2, T, 4))
    ys = {"explicit": BF.explicit_causal_attention(q, k, v),
          "blocked": BF.blocked_causal_attention(q, k, v, block=block)}
    gs = {n: torch.autograd.grad((y * up).sum(), (q, k, v)) for n, y in ys.items()}
    torch.testing.assert_close(ys["blocked"], ys["explicit"], rtol=tol.float64, atol=tol.float64)
    for a, b in zip(gs["blocked"], gs["explicit"], strict=True):
        torch.testing.assert_close(a, b, rtol=tol.float64, atol=tol.float64)


def test_blocked_attention_in_bf16_is_as_close_as_the_explicit_kernel():
    """In bf16 (the CPU recipe), the blocked kernel keeps S and P in bf16 where the explicit
    one keeps P in float32 until the product with V: against a float64 reference both are off
    by bf16 round-off (8 mantissa bits: ~4e-3 per rounding, a few roundings), and the blocked
    one by no more than 1.5x the explicit one's error plus one bf16 ulp of the output."""
    q, k, v = (_x(s, (4, 4, 256, 32)) for s in (1, 2, 3))
    ref = BF.explicit_causal_attention(q, k, v)
    err = {}
    for name, fn in (("explicit", BF.explicit_causal_attention),
                     ("blocked", BF.blocked_causal_attention)):
        y = fn(*(t.bfloat16() for t in (q, k, v))).double()
        err[name] = ((y - ref).abs().max() / ref.abs().max()).item()
    assert err["explicit"] < 3e-2 and err["blocked"] < 3e-2, err
    assert err["blocked"] <= 1.5 * err["explicit"] + 2 ** -8, err


def test_blocked_attention_dropout_keeps_a_fraction_and_is_seeded(tol):
    """With V = I the output is the dropped probability matrix: kept entries are P/(1 − p),
    the future stays 0, about a fraction p of the causal pairs is dropped, a seed fixes the
    masks, and the expectation over masks is P (the average of 400 masked matrices within 4
    binomial standard deviations of it)."""
    p, B, H, T = 0.3, 2, 3, 24
    q, k = _x(1, (B, H, T, 4)), _x(2, (B, H, T, 4))
    eye = torch.eye(T, dtype=torch.float64).expand(B, H, T, T)
    probs = BF.explicit_causal_attention(q, k, eye)
    torch.manual_seed(7)
    dropped = BF.blocked_causal_attention(q, k, eye, p, block=5)
    torch.manual_seed(7)
    again = BF.blocked_causal_attention(q, k, eye, p, block=5)
    assert torch.equal(dropped, again)  # a seed fixes the masks
    causal = torch.ones(T, T, dtype=torch.bool).tril().expand(B, H, T, T)
    kept = dropped != 0
    assert not (kept & ~causal).any()
    torch.testing.assert_close(dropped[kept], probs[kept] / (1 - p), rtol=tol.float64, atol=0)
    share = 1 - kept.sum().item() / causal.sum().item()
    assert abs(share - p) < 0.05, share  # 1,800 causal pairs: binomial sd 0.011
    mean = torch.stack([BF.blocked_causal_attention(q, k, eye, p, block=5)
                        for _ in range(400)]).mean(0)
    # per entry: sd of the mean = P sqrt(p/(1-p)) / sqrt(400) <= 0.033 P
    assert ((mean - probs).abs() <= 4 * 0.033 * probs + 1e-12).all()


def test_auto_kernel_picks_blocked_for_cpu_dropout_and_sdpa_otherwise():
    assert BF.resolve_attention_kernel("auto", 0.1, "cpu") == "blocked"
    assert BF.resolve_attention_kernel("auto", 0.0, "cpu") == "sdpa"  # evaluation
    assert BF.resolve_attention_kernel("auto", 0.1, "cuda") == "sdpa"  # flash with dropout
    assert BF.resolve_attention_kernel("explicit", 0.1, "cuda") == "explicit"
    with pytest.raises(ValueError, match="block = 0"):
        BF.blocked_causal_attention(*(_x(s, (1, 1, 4, 2)) for s in (1, 2, 3)), block=0)


def test_explicit_attention_drops_the_probabilities_and_nothing_else(tol):
    """With V = I the output is the dropped probability matrix itself: each entry is 0 or the
    kept probability times 1/(1 − p), the future stays 0, and about a fraction p of the
    T(T+1)/2 causal pairs is dropped. With the same seed and any other V the output is that
    same matrix times V: dropout falls on the probabilities only (not on the scores, which
    would renormalize the rows, nor on the output, whose entries are not of that form)."""
    p, B, H, T = 0.3, 2, 3, 24
    q, k = _x(1, (B, H, T, 4)), _x(2, (B, H, T, 4))
    eye = torch.eye(T, dtype=torch.float64).expand(B, H, T, T)
    probs = causal_attention(q, k, eye, kernel="explicit")  # P itself, no dropout
    torch.manual_seed(7)
    dropped = causal_attention(q, k, eye, dropout_p=p, kernel="explicit")  # dropout(P)
    causal = torch.ones(T, T, dtype=torch.bool).tril().expand(B, H, T, T)
    kept = dropped != 0
    assert not (kept & ~causal).any()  # the future stays masked
    # kept entries are P / (1 − p): one float64 multiplication apart, ~1e-16 relative
    torch.testing.assert_close(dropped[kept], probs[kept] / (1 - p), rtol=tol.float64, atol=0)
    # a fraction p of the B·H·T(T+1)/2 = 1,800 causal pairs is dropped: the binomial standard
    # deviation is √(p(1 − p)/1800) ≈ 0.011, so ±0.05 is more than 4 of them
    share = 1 - kept.sum().item() / causal.sum().item()
    assert abs(share - p) < 0.05, share
    v = _x(3, (B, H, T, 5))
    torch.manual_seed(7)  # the same draws: the mask has the shape of P, whatever V is
    y = causal_attention(q, k, v, dropout_p=p, kernel="explicit")
    # dropout(P) @ V computed two ways, sums of 24 O(1) float64 terms
    torch.testing.assert_close(y, dropped @ v, rtol=tol.float64, atol=tol.float64)


def test_causal_attention_rejects_an_unknown_kernel():
    q = _x(1, (1, 1, 2, 4))
    with pytest.raises(ValueError, match="kernel = 'flash'; valid choices are 'sdpa', "
                                         "'explicit', 'blocked', 'auto'"):
        causal_attention(q, q, q, kernel="flash")

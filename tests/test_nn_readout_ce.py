"""The per-loop readout cross-entropy: the chunked path equals the plain one (values and
gradients) over drawn shapes, in float64 to round-off and in float32 and bf16 to their
round-off; it keeps no logits for backward; and every CPU preset stays on the plain path."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from blindspot.nn import LoopedLM, ModelConfig
from blindspot.nn.readout_ce import (
    PLAIN_MAX_BYTES,
    chunked,
    readout_cross_entropy,
)
from blindspot.train.config import load_config

# float64: both paths sum the same O(1) terms (log-sum-exp over V ≤ 40 logits, means over
# N ≤ 21 rows, gradient sums over K·N ≤ 84 rows) in different orders; round-off is ~1e-15
# relative, far inside tol.float64, and any wrong term is O(0.1).
# float32: the same sums with eps = 1.2e-7; a log-sum-exp over V ≤ 40 terms and a gradient sum
# over K·N ≤ 84 rows in another order move the result by at most ~10-100 eps of its size:
# tol.float32 (with the same absolute floor, scaled by the tensor's size).


def _problem(seed, K, B, T, d, V, dtype, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    feats = [(scale * torch.randn(B, T, d, generator=g, dtype=dtype)).requires_grad_()
             for _ in range(K)]
    weight = torch.randn(V, d, generator=g, dtype=dtype).requires_grad_()
    targets = torch.randint(0, V, (B, T), generator=g)
    upstream = torch.randn(K, generator=g, dtype=dtype)  # any weighting of the loops
    return feats, weight, targets, upstream


def _value_and_grads(feats, weight, targets, upstream, **kw):
    ce = readout_cross_entropy(feats, weight, targets, **kw)
    grads = torch.autograd.grad((ce * upstream).sum(), [weight, *feats])
    return ce.detach(), grads


def _close(a, b, tol):
    scale = max(b.abs().max().item(), 1e-30)  # entries near 0 are held to the tensor's size
    torch.testing.assert_close(a, b, rtol=tol, atol=tol * scale)


SHAPES = dict(K=st.integers(1, 4), B=st.integers(1, 3), T=st.integers(1, 7),
              d=st.integers(1, 12), V=st.integers(2, 40), rows=st.integers(1, 9),
              seed=st.integers(0, 2**16))


@settings(max_examples=30, deadline=None)
@given(**SHAPES, log_scale=st.floats(-2, 1))
def test_chunked_equals_plain_in_float64(tol, K, B, T, d, V, rows, seed, log_scale):
    p = _problem(seed, K, B, T, d, V, torch.float64, 10.0**log_scale)
    want, want_g = _value_and_grads(*p)
    got, got_g = _value_and_grads(*p, max_bytes=0, chunk_bytes=4 * V * rows)
    _close(got, want, tol.float64)
    for a, b in zip(got_g, want_g, strict=True):
        _close(a, b, tol.float64)


@settings(max_examples=20, deadline=None)
@given(**SHAPES)
def test_chunked_equals_plain_in_float32(tol, K, B, T, d, V, rows, seed):
    p = _problem(seed, K, B, T, d, V, torch.float32)
    want, want_g = _value_and_grads(*p)
    got, got_g = _value_and_grads(*p, max_bytes=0, chunk_bytes=4 * V * rows)
    assert got.dtype == want.dtype == torch.float32
    _close(got, want, tol.float32)
    for a, b in zip(got_g, want_g, strict=True):
        _close(a, b, tol.float32)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_other_reductions_match_the_plain_per_token_cross_entropy(tol, reduction):
    feats, weight, targets, _ = _problem(0, 3, 2, 5, 8, 11, torch.float64)
    want = torch.stack([F.cross_entropy((x @ weight.T).flatten(0, 1), targets.flatten(),
                                        reduction=reduction) for x in feats])
    for max_bytes in (PLAIN_MAX_BYTES, 0):
        got = readout_cross_entropy(feats, weight, targets, reduction=reduction,
                                    max_bytes=max_bytes, chunk_bytes=4 * 11 * 3)
        _close(got.detach(), want.detach(), tol.float64)


def test_logits_without_a_weight_are_the_plain_cross_entropy():
    feats, weight, targets, _ = _problem(1, 2, 2, 4, 6, 9, torch.float32)
    logits = [x @ weight.T for x in feats]
    got = readout_cross_entropy(logits, None, targets)
    want = torch.stack([F.cross_entropy(z.flatten(0, 1), targets.flatten()) for z in logits])
    assert torch.equal(got, want)  # the same operations: bit for bit
    wide = readout_cross_entropy(logits, None, targets, reduction="none", dtype=torch.float64)
    assert wide.dtype == torch.float64 and wide.shape == (2, 8)


def test_bf16_autocast_chunks_agree_with_plain_to_bf16_round_off():
    feats, weight, targets, upstream = _problem(2, 4, 4, 16, 32, 64, torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want, want_g = _value_and_grads(feats, weight, targets, upstream)
        got, got_g = _value_and_grads(feats, weight, targets, upstream, max_bytes=0,
                                      chunk_bytes=4 * 64 * 10)
    assert got.dtype == want.dtype == torch.float32  # the loss is computed in float32
    assert all(g.dtype == torch.float32 for g in got_g)  # float32 master weights keep theirs
    # bf16 keeps 8 significant bits: each logit and each gradient entry is rounded by up to
    # 2^-9 ≈ 2e-3 relative, and the plain path rounds the whole weight gradient once where
    # the chunks round each chunk's part; 2e-2 is ten times that and far below the O(1)
    # error of a wrong formula.
    torch.testing.assert_close(got, want, rtol=2e-2, atol=0)
    for a, b in zip(got_g, want_g, strict=True):
        assert ((a - b).norm() / b.norm()).item() < 2e-2


def test_the_chunked_path_keeps_no_logits_for_backward():
    """What autograd saves for the backward pass, counted with saved-tensor hooks: the plain
    path keeps at least the (N, V) logits of every loop, the chunked one only its inputs."""
    K, B, T, d, V = 4, 2, 32, 8, 512
    feats, weight, targets, _ = _problem(3, K, B, T, d, V, torch.float32)

    def saved_bytes(**kw):
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            readout_cross_entropy(feats, weight, targets, **kw)
        return total

    logits = K * B * T * V * 4
    assert saved_bytes() >= logits
    inputs = (K * B * T * d + V * d) * 4 + K * B * T * 8  # features, W, int64 targets
    assert saved_bytes(max_bytes=0) <= inputs < logits / 10


def test_every_cpu_preset_stays_on_the_plain_path_and_the_44m_chunks():
    for name in ("tiny", "cpu"):
        cfg = load_config(name)
        tokens = cfg.batch_size * cfg.data.seq_len
        assert not chunked(cfg.model.num_loops, tokens, cfg.model.vocab_size), name
    big = load_config("44m")
    assert chunked(big.model.num_loops, big.batch_size * big.data.seq_len,
                   big.model.vocab_size)


def test_loop_cross_entropy_of_the_model_is_the_same_on_both_paths(tol, monkeypatch):
    """LoopedLM.loop_cross_entropy: the forward pass with logits and one CE per loop below the
    threshold, the forward pass without logits and the chunked readout above it; every
    readout switch (final_only_norm decodes its last loop differently) and a coda."""
    import blindspot.nn.model as model_module

    for readout in ("norm", "raw", "final_only_norm"):
        cfg = ModelConfig(vocab_size=29, max_seq_len=8, d_model=16, n_heads=2, n_layers=1,
                          num_loops=3, readout=readout, coda_layers=1)
        torch.manual_seed(0)
        m = LoopedLM(cfg).double()
        idx = torch.randint(0, 29, (2, 8))
        y = torch.randint(0, 29, (2, 8))
        for last_only in (False, True):
            want, out = m.loop_cross_entropy(idx, y, last_only=last_only)
            assert len(out.logits) == len(want) == (1 if last_only else 3)
            with monkeypatch.context() as mp:
                mp.setattr(model_module, "chunked", lambda *a: True)
                got, out2 = m.loop_cross_entropy(idx, y, last_only=last_only)
            assert out2.logits == []  # no logits were kept
            _close(got, want, tol.float64)


def test_bad_arguments_are_named():
    feats, weight, targets, _ = _problem(0, 1, 1, 2, 3, 5, torch.float64)
    with pytest.raises(ValueError, match="reduction"):
        readout_cross_entropy(feats, weight, targets, reduction="avg")
    with pytest.raises(ValueError, match="at least one loop"):
        readout_cross_entropy([], weight, targets)


def test_a_second_derivative_raises_instead_of_being_wrong():
    """The chunked backward pass is not itself differentiable: asking for a second derivative
    through it is an error, never a silently incomplete one."""
    feats, weight, targets, _ = _problem(0, 1, 1, 3, 4, 6, torch.float64)
    ce = readout_cross_entropy(feats, weight, targets, max_bytes=0)
    (g,) = torch.autograd.grad(ce.sum(), feats, create_graph=True)
    with pytest.raises(RuntimeError, match="does not require grad|differentiable"):
        torch.autograd.grad(g.sum(), weight)

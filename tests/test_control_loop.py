"""The recurrence controls: the inter-loop norm wrapper and the radial clamp at inference."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from blindspot.control import InterLoopNorm, RadialClamp, radial_clamp
from blindspot.diagnostics import record
from blindspot.diagnostics.interventions import intervention_runs

# float64: a normalization of d = 32 entries is exact to a few units of 2.2e-16


class Seen(nn.Module):
    """A loop body that returns what it receives (all its arguments, concatenated)."""

    def forward(self, x, e=None):
        return x if e is None else torch.cat([x, e], dim=-1)


@settings(max_examples=30, deadline=None)
@given(c=st.floats(-6, 6).map(lambda e: 10.0 ** e),
       injection=st.sampled_from(["none", "concat", "call"]), seed=st.integers(0, 99))
def test_inter_loop_norm_removes_the_scale(tol, c, injection, seed):
    g = torch.Generator().manual_seed(seed)
    h, e = (torch.randn(2, 3, 8, generator=g, dtype=torch.float64) for _ in range(2))
    wrap = InterLoopNorm(Seen(), 8, injection=injection, eps=0.0).double()
    with torch.no_grad():
        wrap.weight.copy_(1 + 0.1 * torch.randn(8, generator=g, dtype=torch.float64))

    def seen(state):
        if injection == "concat":
            return wrap(torch.cat([state, e], dim=-1))
        return wrap(state, e) if injection == "call" else wrap(state)

    with torch.no_grad():
        a, b = seen(h), seen(c * h)
    torch.testing.assert_close(b, a, rtol=tol.float64, atol=tol.float64)  # the body cannot see c
    r = h.pow(2).mean(-1, keepdim=True).sqrt()
    torch.testing.assert_close(a[..., :8], wrap.weight.detach() * h / r, rtol=tol.float64,
                               atol=tol.float64)
    if injection != "none":
        assert torch.equal(a[..., 8:], e)  # the injected context is never normalized


def test_inter_loop_norm_in_a_foreign_model_makes_the_next_loop_blind(adapter_of, small_foreign,
                                                                      byte_tokens, tol):
    model, _ = small_foreign()
    model.core = InterLoopNorm(model.core, 32, injection="concat", eps=0.0)
    model = model.double().eval()
    adapter = adapter_of(model)  # built after wrapping: its step is the wrapped body
    x = byte_tokens()[:, :-1]
    with torch.no_grad():
        trace = record(adapter, x)
        assert all(torch.equal(a, b) for a, b in zip(trace.logits, model(x), strict=True))
        h1, (_, e) = trace.states[0], adapter.start(x)
        for c in (1e-3, 1e3):  # loop 2 is the same whatever the scale of H_1
            torch.testing.assert_close(adapter.step(c * h1, e), trace.states[1], rtol=tol.float64,
                                       atol=tol.float64)


def test_inter_loop_norm_names_bad_input():
    with pytest.raises(ValueError, match=r"got 'add' \(body\(x \+ e\) mixes the state with e"):
        InterLoopNorm(Seen(), 8, injection="add")
    with pytest.raises(ValueError, match="d_model must be the state width"):
        InterLoopNorm(Seen(), 0)
    with pytest.raises(ValueError, match=r"width 16, but d_model = 8 \(a concatenated \[state, "
                                         r"e\] input needs injection='concat'\)"):
        InterLoopNorm(Seen(), 8)(torch.randn(1, 2, 16))
    with pytest.raises(ValueError, match="received width 8, not more than d_model = 8"):
        InterLoopNorm(Seen(), 8, injection="concat")(torch.randn(1, 2, 8))
    plain = InterLoopNorm(Seen(), 8, gain=False)
    assert plain.weight is None and not list(plain.parameters())


def test_radial_clamp_zeroes_the_radial_increment(small_foreign, byte_tokens, tol):
    model, adapter = small_foreign()
    model = model.double().eval()
    x = byte_tokens()[:, :-1]
    with torch.no_grad():
        clamped = radial_clamp(adapter, x, "remove_radial")
        frozen = radial_clamp(adapter, x, "freeze_scale")
        trace = record(adapter, x)
        runs = intervention_runs(adapter, adapter.start(x)[1], trace, carry_alphas=())
    for xin, h in zip([clamped.initial] + clamped.carried[:-1], clamped.states, strict=True):
        delta = h - xin
        u = xin / xin.norm(dim=-1, keepdim=True)
        assert ((u * delta).sum(-1).abs() <= tol.float64 * delta.norm(dim=-1)).all()  # a_k = 0
        torch.testing.assert_close(h.pow(2).sum(-1), xin.pow(2).sum(-1) + delta.pow(2).sum(-1),
                                   rtol=tol.float64, atol=0)
    for h in frozen.states:
        torch.testing.assert_close(h.norm(dim=-1), frozen.states[0].norm(dim=-1), rtol=tol.float64,
                                   atol=0)
    # the same runs as the diagnostics' radial-clamp table (which batches its branches)
    for mine, theirs in ((clamped, runs["remove_radial"]), (frozen, runs["freeze_scale"])):
        torch.testing.assert_close(mine.logits[-1], theirs.logits[-1], rtol=tol.float64,
                                   atol=tol.float64)


def test_radial_clamp_changes_nothing_in_the_model(small_foreign, byte_tokens):
    model, adapter = small_foreign()
    x = byte_tokens()[:, :-1]
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        out = model(x)
        radial_clamp(adapter, x, "freeze_scale")
        again = model(x)
    assert all(torch.equal(a, b) for a, b in zip(out, again, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    with pytest.raises(ValueError, match="mode must be 'remove_radial' or 'freeze_scale'"):
        RadialClamp("freeze")

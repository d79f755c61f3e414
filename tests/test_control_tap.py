"""``StateTap`` on a model the package does not know: the example's Huginn-style model
(the ``small_foreign`` fixture of tests/conftest.py)."""

import pytest
import torch
import torch.nn.functional as F

from blindspot.control import StateTap
from blindspot.diagnostics import record


def _loss_and_grads(model, x, y, tap: bool):
    model.zero_grad()
    if tap:
        with StateTap(model.core) as t:
            logits = model(x)
    else:
        logits, t = model(x), None
    loss = sum(F.cross_entropy(z.flatten(0, 1), y.flatten()) for z in logits)
    loss.backward()
    return logits, [p.grad.clone() for p in model.parameters()], t


def test_tap_leaves_the_forward_pass_bitwise_unchanged(small_foreign, byte_tokens):
    model, adapter = small_foreign()
    tk = byte_tokens()
    x, y = tk[:, :-1], tk[:, 1:]
    plain_logits, plain_grads, _ = _loss_and_grads(model, x, y, tap=False)
    tap_logits, tap_grads, tap = _loss_and_grads(model, x, y, tap=True)
    for a, b in zip(plain_logits + plain_grads, tap_logits + tap_grads, strict=True):
        assert torch.equal(a, b)
    # the tapped states are the loop states the recorder produces through the adapter
    with torch.no_grad():
        trace = record(adapter, x)
    assert len(tap.states) == model.loops
    for a, b in zip(tap.states, trace.states, strict=True):
        assert torch.equal(a.detach(), b)
    # outside the `with` block nothing is recorded any more
    model(x)
    assert len(tap.states) == model.loops


def test_tap_states_carry_gradients_into_the_model(small_foreign, byte_tokens):
    model, _ = small_foreign()
    with StateTap(model.core) as tap:
        model(byte_tokens()[:, :-1])
    tap.states[-1].pow(2).mean().backward()
    assert model.core.inject.weight.grad.abs().sum() > 0


def test_tap_keeps_the_state_of_a_body_that_returns_a_tuple(small_foreign, pair_body):
    model, _ = small_foreign()
    body = pair_body(model.core)  # returns (state, its norm), as Hugging Face layers return
    x = torch.randn(2, 3, 64)
    with StateTap(body) as tap:
        out = body(x)
    assert len(tap.states) == 1 and tap.states[0] is out[0]  # the first element, the state

    class NoState(torch.nn.Module):
        def forward(self, x):
            return (None, x)

    with pytest.raises(TypeError, match=r"the loop body NoState returned a tuple of 2 items "
                                        r"with no state tensor first: wrap it in an nn.Module"):
        bad = NoState()
        with StateTap(bad):
            bad(x)
    with pytest.raises(ValueError, match=r"shape \(2, 32\); a loop state must be \(B, T, d\)"):
        with StateTap(model.core):
            model.core(torch.randn(2, 64))


def test_tap_refuses_misuse(small_foreign):
    model, _ = small_foreign()
    with pytest.raises(TypeError, match="needs the loop body module"):
        StateTap(lambda x: x)
    tap = StateTap(model.core)
    with tap, pytest.raises(RuntimeError, match="already open"):
        tap.__enter__()

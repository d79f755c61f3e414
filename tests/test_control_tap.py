"""``StateTap`` on a model the package does not know: the example's Huginn-style model.

Also the helpers the other ``test_control_*`` files (and ``control_ddp_worker.py``) import: the
example model, its adapter, and a loader for example and benchmark files.
"""

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from blindspot.control import StateTap
from blindspot.diagnostics import LoopAdapter, record

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(path: Path):
    """A module from its file (examples/ and benchmarks/ are not packages)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def foreign():
    """examples/diagnose_foreign_model.py: the Huginn-style model and its data."""
    return load(EXAMPLES / "diagnose_foreign_model.py")


def small_foreign(seed: int = 0, **kw):
    """(model, adapter) of a small MyLoopedModel (d = 32, 2 heads, 16 positions, K = 4)."""
    torch.manual_seed(seed)
    model = foreign().MyLoopedModel(**{"d": 32, "heads": 2, "seq": 16, **kw})
    return model, adapter_of(model)


def adapter_of(model) -> LoopAdapter:
    return LoopAdapter.from_modules(model, prelude="prelude", body="core", head="coda",
                                    injection="concat", num_loops=model.loops)


def tokens(seed: int = 1, batch: int = 4, seq: int = 16) -> torch.Tensor:
    """(B, T+1) byte tokens: inputs [:, :-1], targets [:, 1:]."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, seq + 1), generator=g)


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


def test_tap_leaves_the_forward_pass_bitwise_unchanged():
    model, adapter = small_foreign()
    tk = tokens()
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


def test_tap_states_carry_gradients_into_the_model():
    model, _ = small_foreign()
    with StateTap(model.core) as tap:
        model(tokens()[:, :-1])
    tap.states[-1].pow(2).mean().backward()
    assert model.core.inject.weight.grad.abs().sum() > 0


class PairBody(nn.Module):
    """A loop body that returns (state, auxiliary output), as some recurrent cores do."""

    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, xe):
        h = self.body(xe)
        return h, h.norm()


def test_tap_names_a_body_that_returns_a_tuple():
    model, _ = small_foreign()
    body = PairBody(model.core)
    with pytest.raises(TypeError, match=r"returned a tuple of 2 items, not the next state "
                                        r"tensor: tap the submodule"):
        with StateTap(body):
            body(torch.randn(2, 3, 64))
    with pytest.raises(ValueError, match=r"shape \(2, 32\); a loop state must be \(B, T, d\)"):
        with StateTap(model.core):
            model.core(torch.randn(2, 64))


def test_tap_refuses_misuse():
    model, _ = small_foreign()
    with pytest.raises(TypeError, match="needs the loop body module"):
        StateTap(lambda x: x)
    tap = StateTap(model.core)
    with tap, pytest.raises(RuntimeError, match="already open"):
        tap.__enter__()

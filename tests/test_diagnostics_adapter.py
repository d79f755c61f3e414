"""The adapter and recorder on looped models that the package does not know.

Two foreign models (tests/conftest.py, the ``huginn_style`` and ``ouro_style`` fixtures):
``HuginnStyle`` (prelude, shared core with concatenated input injection and sandwich norms,
coda) and ``OuroStyle`` (the whole pre-norm stack looped, a per-loop RMSNorm readout with
tied embeddings). The recorder must reproduce each model's own forward pass exactly.
"""

import pytest
import torch

from blindspot.diagnostics import LoopAdapter, record


def test_recorder_reproduces_a_huginn_style_forward(huginn_style, tokens):
    torch.manual_seed(0)
    model = huginn_style().eval()
    idx = tokens()[:, :-1]
    with torch.no_grad():
        trace = record(model.adapter(), idx)
        own = model(idx)
        own5 = model(idx, num_loops=5)
        longer = record(model.adapter(), idx, num_loops=5)
    assert trace.num_loops == 3 and len(trace.logits) == 3
    assert torch.equal(trace.logits[-1], own)  # same ops in the same order: bit for bit
    assert torch.equal(longer.logits[-1], own5)  # depth extrapolation past the trained K
    assert trace.initial.shape == (4, 16, 32)
    assert all(torch.equal(a, b) for a, b in zip(trace.states, trace.carried, strict=True))


@pytest.mark.parametrize("inter_loop_norm", [False, True])
def test_recorder_reproduces_every_loop_of_an_ouro_style_forward(ouro_style, tokens,
                                                                 inter_loop_norm):
    torch.manual_seed(1)
    model = ouro_style(inter_loop_norm=inter_loop_norm).eval()
    idx = tokens()[:, :-1]
    with torch.no_grad():
        trace = record(model.adapter(), idx)
        own = model(idx)
    assert all(torch.equal(a, b) for a, b in zip(trace.logits, own, strict=True))
    if inter_loop_norm:
        # carried states are normalized: RMS 1 per token, so norm √d (γ = 1 at init)
        norms = trace.carried_scales()
        assert torch.allclose(norms, torch.full_like(norms, 32**0.5), rtol=1e-4)  # f32 + ε=1e-6
        assert not torch.allclose(trace.scales(), norms, rtol=1e-2)


def test_missing_module_is_named(huginn_style):
    model = huginn_style()
    with pytest.raises(ValueError, match=r"body='recurrent'.*no submodule 'recurrent'.*core"):
        LoopAdapter.from_modules(model, body="recurrent", head="coda", num_loops=3)
    with pytest.raises(ValueError, match=r"head='coda.head2'"):
        LoopAdapter.from_modules(model, body="core", head="coda.head2", num_loops=3)


def test_bad_adapter_arguments_are_clear_errors(huginn_style, tokens):
    model = huginn_style()
    with pytest.raises(ValueError, match="num_loops must be a positive int"):
        LoopAdapter.from_modules(model, body="core", head="coda", num_loops=0)
    with pytest.raises(ValueError, match="injection must be one of"):
        LoopAdapter.from_modules(model, body="core", head="coda", num_loops=3,
                                 injection="sum")
    adapter = LoopAdapter.from_modules(model, body="core", head="coda", num_loops=3,
                                       prelude="prelude", injection="none")
    with pytest.raises(RuntimeError):  # core expects 2d inputs: torch names the shapes
        record(adapter, tokens()[:, :-1])
    with pytest.raises(ValueError, match="num_loops must be a positive int"):
        record(model.adapter(), tokens()[:, :-1], num_loops=0)


def test_a_diverged_state_is_reported(ouro_style, tokens):
    model = ouro_style()
    adapter = model.adapter()
    with torch.no_grad():
        model.stack[0].mlp[0].weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="NaN or inf"):
        record(adapter, tokens()[:, :-1])


class _HFOutputs(torch.nn.Module):
    """A module as Hugging Face writes them: ``kind`` "output" returns a model-output object
    (``BaseModelOutput``), "tuple" returns (state, attention weights)."""

    def __init__(self, inner, kind):
        super().__init__()
        self.inner, self.kind = inner, kind

    def forward(self, x):
        from transformers.modeling_outputs import BaseModelOutput

        h = self.inner(x)
        if self.kind == "output":
            return BaseModelOutput(last_hidden_state=h)
        return h, h.new_zeros(h.shape[0], 1, h.shape[1], h.shape[1])


def test_the_adapter_reads_what_hugging_face_layers_return(small_foreign, adapter_of,
                                                           byte_tokens):
    model, plain = small_foreign()
    x = byte_tokens()[:, :-1]
    with torch.no_grad():
        want = record(plain, x)
        for prelude, body in (("output", "tuple"), ("tuple", "output")):
            model_hf, _ = small_foreign()  # the same seed: the same weights
            model_hf.prelude = _HFOutputs(model_hf.prelude, prelude)
            model_hf.core = _HFOutputs(model_hf.core, body)
            got = record(adapter_of(model_hf), x)
            assert all(torch.equal(a, b) for a, b in zip(got.logits, want.logits, strict=True))
            assert torch.equal(got.initial, want.initial)


def test_a_prelude_without_a_state_is_one_line(small_foreign, adapter_of, byte_tokens):
    class Named(torch.nn.Module):
        def forward(self, idx):
            return {"hidden": idx}  # neither a tensor, a tuple nor a model output

    model, _ = small_foreign()
    model.prelude = Named()
    with pytest.raises(TypeError, match=r"^the prelude 'prelude' returned a dict with no state "
                                        r"tensor first: wrap it in an nn.Module whose forward "
                                        r"returns the \(B, T, d\) state tensor$"):
        record(adapter_of(model), byte_tokens()[:, :-1])

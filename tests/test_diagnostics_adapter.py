"""The adapter and recorder on looped models that the package does not know.

Two foreign models are defined here (and imported by the other diagnostics tests):
``HuginnStyle`` (prelude, shared core with concatenated input injection and sandwich norms,
coda) and ``OuroStyle`` (the whole pre-norm stack looped, a per-loop RMSNorm readout with
tied embeddings). The recorder must reproduce each model's own forward pass exactly.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from blindspot.diagnostics import LoopAdapter, ReadoutForm, record


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)

    def forward(self, x):
        B, T, d = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, d // self.heads).unbind(2)  # (B, T, h, dh)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                           v.transpose(1, 2), is_causal=True)  # (B, h, T, dh)
        return self.out(y.transpose(1, 2).reshape(B, T, d))


class Block(nn.Module):
    """Pre-norm (x + f(N(x))) or sandwich (x + N(f(N(x)))) block, attention then MLP."""

    def __init__(self, d, heads, sandwich=False, eps=1e-6):
        super().__init__()
        self.n1, self.n2 = nn.RMSNorm(d, eps=eps), nn.RMSNorm(d, eps=eps)
        self.attn = Attention(d, heads)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.post1 = nn.RMSNorm(d, eps=eps) if sandwich else nn.Identity()
        self.post2 = nn.RMSNorm(d, eps=eps) if sandwich else nn.Identity()

    def forward(self, x):
        x = x + self.post1(self.attn(self.n1(x)))
        return x + self.post2(self.mlp(self.n2(x)))


class Prelude(nn.Module):
    def __init__(self, vocab, d, seq, heads):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(seq, d) * 0.02)
        self.block = Block(d, heads)

    def forward(self, idx):
        return self.block(self.tok(idx) + self.pos[: idx.shape[1]])  # (B, T, d)


class Core(nn.Module):
    """Huginn-style recurrent core: adapter from [state, e] (2d) to d, then sandwich blocks."""

    def __init__(self, d, heads, layers):
        super().__init__()
        self.adapter = nn.Linear(2 * d, d, bias=False)
        self.blocks = nn.Sequential(*[Block(d, heads, sandwich=True) for _ in range(layers)])

    def forward(self, xe):
        return self.blocks(self.adapter(xe))


class Coda(nn.Module):
    def __init__(self, vocab, d, heads):
        super().__init__()
        self.block = Block(d, heads)
        self.norm = nn.RMSNorm(d, eps=1e-6)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, h):
        return self.head(self.norm(self.block(h)))


class HuginnStyle(nn.Module):
    """prelude -> K x core([h, e]) -> coda; H_0 = e. Unknown to the package."""

    def __init__(self, vocab=37, d=32, seq=16, heads=4, layers=2, loops=3):
        super().__init__()
        self.prelude = Prelude(vocab, d, seq, heads)
        self.core = Core(d, heads, layers)
        self.coda = Coda(vocab, d, heads)
        self.loops = loops

    def forward(self, idx, num_loops=None):
        e = self.prelude(idx)
        h = e
        for _ in range(num_loops or self.loops):
            h = self.core(torch.cat([h, e], dim=-1))
        return self.coda(h)

    def adapter(self):
        return LoopAdapter.from_modules(self, prelude="prelude", body="core", head="coda",
                                        injection="concat", num_loops=self.loops)


class Readout(nn.Module):
    """z = W·RMSNorm(h) (raw: z = W·h), W tied to the embedding."""

    def __init__(self, embedding, d, eps, raw):
        super().__init__()
        self.embedding = embedding
        self.norm = nn.Identity() if raw else nn.RMSNorm(d, eps=eps)

    def forward(self, h):
        return self.norm(h) @ self.embedding.weight.T  # (B, T, V)


class OuroStyle(nn.Module):
    """The whole pre-norm stack looped K times, optional inter-loop norm, a readout after every
    loop. Unknown to the package; forward returns the list of per-loop logits."""

    def __init__(self, vocab=37, d=32, seq=16, heads=4, layers=2, loops=3, eps=1e-6, raw=False,
                 inter_loop_norm=False):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(seq, d) * 0.02)
        self.stack = nn.Sequential(*[Block(d, heads, eps=eps) for _ in range(layers)])
        self.between = nn.RMSNorm(d, eps=eps) if inter_loop_norm else None
        self.readout = Readout(self.tok, d, eps, raw)
        self.loops, self.eps, self.raw = loops, eps, raw

    def embed(self, idx):
        return self.tok(idx) + self.pos[: idx.shape[1]]

    def forward(self, idx, num_loops=None):
        h, logits = self.embed(idx), []
        for _ in range(num_loops or self.loops):
            h = self.stack(h)
            logits.append(self.readout(h))
            if self.between is not None:
                h = self.between(h)
        return logits

    def adapter(self):
        form = ReadoutForm("raw") if self.raw else ReadoutForm("rmsnorm", self.eps)
        return LoopAdapter(start=lambda idx: (self.embed(idx), None),
                           step=lambda x, e: self.stack(x),
                           head=lambda h, k, K: self.readout(h), num_loops=self.loops,
                           carry=None if self.between is None else (lambda h, k: self.between(h)),
                           readout_form=lambda k, K: form, name="OuroStyle")


def tokens(vocab=37, batch=4, seq=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (batch, seq + 1), generator=g)


def test_recorder_reproduces_a_huginn_style_forward():
    torch.manual_seed(0)
    model = HuginnStyle().eval()
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
def test_recorder_reproduces_every_loop_of_an_ouro_style_forward(inter_loop_norm):
    torch.manual_seed(1)
    model = OuroStyle(inter_loop_norm=inter_loop_norm).eval()
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


def test_missing_module_is_named():
    model = HuginnStyle()
    with pytest.raises(ValueError, match=r"body='recurrent'.*no submodule 'recurrent'.*core"):
        LoopAdapter.from_modules(model, body="recurrent", head="coda", num_loops=3)
    with pytest.raises(ValueError, match=r"head='coda.head2'"):
        LoopAdapter.from_modules(model, body="core", head="coda.head2", num_loops=3)


def test_bad_adapter_arguments_are_clear_errors():
    model = HuginnStyle()
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


def test_a_diverged_state_is_reported():
    model = OuroStyle()
    adapter = model.adapter()
    with torch.no_grad():
        model.stack[0].mlp[0].weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="NaN or inf"):
        record(adapter, tokens()[:, :-1])

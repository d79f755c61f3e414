"""What the tests share, as fixtures: one tolerance per dtype, token batches, the tiny training
config, and the looped models the package does not know (the Huginn- and Ouro-style models
of the diagnostics tests, the example's model, a synthetic trace that follows the toy's
recurrence). No test imports another test file; each asks for a fixture by name.
"""

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from blindspot.diagnostics import LoopAdapter, ReadoutForm
from blindspot.nn.trace import LoopTrace

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- tolerances


@dataclass(frozen=True)
class Tolerances:
    """One relative tolerance per dtype, for comparisons that only round-off separates (an
    identity evaluated two ways, a closed form against autograd, a loop against its
    unrolling). Every bug these tests are written to catch is 1e-6 or larger."""

    float64: float = 1e-10
    """Unit round-off 1.1e-16, accumulated through sums of up to ~1e4 terms, chains of
    autograd operations and states up to 1e3 in scale: the worst measured error is 2e-12
    (the last state's total-loss radial force at scale 1e3, relative to the largest force),
    so 1e-10 keeps a margin of 50."""

    float32: float = 1e-5
    """Unit round-off 6e-8, accumulated over the ~100 operations of a loop and a
    cross-entropy: ~100 ulps."""


@pytest.fixture(scope="session")
def tol() -> Tolerances:
    return Tolerances()


# ----------------------------------------------------------------------------- tokens


def make_tokens(vocab: int = 37, batch: int = 4, seq: int = 16, seed: int = 0) -> torch.Tensor:
    """(B, T+1) token ids: inputs are [:, :-1], next-token targets [:, 1:]."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (batch, seq + 1), generator=g)


@pytest.fixture(scope="session")
def tokens():
    """``tokens(vocab=37, batch=4, seq=16, seed=0)``: a (B, T+1) batch of token ids."""
    return make_tokens


@pytest.fixture(scope="session")
def byte_tokens():
    """``byte_tokens(seed=1, batch=4, seq=16)``: byte ids (vocabulary 256), the example
    model's inputs."""
    def make(seed: int = 1, batch: int = 4, seq: int = 16) -> torch.Tensor:
        return make_tokens(256, batch, seq, seed)

    return make


# ----------------------------------------------------------------------------- tiny training


TINY = {"model": {"d_model": 32, "n_heads": 4, "n_layers": 1, "num_loops": 2, "max_seq_len": 16},
        "data": {"source": "generated", "seq_len": 16, "stride": 8}, "batch_size": 4}
"""Overrides that shrink a CPU preset to a model that trains and diagnoses in a second."""


@pytest.fixture(scope="session")
def tiny_config():
    """``tiny_config(condition="per_loop-norm", readout=None, num_loops=2, data=None)``: the
    ``cpu-<condition>`` preset shrunk by :data:`TINY` (readout, depth and data overridable)."""
    from blindspot.train.config import preset

    def make(condition: str = "per_loop-norm", readout: str | None = None, num_loops: int = 2,
             data: dict | None = None):
        model = {**TINY["model"], "num_loops": num_loops}
        if readout is not None:
            model["readout"] = readout
        return preset(f"cpu-{condition}", **{**TINY, "model": model,
                                              "data": {**TINY["data"], **(data or {})}})

    return make


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_config):
    """``tiny_checkpoint(path, **tiny_config options)``: an untrained tiny model saved as a
    checkpoint of our own (seed 0); returns the path."""
    from blindspot.train.checkpoint import build_model, save_model

    def make(path, **options):
        cfg = tiny_config(**options)
        torch.manual_seed(0)
        return save_model(path, build_model(cfg), cfg)

    return make


# ----------------------------------------------------------------------------- example files


def load_file(path: Path) -> ModuleType:
    """A module from its file (examples/ and benchmarks/ are not packages)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def load():
    """``load(path)``: the module of an example or benchmark file."""
    return load_file


@pytest.fixture(scope="session")
def foreign() -> ModuleType:
    """examples/diagnose_foreign_model.py: the Huginn-style model and its data."""
    return load_file(ROOT / "examples" / "diagnose_foreign_model.py")


@pytest.fixture(scope="session")
def small_foreign(foreign):
    """``small_foreign(seed=0, **kw)``: (model, adapter) of a small MyLoopedModel of the
    example (d = 32, 2 heads, 16 positions, K = 4)."""
    def make(seed: int = 0, **kw):
        torch.manual_seed(seed)
        model = foreign.MyLoopedModel(**{"d": 32, "heads": 2, "seq": 16, **kw})
        return model, example_adapter(model)

    return make


def example_adapter(model: nn.Module) -> LoopAdapter:
    """The example model's adapter, as the README writes it."""
    return LoopAdapter.from_modules(model, prelude="prelude", body="core", head="coda",
                                    injection="concat", num_loops=model.loops)


@pytest.fixture(scope="session")
def adapter_of():
    """``adapter_of(model)``: :func:`example_adapter`."""
    return example_adapter


# ----------------------------------------------------------------------------- foreign models


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


@pytest.fixture(scope="session")
def foreign_layers() -> SimpleNamespace:
    """The layers the foreign models are built of (``Block``, ``Prelude``, ``Core``,
    ``Coda``), for tests that assemble a model of their own."""
    return SimpleNamespace(Block=Block, Prelude=Prelude, Core=Core, Coda=Coda)


@pytest.fixture(scope="session")
def huginn_style():
    """The class :class:`HuginnStyle` (prelude, shared core with concatenated input injection
    and sandwich norms, coda)."""
    return HuginnStyle


@pytest.fixture(scope="session")
def ouro_style():
    """The class :class:`OuroStyle` (the whole pre-norm stack looped, a per-loop RMSNorm or
    raw readout with tied embeddings, optional inter-loop norm)."""
    return OuroStyle


class PairBody(nn.Module):
    """A loop body that returns (state, auxiliary output), as some recurrent cores do."""

    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, xe):
        h = self.body(xe)
        return h, h.norm()


@pytest.fixture(scope="session")
def pair_body():
    """The class :class:`PairBody`."""
    return PairBody


# ----------------------------------------------------------------------------- traces


def make_synthetic_trace(increments, dperp=0.5, s0=3.0, tokens=6, d=16, seed=0) -> LoopTrace:
    """States with H_{k} = H_{k-1} + a_k u + d_⊥ v (v ⟂ u, unit): every token follows the
    toy's s_{k+1} = sqrt((s_k + a_k)² + d_⊥²) from the same s_0, in float64."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(1, tokens, d, generator=g, dtype=torch.float64)
    h = s0 * h / h.norm(dim=-1, keepdim=True)  # (1, N, d)
    h0, states = h, []
    for a in increments:
        u = h / h.norm(dim=-1, keepdim=True)
        r = torch.randn(1, tokens, d, generator=g, dtype=torch.float64)
        v = r - (r * u).sum(-1, keepdim=True) * u
        v = v / v.norm(dim=-1, keepdim=True)
        h = h + a * u + dperp * v
        states.append(h)
    return LoopTrace(h0, states, list(states))


@pytest.fixture(scope="session")
def synthetic_trace():
    """``synthetic_trace(increments, dperp=0.5, ...)``: a trace that follows the toy's radial
    recurrence exactly (:func:`make_synthetic_trace`)."""
    return make_synthetic_trace

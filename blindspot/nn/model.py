"""``LoopedLM``: a causal decoder whose whole stack of blocks is applied K times with shared
weights, with the readout and recurrence switches of the paper (one ``ModelConfig`` field each).

Reads top-down: norms -> attention -> MLP -> block -> the looped model. The mathematics lives
in :mod:`blindspot.nn.functional`; the modules here only hold parameters.

One forward pass (k = 1..K; the recurrence of proofs/lemma2.md)::

    H_0, e = embed(idx)                    # tokens + positions, then the prelude (if any)
    H_k    = loop_step(C_{k-1}, e)         # inject e, apply the shared stack once
    C_k    = N_loop(H_k) or H_k            # what loop k+1 receives (inter_loop_norm switch)
    z_k    = readout_logits(H_k, k, K)     # coda (if any), readout norm per the switch, W

``forward(idx, logits="all" | "last" | "none")`` says which loops' logits to compute.

with C_0 = H_0. ``states`` are the H_k before any inter-loop norm: the states the paper
measures and the readout decodes.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import get_args

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from blindspot.nn import functional as BF
from blindspot.nn.config import (
    AttentionKernel,
    BlockNorm,
    Init,
    Injection,
    ModelConfig,
    NormKind,
    Readout,
)
from blindspot.nn.readout_ce import chunked, readout_cross_entropy
from blindspot.nn.trace import LoopTrace

# ----------------------------------------------------------------------------- config checks

_CHOICES = {  # the values each Literal field of ModelConfig allows
    "norm": get_args(NormKind),
    "readout": get_args(Readout),
    "block_norm": get_args(BlockNorm),
    "input_injection": get_args(Injection),
    "init": get_args(Init),
    "attention_kernel": get_args(AttentionKernel),
}
_POSITIVE_INTS = ("vocab_size", "max_seq_len", "d_model", "n_heads", "n_layers", "num_loops")
_NONNEGATIVE_INTS = ("prelude_layers", "coda_layers")
LOGITS = ("all", "last", "none")
"""The values of ``forward(logits=...)``, which computes the logits of every loop, of the
last loop only, or of none."""


def validate_config(cfg: ModelConfig) -> None:
    """Raise a ``ValueError`` naming the offending field, its value and what is valid."""
    if not isinstance(cfg, ModelConfig):
        raise TypeError(f"LoopedLM needs a ModelConfig, got {type(cfg).__name__}; build one with "
                        "blindspot.nn.ModelConfig(...)")
    for name in _POSITIVE_INTS + _NONNEGATIVE_INTS:
        v = getattr(cfg, name)
        low = 1 if name in _POSITIVE_INTS else 0
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"ModelConfig.{name} = {v!r}: must be an integer >= {low}")
    for name, choices in _CHOICES.items():
        v = getattr(cfg, name)
        if v not in choices:
            raise ValueError(f"ModelConfig.{name} = {v!r}: valid choices are "
                             + ", ".join(repr(c) for c in choices))
    for name in ("inter_loop_norm", "tie_embeddings"):
        if not isinstance(getattr(cfg, name), bool):
            raise ValueError(f"ModelConfig.{name} = {getattr(cfg, name)!r}: must be True or False")
    if cfg.d_model % cfg.n_heads != 0:
        raise ValueError(f"ModelConfig.d_model = {cfg.d_model} is not divisible by "
                         f"n_heads = {cfg.n_heads}; choose n_heads among the divisors of d_model")
    for name, low_ok in (("ff_mult", False), ("dropout", True), ("norm_eps", True)):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) \
                or v < 0 or (v == 0 and not low_ok):
            need = ">= 0" if low_ok else "> 0"
            raise ValueError(f"ModelConfig.{name} = {v!r}: must be a finite number {need}")
    std = cfg.init_embed_std
    if std is not None and (isinstance(std, bool) or not isinstance(std, int | float)
                            or not math.isfinite(std) or std <= 0):
        raise ValueError(f"ModelConfig.init_embed_std = {std!r}: must be a finite number > 0, "
                         "or None for the init's own (paper: 1, gpt2: 0.02)")
    if cfg.dropout >= 1:
        raise ValueError(f"ModelConfig.dropout = {cfg.dropout!r}: must be in [0, 1)")
    if int(cfg.ff_mult * cfg.d_model) < 1:
        raise ValueError(f"ModelConfig.ff_mult = {cfg.ff_mult!r}: the MLP width "
                         f"int(ff_mult * d_model) must be >= 1")


# ----------------------------------------------------------------------------- norms


class RMSNorm(nn.Module):
    """γ ⊙ h / √(ms(h) + ε): see :func:`blindspot.nn.functional.rms_norm`."""

    def __init__(self, d: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: Tensor) -> Tensor:
        return BF.rms_norm(x, self.weight, self.eps)


class LayerNorm(nn.Module):
    """γ ⊙ Ph / σ + β: see :func:`blindspot.nn.functional.layer_norm`."""

    def __init__(self, d: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))

    def forward(self, x: Tensor) -> Tensor:
        return BF.layer_norm(x, self.weight, self.bias, self.eps)


def make_norm(cfg: ModelConfig) -> nn.Module:
    """The norm kind of ``cfg.norm`` with the model width and ``cfg.norm_eps``."""
    return (RMSNorm if cfg.norm == "rmsnorm" else LayerNorm)(cfg.d_model, cfg.norm_eps)


# ----------------------------------------------------------------------------- attention, MLP


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.dropout = cfg.dropout
        self.kernel = cfg.attention_kernel  # one function, several kernels (ModelConfig)
        # one matmul for q, k, v: fewer, larger GEMMs are faster on CPU
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)  # residual projection

    def forward(self, x: Tensor) -> Tensor:
        B, T, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)  # 3 x (B, T, d)
        q, k, v = (t.view(B, T, self.n_heads, d // self.n_heads).transpose(1, 2)
                   for t in (q, k, v))  # 3 x (B, H, T, d_h)
        y = BF.causal_attention(q, k, v, self.dropout if self.training else 0.0,
                                kernel=self.kernel)  # (B, H, T, d_h)
        y = y.transpose(1, 2).reshape(B, T, d)  # (B, T, d)
        # No dropout on this branch output: the paper drops the input embedding, the attention
        # probabilities (above) and the FFN output, not the attention output projection.
        return self.proj(y)


class SwiGLU(nn.Module):
    """W_2 (silu(W_1 x) ⊙ W_3 x), hidden width int(ff_mult · d_model)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.hidden = int(cfg.ff_mult * cfg.d_model)
        self.gate_up = nn.Linear(cfg.d_model, 2 * self.hidden, bias=False)  # [W_1; W_3] fused
        self.proj = nn.Linear(self.hidden, cfg.d_model, bias=False)  # W_2, residual projection
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.gate_up(x).split(self.hidden, dim=-1)  # 2 x (B, T, hidden)
        return self.drop(self.proj(F.silu(gate) * up))  # (B, T, d)


# ----------------------------------------------------------------------------- block


class Block(nn.Module):
    """pre: x + f(N(x)); sandwich: x + N'(f(N(x))) (a second norm on each branch output)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm_attn, self.norm_mlp = make_norm(cfg), make_norm(cfg)
        self.attn, self.mlp = CausalSelfAttention(cfg), SwiGLU(cfg)
        sandwich = cfg.block_norm == "sandwich"
        self.post_attn = make_norm(cfg) if sandwich else nn.Identity()
        self.post_mlp = make_norm(cfg) if sandwich else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.post_attn(self.attn(self.norm_attn(x)))  # (B, T, d)
        return x + self.post_mlp(self.mlp(self.norm_mlp(x)))  # (B, T, d)


# ----------------------------------------------------------------------------- the looped model


@dataclass
class LoopedOutput:
    logits: list[Tensor]  # per loop 1..K (logits="all"), [z_K] ("last"), [] ("none"); (B, T, V)
    states: list[Tensor]  # K x (B, T, d): H_k before any inter-loop norm
    trace: LoopTrace | None = None  # when forward(..., return_trace=True)


class LoopedLM(nn.Module):
    """K applications of one shared stack of ``n_layers`` blocks; see the module docstring.

    Weight init, ``cfg.init`` (``tests/test_nn_model.py::test_init_*``):

    - ``"paper"`` (default): PyTorch's defaults, which is what the paper's release uses.
      Token and position embeddings ~ N(0, 1), so the first state has ‖H_0‖ ≈ √(2d)
      (≈ 16 at d = 128, ≈ 32 at d = 512) and the tied readout starts with large logits;
      every linear weight ~ U(±1/√fan_in) (kaiming-uniform with a = √5), with no depth
      scaling of the residual projections; norm gains 1, LayerNorm biases 0.
    - ``"gpt2"``: blindspot 0.1's GPT-2-style init, kept as a named contrast. Every linear and
      embedding weight ~ N(0, 0.02²), the residual projections (attention output, MLP
      down-projection) ~ N(0, (0.02/√(2L))²) with L = prelude_layers + n_layers·num_loops +
      coda_layers, so the stream's variance at init does not grow with K; ‖H_0‖ ≈ 0.02·√(2d)
      (≈ 0.32 at d = 128).

    ``cfg.init_embed_std`` replaces the embeddings' std (1 or 0.02) in either init. Our own
    additions keep one init in both: an untied readout follows its init's linear rule, and
    the concat-injection projection ``injection_proj`` starts at [I | I], i.e. equal to the
    "add" injection, so the two switches differ only by what training learns
    (``tests/test_nn_model.py::test_concat_injection_starts_as_add``).

    The loop is exactly its unrolling with tied weights (bit for bit in float64, every switch):
    ``tests/test_nn_model.py::test_looped_equals_unrolled_bit_for_bit_in_float64``.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        validate_config(cfg)
        self.cfg = cfg
        d = cfg.d_model
        self.tok_emb = nn.Embedding(cfg.vocab_size, d)
        self.pos_emb = nn.Embedding(cfg.max_seq_len, d)
        self.emb_drop = nn.Dropout(cfg.dropout)
        self.prelude = nn.ModuleList(Block(cfg) for _ in range(cfg.prelude_layers))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))  # shared by loops
        self.coda = nn.ModuleList(Block(cfg) for _ in range(cfg.coda_layers))
        self.injection_proj = (nn.Linear(2 * d, d, bias=False)
                               if cfg.input_injection == "concat" else None)  # A in A[h; e]
        self.loop_norm = make_norm(cfg) if cfg.inter_loop_norm else None  # N_loop, own gain
        self.final_norm = make_norm(cfg)  # N_f (unused by the "raw" readout)
        self.lm_head = nn.Linear(d, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight  # W = token embedding
        self._init_weights()
        self.register_load_state_dict_pre_hook(_rename_old_keys)

    @property
    def adapter(self) -> nn.Linear | None:
        """Deprecated name of ``injection_proj`` (``adapter`` now names only the diagnostics'
        :class:`~blindspot.diagnostics.LoopAdapter`)."""
        warnings.warn("LoopedLM.adapter is deprecated; use LoopedLM.injection_proj",
                      DeprecationWarning, stacklevel=2)
        return self.injection_proj

    def _init_weights(self) -> None:
        cfg = self.cfg
        if cfg.init == "paper":
            self._init_paper()
        else:
            self._init_gpt2()
        if cfg.init_embed_std is not None:
            for emb in (self.tok_emb, self.pos_emb):
                nn.init.normal_(emb.weight, 0.0, cfg.init_embed_std)
        if self.injection_proj is not None:
            eye = torch.eye(cfg.d_model)
            with torch.no_grad():
                self.injection_proj.weight.copy_(torch.cat([eye, eye], dim=1))  # (d, 2d) = [I | I]

    def _init_paper(self) -> None:
        """PyTorch's own defaults, written out (named_modules visits a tied readout's weight
        once, as the token embedding's)."""
        seen: set[int] = set()
        for module in self.modules():
            for p in module.parameters(recurse=False):
                if id(p) in seen:
                    continue
                seen.add(id(p))
                if isinstance(module, nn.Embedding):
                    nn.init.normal_(p, 0.0, 1.0)
                elif isinstance(module, nn.Linear):
                    nn.init.kaiming_uniform_(p, a=math.sqrt(5))  # U(±1/√fan_in)
                elif isinstance(module, RMSNorm | LayerNorm):
                    if p is module.weight:
                        nn.init.ones_(p)  # gain 1
                    else:
                        nn.init.zeros_(p)  # LayerNorm bias 0

    def _init_gpt2(self) -> None:
        depth = self.cfg.prelude_layers + self.cfg.n_layers * self.cfg.num_loops \
            + self.cfg.coda_layers
        for name, p in self.named_parameters():
            if p.dim() < 2:
                continue  # norm gains stay 1, biases 0
            if name.endswith("proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * depth))
            else:
                nn.init.normal_(p, 0.0, 0.02)

    # -- the three public steps ------------------------------------------------------------

    def embed(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """(H_0, e): token + position embeddings passed through the prelude. H_0 = e: the first
        loop starts from the prelude output, and e is what input injection re-adds."""
        self._check_idx(idx)
        T = idx.shape[1]
        pos = torch.arange(T, device=idx.device)
        x = self.emb_drop(self.tok_emb(idx) + self.pos_emb(pos))  # (B, T, d)
        for blk in self.prelude:
            x = blk(x)
        return x, x

    def loop_step(self, h: Tensor, e: Tensor) -> Tensor:
        """One application of the shared stack to the carried state h, after injecting e:
        "add": h + e; "concat": A[h; e] with the projection A = ``injection_proj``; "none": h.
        Returns H_{k+1}, the new state before any inter-loop norm."""
        if self.cfg.input_injection == "add":
            h = h + e
        elif self.cfg.input_injection == "concat":
            h = self.injection_proj(torch.cat([h, e], dim=-1))  # (B, T, 2d) -> (B, T, d)
        for blk in self.blocks:
            h = blk(h)
        return h  # (B, T, d)

    def carry(self, h: Tensor) -> Tensor:
        """What the next loop receives: N_loop(H_k) with inter_loop_norm, else H_k itself."""
        return h if self.loop_norm is None else self.loop_norm(h)

    def readout_normalized(self, loop: int, num_loops: int) -> bool:
        """Whether the readout of loop ``loop`` of ``num_loops`` (1-based) passes the state
        through the final norm N_f: at every loop with ``readout="norm"``, never with
        ``"raw"``, and only at the last loop of the run with ``"final_only_norm"``. The one
        statement of the readout rule: :meth:`readout_features` applies it and the
        diagnostics' adapter (:func:`blindspot.diagnostics.adapter_for`) asks it."""
        if not 1 <= loop <= num_loops:
            raise ValueError(f"readout: loop = {loop} outside 1..num_loops = {num_loops}")
        r = self.cfg.readout
        return r == "norm" or (r == "final_only_norm" and loop == num_loops)

    def readout_features(self, h: Tensor, loop: int, num_loops: int) -> Tensor:
        """What the readout matrix W decodes from state h at loop ``loop`` of ``num_loops``
        (1-based): N_f(coda(h)) where :meth:`readout_normalized`, else coda(h). coda =
        identity when coda_layers = 0."""
        normalized = self.readout_normalized(loop, num_loops)
        for blk in self.coda:
            h = blk(h)
        if normalized:
            h = self.final_norm(h)
        return h  # (B, T, d)

    def readout_logits(self, h: Tensor, loop: int, num_loops: int) -> Tensor:
        """Logits W·:meth:`readout_features` of state h at loop ``loop`` of ``num_loops``."""
        return self.lm_head(self.readout_features(h, loop, num_loops))  # (B, T, V)

    def loop_cross_entropy(self, idx: Tensor, targets: Tensor, num_loops: int | None = None,
                           last_only: bool = False) -> tuple[Tensor, LoopedOutput]:
        """(CE, output) of one forward pass: the per-loop cross-entropy against ``targets``
        (B, T) of every loop, (K,), or of the last loop only, (1,), with ``last_only``.

        Through :func:`blindspot.nn.readout_ce.readout_cross_entropy`: when the logits of
        the loops are small (every CPU preset) this is ``forward`` with its logits followed
        by one cross-entropy per loop, the same operations in the same order, so training
        stays bit for bit what it was; above the size threshold the forward pass keeps no
        logits (``output.logits`` is empty) and the readout is decoded in chunks."""
        K = self.cfg.num_loops if num_loops is None else num_loops
        loops = 1 if last_only else K
        if not chunked(loops, targets.numel(), self.cfg.vocab_size):
            out = self(idx, num_loops, logits="last" if last_only else "all")
            return readout_cross_entropy(out.logits, None, targets), out
        out = self(idx, num_loops, logits="none")
        first = len(out.states) - loops + 1
        features = [self.readout_features(h, k, K)
                    for k, h in enumerate(out.states[first - 1:], start=first)]
        return readout_cross_entropy(features, self.lm_head.weight, targets), out

    # -- forward ---------------------------------------------------------------------------

    def forward(self, idx: Tensor, num_loops: int | None = None, logits: str = "all",
                return_trace: bool = False, *, readout: str | None = None) -> LoopedOutput:
        """Run ``num_loops`` loops (default K) on the (B, T) token ids ``idx``; ``logits``
        (:data:`LOGITS`) says which loops' logits to compute. ``readout=`` is the deprecated
        name of ``logits=`` (``readout`` names only the readout kind of the config)."""
        if readout is not None:
            warnings.warn("LoopedLM.forward(readout=...) is deprecated; use logits=...",
                          DeprecationWarning, stacklevel=2)
            logits = readout
        K = self.cfg.num_loops if num_loops is None else num_loops
        if isinstance(K, bool) or not isinstance(K, int) or K < 1:
            raise ValueError(f"num_loops = {num_loops!r}: must be an integer >= 1 "
                             f"(or None for the configured {self.cfg.num_loops})")
        if logits not in LOGITS:
            raise ValueError(f"logits = {logits!r}: valid choices are "
                             + ", ".join(repr(m) for m in LOGITS))
        h0, e = self.embed(idx)
        h, states, carried, zs = h0, [], [], []
        for k in range(1, K + 1):
            state = self.loop_step(h, e)  # (B, T, d) H_k
            h = self.carry(state)  # (B, T, d) C_k
            states.append(state)
            carried.append(h)
            if logits == "all" or (logits == "last" and k == K):
                zs.append(self.readout_logits(state, k, K))  # (B, T, V)
        trace = None
        if return_trace:
            trace = LoopTrace(h0, states, carried, zs if logits == "all" else None)
        return LoopedOutput(zs, states, trace)

    def _check_idx(self, idx: Tensor) -> None:
        if not isinstance(idx, Tensor) or idx.dim() != 2 or idx.dtype not in (torch.long,
                                                                              torch.int32):
            what = (f"{tuple(idx.shape)} {idx.dtype}" if isinstance(idx, Tensor)
                    else type(idx).__name__)
            raise ValueError(f"idx must be an integer tensor of shape (B, T), got {what}")
        T = idx.shape[1]
        if not 1 <= T <= self.cfg.max_seq_len:
            raise ValueError(f"sequence length T = {T} must be in 1..max_seq_len = "
                             f"{self.cfg.max_seq_len}; crop the input or raise "
                             "ModelConfig.max_seq_len")
        # a data-dependent check, which a compiled graph cannot hold: skipped while compiling
        # (training's token ids come from the tokenizer; an eager call still checks them)
        if torch.compiler.is_compiling():
            return
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.cfg.vocab_size):
            raise ValueError(f"token ids must lie in 0..vocab_size-1 = {self.cfg.vocab_size - 1}, "
                             f"got range {int(idx.min())}..{int(idx.max())}")

    def num_parameters(self) -> int:
        """Distinct parameters (a tied readout counted once)."""
        return sum(p.numel() for p in self.parameters())


_OLD_KEYS = {"adapter.": "injection_proj."}
"""Old state-dict key prefix -> new: checkpoints written before the concat-injection
projection was named ``injection_proj`` hold its weight as ``adapter.weight``."""


def _rename_old_keys(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """Load-state-dict pre-hook: rename the keys of checkpoints written before a parameter
    was renamed (:data:`_OLD_KEYS`), so old checkpoints keep loading."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        rest = key[len(prefix):]
        for old, new in _OLD_KEYS.items():
            if rest.startswith(old):
                state_dict[prefix + new + rest[len(old):]] = state_dict.pop(key)

"""``ModelConfig``: every architectural switch of a looped LM, one field each.

Frozen so that a config is a value (hashable, safe to share); presets and YAML overrides
live in :mod:`blindspot.train.config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Readout = Literal["norm", "raw", "final_only_norm"]
NormKind = Literal["rmsnorm", "layernorm"]
BlockNorm = Literal["pre", "sandwich"]
Injection = Literal["none", "add", "concat"]
Init = Literal["paper", "gpt2"]
AttentionKernel = Literal["sdpa", "explicit", "blocked", "auto"]
READOUTS: tuple[str, ...] = get_args(Readout)
"""The readout kinds, ``norm`` (W·N(H_k) at every loop), ``raw`` (W·H_k) and
``final_only_norm`` (raw, N at the last loop), in the order of the config's Literal."""


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 256  # CPU presets use bytes/characters; the paper's GPU presets 20k words
    max_seq_len: int = 128  # learned position embeddings up to this length
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2  # layers in the shared stack applied once per loop
    ff_mult: float = 4.0  # SwiGLU hidden width = ff_mult * d_model
    num_loops: int = 4  # K: how many times the shared stack is applied
    dropout: float = 0.0
    norm: NormKind = "rmsnorm"  # kind of every norm (blocks, readout, inter-loop)
    norm_eps: float = 1e-6  # ε of every norm; ε > 0 leaks a little scale (proofs/eps_leak.md)
    readout: Readout = "norm"  # norm: W·N(H_k); raw: W·H_k; final_only_norm: raw, N at loop K
    inter_loop_norm: bool = False  # feed N(H_k) to loop k+1 (scale-removing recurrence)
    block_norm: BlockNorm = "pre"  # pre: x + f(N(x)); sandwich: x + N(f(N(x)))
    prelude_layers: int = 0  # Huginn-style unshared layers before the loop
    coda_layers: int = 0  # unshared layers after the loop (before every readout)
    input_injection: Injection = "none"  # re-inject the prelude output e at every loop
    tie_embeddings: bool = True  # readout matrix W = token embedding
    # Weight init (LoopedLM docstring): "paper" = PyTorch's defaults, as the paper's release
    # (embeddings N(0, 1), so ‖H_0‖ ≈ √(2d); linears U(±1/√fan_in)); "gpt2" = N(0, 0.02²) with
    # depth-scaled residual projections (blindspot 0.1's init, a named contrast).
    init: Init = "paper"
    init_embed_std: float | None = None  # std of token/position embeddings; None: the init's
    # How attention is computed (blindspot.nn.functional.causal_attention): one function, four
    # kernels. "sdpa": torch's scaled_dot_product_attention, the library default. "explicit":
    # softmax(QKᵀ/√d_h + M)V written out (softmax in float32). "blocked": the same by blocks of
    # queries, in the inputs' precision, with cheaper dropout masks; the fastest on a CPU with
    # attention dropout (CPU SDPA with dropout falls back to a math kernel that upcasts bf16 to
    # float32; the measured ratios are in the README's Performance section). "auto": blocked
    # on a CPU with dropout, sdpa otherwise (CUDA, evaluation); the CPU preset's choice. The
    # kernels draw different dropout masks: a seed gives another, equally valid run per kernel.
    attention_kernel: AttentionKernel = "sdpa"

"""The small float64 ``LoopedLM`` the quick checks share, and its token batches.

Small enough for the quick tier (a forward and backward in float64 take milliseconds), large
enough to have every part of the real model: attention and SwiGLU sublayers, a stack of two
blocks per loop, learned positions, and a readout tied to the token embedding. ε = 0, so the
normalizers are exactly scale invariant unless a check asks for ε > 0.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from blindspot.nn import LoopedLM, ModelConfig

SMALL = ModelConfig(vocab_size=64, max_seq_len=16, d_model=32, n_heads=4, n_layers=2,
                    ff_mult=2.0, num_loops=4, norm_eps=0.0)


def small_model(seed: int = 0, **overrides) -> LoopedLM:
    """A float64 :class:`LoopedLM` of :data:`SMALL` (with ``overrides``) in eval mode, its
    weights drawn after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return LoopedLM(replace(SMALL, **overrides)).double().eval()


def small_tokens(seed: int = 1, batch: int = 2) -> Tensor:
    """(B, T+1) tokens: inputs are [:, :-1], next-token targets [:, 1:]."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, SMALL.vocab_size, (batch, SMALL.max_seq_len + 1), generator=g)


def small_inputs(seed: int = 1) -> Tensor:
    """(2, T) token ids: the inputs of a forward pass (no targets)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, SMALL.vocab_size, (2, SMALL.max_seq_len), generator=g)

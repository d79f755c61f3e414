"""``LoopTrace``: what one forward pass of a looped model records, loop by loop.

This is the contract between models (our :class:`blindspot.nn.LoopedLM`, or any foreign
looped model through :mod:`blindspot.diagnostics`' adapter) and every diagnostic.

Conventions (one name, one concept):
- loop k = 1..K applies the shared block(s) once; ``states[k-1]`` is H_k, the state after
  loop k **before** any inter-loop normalization: the state the readout of loop k decodes
  and whose scale ‖H_k‖ the paper reports.
- ``carried[k-1]`` is what loop k+1 actually receives (after the inter-loop norm, if any;
  the same tensor as ``states[k-1]`` otherwise).
- ``initial`` is H_0, the input of loop 1 (after the prelude, if any).
- ``scale`` of a state is the per-token Euclidean norm over the model dimension, shape
  (B, T); a model-level scale is its mean over tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class LoopTrace:
    initial: Tensor  # (B, T, d) H_0
    states: list[Tensor]  # K x (B, T, d) H_k before any inter-loop norm
    carried: list[Tensor]  # K x (B, T, d) what loop k+1 receives
    logits: list[Tensor] | None = None  # K x (B, T, V) per-loop readout logits, if computed

    @property
    def num_loops(self) -> int:
        return len(self.states)

    def scales(self) -> Tensor:
        """(K, B, T) per-token ‖H_k‖ before any inter-loop norm."""
        return torch.stack([h.norm(dim=-1) for h in self.states])

    def carried_scales(self) -> Tensor:
        """(K, B, T) per-token norm of what the next loop receives."""
        return torch.stack([h.norm(dim=-1) for h in self.carried])

    def detach(self) -> LoopTrace:
        return LoopTrace(
            self.initial.detach(),
            [h.detach() for h in self.states],
            [h.detach() for h in self.carried],
            None if self.logits is None else [z.detach() for z in self.logits],
        )

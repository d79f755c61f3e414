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


def token_stats(values: Tensor) -> dict[str, float]:
    """Mean, median, 99th percentile and max of per-token values (any shape), e.g. the
    per-token scales ‖H_k‖ of the paper's Table 10."""
    s = values.detach().double().flatten()  # (N,)
    return {"mean": s.mean().item(), "median": s.median().item(),
            "p99": torch.quantile(s, 0.99).item(), "max": s.max().item()}


def mechanism_rows(initial: Tensor, states: list[Tensor], token_vec: Tensor,
                   pos_vec: Tensor | None, self_logits: list[Tensor]) -> list[dict[str, float]]:
    """Per loop k = 1..K, means over tokens of: the split of H_k along the current token's
    embedding and the position embedding (``alpha``, ``beta``, ``rest`` = ‖r‖;
    :func:`blindspot.nn.functional.embedding_components`), ``self_logit`` (the given (B, T)
    logit of the current token, centred however the caller chose), ``radial_increment``
    a_k = ⟨u_{k-1}, H_k − H_{k-1}⟩ from H_{k-1} (H_0 = ``initial``), and ``scale`` ‖H_k‖."""
    from blindspot.nn.functional import embedding_components, radial_split

    rows, prev = [], initial
    for k, (h, z) in enumerate(zip(states, self_logits, strict=True), start=1):
        comp = embedding_components(h, token_vec, pos_vec)
        a, _ = radial_split(prev.double(), (h - prev).double())
        rows.append({"loop": k, "alpha": comp["alpha"].mean().item(),
                     "beta": comp["beta"].mean().item(), "rest": comp["rest"].mean().item(),
                     "self_logit": z.double().mean().item(),
                     "radial_increment": a.mean().item(),
                     "scale": h.detach().double().norm(dim=-1).mean().item()})
        prev = h
    return rows

"""Training objectives of the paper as pure functions of per-loop logits and states.

With logits z_k (B, T, V) of loop k = 1..K, targets y and states H_k (B, T, d):

- per-loop cross-entropy  CE_k = mean_{b,t} [-log softmax(z_k)_{y}]
- ``per_loop`` supervision  L = (1/K) Σ_k CE_k;  ``terminal`` supervision  L = CE_K
- norm penalty  P = λ · (1/K) Σ_k mean_{b,t} ‖H_k‖² / d   (the paper's mean squared activation),
  added to either supervision (Table 1's "terminal + norm penalty" and "per-loop + norm penalty").

The radial force of P on a state is 2λ‖H_k‖²/(K·B·T·d) along H_k (proofs/readouts.md), while a
normalized readout's CE puts none (proofs/euler.md). ``tests/test_train_losses.py`` checks each
formula against a hand computation and that the per-loop CE through an ε = 0 RMSNorm readout
has zero radial gradient.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from blindspot.nn.readout_ce import at_least_float32, readout_cross_entropy


def per_loop_cross_entropy(logits: Sequence[Tensor], targets: Tensor) -> Tensor:
    """(K,) mean token cross-entropy of each loop's logits (in at least float32): the plain
    path of :func:`blindspot.nn.readout_ce.readout_cross_entropy`, which the trainer reaches
    through ``LoopedLM.loop_cross_entropy``."""
    return readout_cross_entropy(logits, None, targets)


def supervision_loss(ce: Tensor, supervision: str) -> Tensor:
    """Mean of the per-loop CE (``per_loop``) or the last loop's CE (``terminal``)."""
    if supervision == "per_loop":
        return ce.mean()
    if supervision == "terminal":
        return ce[-1]
    raise ValueError(f"unknown supervision {supervision!r}; valid: per_loop, terminal")


def mean_square_scale(states: Sequence[Tensor]) -> Tensor:
    """(K,) mean over tokens of ‖H_k‖²/d (in at least float32)."""
    return torch.stack([at_least_float32(h).pow(2).mean() for h in states])


def norm_penalty(states: Sequence[Tensor], lam: float) -> Tensor:
    """λ times the mean over loops of :func:`mean_square_scale`."""
    return lam * mean_square_scale(states).mean()


def mean_scale(states: Sequence[Tensor]) -> Tensor:
    """(K,) mean over tokens of the per-token norm ‖H_k‖: the scale the paper reports."""
    return torch.stack([at_least_float32(h.detach()).norm(dim=-1).mean() for h in states])


def loss_of(ce: Tensor, states: Sequence[Tensor], supervision: str, lam: float) -> Tensor:
    """The loss of one batch from its per-loop CE: supervision loss plus the norm penalty
    when λ > 0 (what the trainer minimizes, after ``LoopedLM.loop_cross_entropy``)."""
    loss = supervision_loss(ce, supervision)
    if lam > 0:
        loss = loss + norm_penalty(states, lam)
    return loss


def objective(logits: Sequence[Tensor], states: Sequence[Tensor], targets: Tensor,
              supervision: str, lam: float) -> tuple[Tensor, Tensor]:
    """(loss, per-loop CE) of one batch from its logits: :func:`per_loop_cross_entropy`, then
    :func:`loss_of`."""
    ce = per_loop_cross_entropy(logits, targets)  # (K,) or (1,) for a terminal-only readout
    return loss_of(ce, states, supervision, lam), ce

r"""Scale-visible losses: terms a user adds to their own loss so that some loss sees ‖H_k‖.

Per-loop cross-entropy through a scale-invariant readout (RMSNorm, LayerNorm) puts no force
along the state, :math:`⟨H_k, ∇_{H_k}\,\mathrm{CE}(W N(H_k), y)⟩ = 0` at ε = 0
(proofs/euler.md, certificate ``EULER``), so nothing in the loss stops the residual
recurrence from growing the scale. Each term below puts a force on the scale that has a
closed form: its *radial force*, the derivative
:math:`⟨h, ∇_h\,\ell⟩ = \tfrac{d}{dc}\ell(c\,h)|_{c=1}` of its per-token term
:math:`\ell`, which each term's ``radial_force`` returns and ``blindspot.checks.control``
compares with autograd.

Both take the loop states H_1..H_K of the model's own forward pass (from
:class:`blindspot.control.StateTap`, or ``LoopedLM``'s ``out.states``) and return
:math:`\frac1K \sum_k \mathrm{mean}_{b,t}\,\ell(H_{k,b,t})`, the same weighting as a per-loop
cross-entropy averaged over loops. Adding one never changes the model's forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def _at_least_fp32(x: Tensor) -> Tensor:
    """bf16/fp16 (autocast) values are upcast; float32 and float64 are kept as they are."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _mean_over_loops(term: Callable[[Tensor], Tensor], states: Sequence[Tensor],
                     what: str) -> Tensor:
    """(1/K) Σ_k mean over tokens of ``term(H_k)``, refusing an empty or non-finite input."""
    if len(states) == 0:
        raise ValueError(f"{what} got no states: record them during the forward pass (e.g. "
                         "`with StateTap(model.body) as tap: model(x)`, then pass tap.states)")
    loss = torch.stack([term(h).mean() for h in states]).mean()
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{what} is not finite: a loop state holds NaN or inf (the model "
                                 "diverged); lower the learning rate or add a scale control "
                                 "earlier in training")
    return loss


@dataclass(frozen=True)
class NormPenalty:
    r"""The norm penalty :math:`P = λ\,\frac1K\sum_k \mathrm{mean}_{b,t}\,\mathrm{ms}(H_k)`,
    :math:`\mathrm{ms}(h) = \lVert h\rVert^2/n` (the paper's mean squared activation, λ = 0.01).

    **Radial force.** Per token, :math:`⟨h, ∇_h\,λ\,\mathrm{ms}(h)⟩ = 2λ\lVert h\rVert^2/n`:
    always positive (it pulls the state toward the origin) and growing with the scale, so it
    balances any constant outward push of the recurrence at a finite scale.
    Certificate: ``blindspot.symbolic.identities.NORM_PENALTY`` (proofs/readouts.md); checked
    against autograd by the claim ``control.norm_penalty_force``.
    """

    weight: float = 0.01  # λ

    def __post_init__(self):
        if not self.weight >= 0:
            raise ValueError(f"NormPenalty.weight (λ) must be >= 0, got {self.weight!r}")

    def per_token(self, h: Tensor, targets: Tensor | None = None) -> Tensor:
        """(B, T) λ·ms(h) of each token's state (``targets`` unused)."""
        return self.weight * _at_least_fp32(h).pow(2).mean(-1)

    def radial_force(self, h: Tensor, targets: Tensor | None = None) -> Tensor:
        """(B, T) closed form of ⟨h, ∇_h λ·ms(h)⟩ = 2λ‖h‖²/n."""
        h = _at_least_fp32(h)
        return 2 * self.weight * h.pow(2).sum(-1) / h.shape[-1]

    def __call__(self, states: Sequence[Tensor], targets: Tensor | None = None) -> Tensor:
        """λ · (1/K) Σ_k mean_{b,t} ms(H_k): add it to the training loss."""
        return _mean_over_loops(self.per_token, states, "NormPenalty")


@dataclass(frozen=True)
class RawReadoutLoss:
    r"""A scale-visible auxiliary loss: cross-entropy of the *raw* readout
    :math:`z = W H_k + b` (the model's head without its norm) at weight μ,
    :math:`A = μ\,\frac1K\sum_k \mathrm{mean}_{b,t}\,\mathrm{CE}(W H_k + b, y)`.

    ``head`` maps a (B, T, d) state to (B, T, V) logits and must be affine in the state (an
    ``nn.Linear``: pass the model's output projection, not its normalized readout). Its
    gradient also reaches the head's weights, as a raw readout's would.

    **Radial force.** Per token, with :math:`z_0 = W h` (the part of the logits linear in h)
    and :math:`p = \mathrm{softmax}(z)`:
    :math:`⟨h, ∇_h\,μ\,\mathrm{CE}⟩ = μ\,(\mathbb{E}_p[z_0] - z_{0,y})`, the derivative with
    respect to an inverse temperature: non-zero in general, so the loss sees the scale; it
    pushes the scale out while the raw readout is under-confident and in once it is
    over-confident. Certificate: ``blindspot.symbolic.identities.RAW_READOUT``
    (proofs/readouts.md); checked against autograd by the claim ``control.raw_readout_force``.
    """

    head: Callable[[Tensor], Tensor]  # W (and bias b): state -> logits, no norm
    weight: float = 0.1  # μ

    def __post_init__(self):
        if not callable(self.head):
            raise TypeError(f"RawReadoutLoss.head must be callable (e.g. the model's output "
                            f"nn.Linear), got {type(self.head).__name__}")
        if not self.weight >= 0:
            raise ValueError(f"RawReadoutLoss.weight (μ) must be >= 0, got {self.weight!r}")

    def logits(self, h: Tensor) -> Tensor:
        """(B, T, V) raw logits W·h + b, shape-checked."""
        z = self.head(h)
        if not isinstance(z, Tensor) or z.dim() != 3 or z.shape[:2] != h.shape[:2]:
            got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"RawReadoutLoss.head returned {got} for a state of shape "
                             f"{tuple(h.shape)}: it must map (B, T, d) to (B, T, V) logits; "
                             "pass the model's output projection (an nn.Linear)")
        return _at_least_fp32(z)

    def per_token(self, h: Tensor, targets: Tensor) -> Tensor:
        """(B, T) μ·CE(W h + b, y) of each token."""
        if targets is None or targets.shape != h.shape[:2]:
            got = None if targets is None else tuple(targets.shape)
            raise ValueError(f"RawReadoutLoss needs next-token targets of shape "
                             f"{tuple(h.shape[:2])} (the states' (B, T)), got {got}")
        z = self.logits(h)
        return self.weight * F.cross_entropy(z.flatten(0, 1), targets.flatten(),
                                             reduction="none").view(targets.shape)

    def radial_force(self, h: Tensor, targets: Tensor) -> Tensor:
        """(B, T) closed form of ⟨h, ∇_h μ·CE(W h + b, y)⟩ = μ(E_p[z₀] − z₀,y), z₀ = W h."""
        z = self.logits(h)
        z0 = z - self.logits(torch.zeros_like(h))  # (B, T, V) the part linear in h
        p = z.softmax(-1)
        expected = (p * z0).sum(-1) - z0.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return self.weight * expected

    def __call__(self, states: Sequence[Tensor], targets: Tensor) -> Tensor:
        """μ · (1/K) Σ_k mean_{b,t} CE(W H_k + b, y): add it to the training loss."""
        return _mean_over_loops(lambda h: self.per_token(h, targets), states, "RawReadoutLoss")

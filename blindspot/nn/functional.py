"""Functional kernels of the looped LM: pure functions, one formula each.

The modules of :mod:`blindspot.nn.model` are thin wrappers over these, and the diagnostics
call them directly, so every normalizer the paper talks about has exactly one definition.
Notation as in the proofs (proofs/normalizers.md): n is the model width (last dimension),
ms(h) = ‖h‖²/n.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def rms_norm(x: Tensor, weight: Tensor | None = None, eps: float = 0.0) -> Tensor:
    r"""RMSNorm over the last dimension.

    .. math:: N(h) = \gamma \odot \frac{h}{r}, \qquad r = \sqrt{\mathrm{ms}(h) + \varepsilon},
              \quad \mathrm{ms}(h) = \tfrac{1}{n}\lVert h \rVert^2 .

    With ε = 0 it is exactly scale invariant, N(c·h) = N(h) for c > 0 (proofs/normalizers.md): see
    ``tests/test_nn_functional.py::test_rms_norm_is_scale_invariant_at_eps_zero``. A zero
    vector with ε = 0 gives NaN (0/0), as the formula does.
    """
    return F.rms_norm(x, (x.shape[-1],), weight, eps)


def layer_norm(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 0.0) -> Tensor:
    r"""LayerNorm over the last dimension.

    .. math:: \mathrm{LN}(h) = \gamma \odot \frac{P h}{\sigma} + \beta, \qquad
              P = I - \tfrac{1}{n}\mathbb{1}\mathbb{1}^\top, \quad
              \sigma = \sqrt{\lVert P h \rVert^2 / n + \varepsilon} .

    With ε = 0, LN(c·h + b·𝟙) = LN(h) for c > 0 (proofs/normalizers.md): see
    ``tests/test_nn_functional.py::test_layer_norm_is_scale_and_shift_invariant_at_eps_zero``.
    """
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def radial_split(h: Tensor, delta: Tensor) -> tuple[Tensor, Tensor]:
    r"""Split an update Δ of a state h into its radial and tangential parts (proofs/lemma2.md).

    .. math:: u = h / \lVert h \rVert, \qquad a = \langle u, \Delta \rangle, \qquad
              \Delta_\perp = \Delta - a\,u ,

    per token (over the last dimension). Returns ``(a, delta_perp)`` with shapes (...,) and
    (..., n). Then Δ = a·u + Δ⊥ with ⟨u, Δ⊥⟩ = 0, and exactly
    ‖h + Δ‖² = ‖h‖² + 2‖h‖·a + ‖Δ‖²: see
    ``tests/test_nn_functional.py::test_radial_split_reconstructs_and_is_orthogonal``.
    A zero state has no direction: there u is taken as 0, so a = 0 and Δ⊥ = Δ.
    """
    if h.shape != delta.shape:
        raise ValueError(f"radial_split: h has shape {tuple(h.shape)} but delta has "
                         f"{tuple(delta.shape)}; pass a state and its update of the same shape")
    s = h.norm(dim=-1, keepdim=True)  # (..., 1) scale ‖h‖
    # Where ‖h‖ = 0 the direction is undefined; u = 0 keeps the split finite (a = 0, Δ⊥ = Δ).
    u = torch.where(s > 0, h / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(h))
    a = (u * delta).sum(dim=-1)  # (...,) radial increment
    delta_perp = delta - a.unsqueeze(-1) * u  # (..., n) tangential part
    return a, delta_perp


def causal_attention(q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0) -> Tensor:
    r"""Causal scaled dot-product attention, :math:`\mathrm{softmax}(QK^\top/\sqrt{d_h} + M)V`
    with M the causal mask (−∞ above the diagonal); q, k, v are (B, H, T, d_h).

    Delegates to ``F.scaled_dot_product_attention`` so that the fused kernel (no T×T matrix
    kept for backward) is used. Compared with the explicit formula in
    ``tests/test_nn_functional.py::test_causal_attention_matches_explicit_softmax``.
    """
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)

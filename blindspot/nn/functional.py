"""Functional kernels of the looped LM: pure functions, one formula each.

The modules of :mod:`blindspot.nn.model` are thin wrappers over these, and the diagnostics
call them directly, so every normalizer the paper talks about has exactly one definition.
Notation as in the proofs (proofs/normalizers.md): n is the model width (last dimension),
ms(h) = ‖h‖²/n.
"""

from __future__ import annotations

import math

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


ATTENTION_KERNELS = ("sdpa", "explicit", "blocked", "auto")
"""The values of ``causal_attention(kernel=...)`` and of ``ModelConfig.attention_kernel``."""
ATTENTION_BLOCK = 128
"""Query rows per block of the ``blocked`` kernel. Measured (one thread, bf16, dropout 0.1,
2,048 tokens per step, the CPU preset's model; ``benchmarks/roofline.py`` has the committed
numbers): 2 blocks of 128 were the fastest split at sequence 256 and 8 blocks of 128 at 1,024,
while at 64 one block and two of 32 ran within 1 % of each other."""


def resolve_attention_kernel(kernel: str, dropout_p: float, device_type: str) -> str:
    """The kernel that ``kernel="auto"`` runs: ``blocked`` when attention dropout is on and the
    tensors live on a CPU (where SDPA with dropout falls back to a float32 math kernel), else
    ``sdpa`` (its fused kernels: flash or memory-efficient attention with dropout on CUDA, the
    CPU flash kernel without dropout, as in evaluation). Any other kernel is returned as it
    is."""
    if kernel != "auto":
        return kernel
    return "blocked" if dropout_p > 0 and device_type == "cpu" else "sdpa"


def causal_attention(q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0,
                     kernel: str = "sdpa") -> Tensor:
    r"""Causal scaled dot-product attention, :math:`\mathrm{softmax}(QK^\top/\sqrt{d_h} + M)V`
    with M the causal mask (−∞ above the diagonal); q, k, v are (B, H, T, d_h). Dropout with
    probability ``dropout_p`` falls on the attention probabilities; the caller passes 0
    outside training.

    ``kernel="sdpa"`` (the default) delegates to ``F.scaled_dot_product_attention`` so that
    the fused kernel (no T×T matrix kept for backward) is used when dropout is off.
    ``kernel="explicit"`` is :func:`explicit_causal_attention`, the same function written
    out; ``kernel="blocked"`` is :func:`blocked_causal_attention`, the same function by blocks
    of queries in the inputs' precision; ``kernel="auto"`` picks one by device and dropout
    (:func:`resolve_attention_kernel`). Compared with the formula in
    ``tests/test_nn_functional.py::test_causal_attention_matches_explicit_softmax``, and
    with each other in
    ``tests/test_nn_functional.py::test_explicit_attention_equals_sdpa_in_float64``.
    """
    if kernel == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
    if kernel == "explicit":
        return explicit_causal_attention(q, k, v, dropout_p)
    if kernel == "blocked":
        return blocked_causal_attention(q, k, v, dropout_p)
    if kernel == "auto":
        return causal_attention(q, k, v, dropout_p,
                                resolve_attention_kernel(kernel, dropout_p, q.device.type))
    raise ValueError(f"causal_attention: kernel = {kernel!r}; valid choices are "
                     + ", ".join(repr(c) for c in ATTENTION_KERNELS))


def explicit_causal_attention(q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0) -> Tensor:
    r"""Causal attention written out, the ``attention_kernel="explicit"`` of a model:

    .. math:: S = QK^\top/\sqrt{d_h}, \qquad P = \mathrm{softmax}(S + M), \qquad
              Y = \mathrm{dropout}(P)\,V ,

    S in the inputs' dtype (bf16 under autocast), the masked softmax in float32 (float64
    inputs stay float64), dropout on P with ``F.dropout`` (kept entries scaled by
    1/(1 − p); only when ``dropout_p`` > 0), then P cast to v's dtype for the product with V.

    Why it exists: on a CPU, ``F.scaled_dot_product_attention`` with ``dropout_p`` > 0
    cannot use its fused kernel and falls back to the math kernel, which upcasts bf16 inputs
    to float32, so a bf16 training step with attention dropout spends most of its time in
    float32 attention products (benchmarks/roofline.py profiles it). Here only the softmax
    runs in float32 and both products stay in bf16; :func:`blocked_causal_attention` goes
    further (bf16 throughout, only the keys each block of queries sees) and is the CPU preset's
    choice. Without dropout it computes SDPA's function to round-off; with dropout it draws its
    masks differently from SDPA, so a seed gives another, equally valid run.
    """
    T, S = q.shape[-2], k.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, T, S), inputs' dtype
    future = torch.ones(T, S, dtype=torch.bool, device=q.device).triu(1)  # (T, S) mask M
    scores = scores.masked_fill(future, float("-inf"))
    probs = scores.softmax(-1, dtype=torch.float64 if scores.dtype == torch.float64
                           else torch.float32)  # (B, H, T, S) P
    if dropout_p > 0:
        probs = F.dropout(probs, dropout_p)
    return probs.to(v.dtype) @ v  # (B, H, T, d_h)


def blocked_causal_attention(q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0,
                             block: int = ATTENTION_BLOCK) -> Tensor:
    r"""Causal attention by blocks of ``block`` queries, the ``attention_kernel="blocked"``:
    the function of :func:`explicit_causal_attention`, computed so that a CPU does less work.

    - **Only the keys a block can see.** Queries t0..t1-1 attend to keys 0..t1-1 only (the rest
      are masked anyway), so the score, softmax, dropout and product work on about
      (n + 1)/(2n) of the T×T matrix for n blocks, and each block's matrix stays in cache.
    - **The inputs' precision throughout.** S, P and the dropout mask are in the inputs' dtype
      (bf16 under autocast). The softmax kernel accumulates in float32 internally and rounds its
      output once, which is the rounding P receives anyway before the product with V in the
      explicit kernel; float32 and float64 inputs are computed in their own precision.
    - **Dropout from uniform draws.** A kept entry is one whose ``torch.rand`` draw is ≥ p
      (probability 1 − p up to 2⁻²⁴), scaled by 1/(1 − p), which costs less than
      ``F.dropout``'s Bernoulli sampler on a CPU. The masks therefore differ from the other
      kernels': a seed gives another, equally valid run (deterministic for a fixed seed).

    Without dropout it computes :func:`explicit_causal_attention` to round-off (checked in
    float64 in ``tests/test_nn_functional.py``). q, k, v are (B, H, T, d_h) with k, v the same
    length T as q.
    """
    if block < 1:
        raise ValueError(f"blocked_causal_attention: block = {block} must be >= 1")
    T = q.shape[-2]
    if k.shape[-2] != T:
        raise ValueError(f"blocked_causal_attention: {k.shape[-2]} keys for {T} queries; causal "
                         "self-attention needs as many keys as queries")
    scale = 1.0 / math.sqrt(q.shape[-1])
    reduced = q.dtype in (torch.bfloat16, torch.float16)
    outs = []
    for t0 in range(0, T, block):
        t1 = min(t0 + block, T)
        scores = (q[..., t0:t1, :] @ k[..., :t1, :].transpose(-2, -1)) * scale  # (B, H, b, t1)
        future = torch.ones(t1 - t0, t1, dtype=torch.bool, device=q.device).triu(t0 + 1)
        scores = scores.masked_fill(future, float("-inf"))
        probs = scores.softmax(-1) if reduced else scores.softmax(-1, dtype=scores.dtype)
        if dropout_p > 0:
            keep = torch.rand(probs.shape, device=probs.device) >= dropout_p
            probs = probs.mul(keep).mul_(1.0 / (1.0 - dropout_p))
        outs.append(probs.to(v.dtype) @ v[..., :t1, :])  # (B, H, b, d_h)
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=-2)


def embedding_components(h: Tensor, token_vec: Tensor, pos_vec: Tensor | None = None
                         ) -> dict[str, Tensor]:
    r"""Split each state h into its part along the current token's embedding e = E[x_t], its
    part along the position embedding p = P[t], and the rest (the mechanism of the self-logit
    law, notebooks/growth_law.md):

    .. math:: h = \alpha\, e + \beta\, p + r, \qquad r \perp \operatorname{span}\{e, p\},

    per token, by least squares over the last dimension (a 2×2 solve; with ``pos_vec`` None,
    h = α e + r). α = 1, β = 1 and r = 0 at H_0 = e + p without a prelude. α falling towards
    0 means the loops *cancel* the token embedding, a growing ‖r‖ at α ≈ 1 that they *dilute*
    it. Returns ``alpha``, ``beta`` (zeros without positions) and ``rest`` = ‖r‖, each of
    shape h.shape[:-1]; every input broadcasts to h's shape. Computed in float64 when h is
    float64, else float32: the 2×2 system is well conditioned for independent random e and p
    (their cosine is O(1/√d)), ``tests/test_nn_functional.py`` checks the reconstruction.
    """
    dt = torch.float64 if h.dtype == torch.float64 else torch.float32
    h, e = h.to(dt), token_vec.to(dt).expand_as(h)
    ee = (e * e).sum(-1)
    he = (h * e).sum(-1)
    if pos_vec is None:
        alpha = he / ee
        return {"alpha": alpha, "beta": torch.zeros_like(alpha),
                "rest": (h - alpha.unsqueeze(-1) * e).norm(dim=-1)}
    p = pos_vec.to(dt).expand_as(h)
    pp, ep, hp = (p * p).sum(-1), (e * p).sum(-1), (h * p).sum(-1)
    det = ee * pp - ep * ep  # > 0 unless e ∥ p
    alpha = (he * pp - hp * ep) / det
    beta = (hp * ee - he * ep) / det
    rest = h - alpha.unsqueeze(-1) * e - beta.unsqueeze(-1) * p
    return {"alpha": alpha, "beta": beta, "rest": rest.norm(dim=-1)}

r"""The per-loop cross-entropy of a tied readout, for all K loops in one call, without holding
the K·B·T·V logits when they are large.

With features x_k (B, T, d) of loop k (the state after the readout's coda and norm), the
readout matrix W (V, d) and targets y (B, T), loop k's logits and cross-entropy are

.. math:: z_k = x_k W^\top, \qquad
          \mathrm{CE}_k = \frac{1}{N} \sum_{n} \bigl(\log \textstyle\sum_v e^{z_{k,nv}}
          - z_{k,n y_n}\bigr), \qquad N = B\,T .

:func:`readout_cross_entropy` computes the K values one of two ways, chosen by the size of
the float32 logits of all loops, K·N·V·4 bytes (:func:`chunked`):

- up to :data:`PLAIN_MAX_BYTES` (64 MiB: every CPU preset, 4 MiB or less), the **plain**
  computation: one ``F.linear`` and one ``F.cross_entropy`` per loop, exactly the operations
  of a model that returns its logits, so a training run is bit for bit what it was before
  this function existed
  (``tests/test_train.py::test_training_step_is_bit_identical_to_the_plain_step``);
- above it, the **chunked** one (:class:`ChunkedReadoutCE`): the rows of all K loops are
  stacked into one (K·N, d) matrix and decoded :data:`CHUNK_BYTES` of logits at a time.
  The forward pass keeps only its inputs; the backward pass recomputes each chunk's logits
  and forms the gradients from their softmax,

  .. math:: \frac{\partial \ell_n}{\partial z_n} = g_n\,(\mathrm{softmax}(z_n) - e_{y_n}),
            \qquad \nabla_{x_n} = \tfrac{\partial \ell_n}{\partial z_n} W, \qquad
            \nabla_W = \sum_n \bigl(\tfrac{\partial \ell_n}{\partial z_n}\bigr)^{\!\top} x_n ,

  so memory holds one chunk of logits instead of K·N·V, at the cost of a second logits
  GEMM. It equals the plain computation to float32 round-off, gradients included
  (``tests/test_nn_readout_ce.py``).

Both paths follow autocast as ``nn.Linear`` does (the logits GEMM in bf16 under bf16
autocast, with float32 weights), and compute the softmax and the loss in at least float32.
With ``weight=None`` the inputs are logits already (a foreign model's readout, the
diagnostics): the plain computation, so every per-loop CE in the package has one definition.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

PLAIN_MAX_BYTES = 64 * 2**20
"""The largest float32 logits of all loops (K·N·V·4 bytes) still computed the plain way. 64
MiB keeps every CPU preset (at most 4 MiB) on the plain path, and switches the paper's 44M
vocabulary (V = 20,000, so 625 MiB at batch 8 × 256) to chunks."""

CHUNK_BYTES = 16 * 2**20
"""The float32 logits per chunk of the chunked path (about 210 rows at V = 20,000), enough
rows for a GEMM near its peak speed and small beside the activations of a training step."""

REDUCTIONS = ("mean", "sum", "none")


def at_least_float32(x: Tensor) -> Tensor:
    """bf16/fp16 (autocast) values are upcast; float32 and float64 are kept as they are."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def chunked(num_loops: int, tokens: int, vocab: int,
            max_bytes: int = PLAIN_MAX_BYTES) -> bool:
    """Whether K = ``num_loops`` loops of ``tokens`` rows over ``vocab`` logits take the
    chunked path: their float32 logits exceed ``max_bytes``."""
    return num_loops * tokens * vocab * 4 > max_bytes


def readout_cross_entropy(inputs: Sequence[Tensor], weight: Tensor | None, targets: Tensor, *,
                          reduction: str = "mean", dtype: torch.dtype | None = None,
                          max_bytes: int = PLAIN_MAX_BYTES,
                          chunk_bytes: int = CHUNK_BYTES) -> Tensor:
    """Cross-entropy of each loop's readout against ``targets`` (B, T) (module docstring).

    ``inputs``: K tensors (B, T, d) of readout features with ``weight`` (V, d) the readout
    matrix, or K tensors (B, T, V) of logits with ``weight=None``. Returns (K,) mean CE
    (``reduction="mean"``), (K,) summed CE (``"sum"``) or (K, N) per-token CE (``"none"``),
    in ``dtype`` (default: the logits' dtype, at least float32). ``max_bytes`` is the size
    above which the features are decoded in chunks of ``chunk_bytes`` logits (0: always).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction = {reduction!r}: valid choices are "
                         + ", ".join(repr(r) for r in REDUCTIONS))
    inputs = list(inputs)
    if not inputs:
        raise ValueError("readout_cross_entropy needs the readout of at least one loop")
    y = targets.reshape(-1)  # (N,)
    if weight is not None and chunked(len(inputs), y.numel(), weight.shape[0], max_bytes):
        rows = max(1, chunk_bytes // (4 * weight.shape[0]))
        per_token = ChunkedReadoutCE.apply(weight, y, rows, dtype, *inputs)  # (K, N)
        if reduction == "none":
            return per_token
        return per_token.mean(dim=1) if reduction == "mean" else per_token.sum(dim=1)
    out = []
    for x in inputs:
        z = x if weight is None else F.linear(x, weight)  # (B, T, V), as nn.Linear computes it
        z = at_least_float32(z.reshape(-1, z.shape[-1]))  # (N, V)
        out.append(F.cross_entropy(z if dtype is None else z.to(dtype), y, reduction=reduction))
    return torch.stack(out)


def ce_logit_grad(logits: Tensor, targets: Tensor) -> Tensor:
    """∂CE/∂z of each row: softmax(z) − e_y, for logits (r, V) and targets (r,); the softmax is
    taken in the logits' dtype and the one-hot subtracted in place (one (r, V) buffer)."""
    p = torch.softmax(logits, dim=1)  # (r, V)
    p[torch.arange(len(p), device=p.device), targets] -= 1.0  # − e_y
    return p


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) \
        else None


class ChunkedReadoutCE(torch.autograd.Function):
    """Per-token CE (K, N) of the logits x_k Wᵀ of K loops, decoded ``rows`` rows at a time
    (module docstring). ``forward(weight, targets (N,), rows, dtype, *features)``; the
    gradients of ``weight`` and of every feature tensor are exact up to round-off, for any
    upstream gradient of the (K, N) output. Not twice differentiable."""

    @staticmethod
    def forward(ctx, weight: Tensor, targets: Tensor, rows: int, dtype: torch.dtype | None,
                *features: Tensor) -> Tensor:
        """The (K, N) per-token CE, keeping only the inputs for the backward pass."""
        K, d = len(features), weight.shape[1]
        # the GEMM's dtype is the one nn.Linear would use here: autocast's, else the inputs'
        gemm = _autocast_dtype(weight.device.type) or torch.result_type(features[0], weight)
        with torch.autocast(weight.device.type, enabled=False):
            x = torch.cat([f.reshape(-1, d) for f in features]).to(gemm)  # (K·N, d)
            w = weight.to(gemm)  # (V, d)
            ce_dtype = dtype or (torch.float64 if gemm == torch.float64 else torch.float32)
            y = targets.repeat(K)  # (K·N,)
            loss = torch.empty(len(x), dtype=ce_dtype, device=x.device)
            for s in range(0, len(x), rows):
                # log_softmax and softmax, not exp(z - logsumexp): torch's exp goes through
                # MKL on CPU, about 25x slower where the probabilities underflow (large logits)
                logp = torch.log_softmax((x[s:s + rows] @ w.T).to(ce_dtype), dim=1)  # (r, V)
                loss[s:s + rows] = -logp.gather(1, y[s:s + rows, None])[:, 0]
        ctx.save_for_backward(x, w, y)
        ctx.rows, ctx.ce_dtype = rows, ce_dtype
        ctx.dtypes = (weight.dtype, [f.dtype for f in features])
        ctx.shapes = [f.shape for f in features]
        return loss.view(K, -1)  # (K, N)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        """The gradients of ``weight`` and of every feature tensor, recomputed chunk by chunk
        (module docstring); ``None`` for the targets, row count and dtype."""
        x, w, y = ctx.saved_tensors
        w_dtype, f_dtypes = ctx.dtypes
        need_w, need_x = ctx.needs_input_grad[0], any(ctx.needs_input_grad[4:])
        g = grad.reshape(-1).to(ctx.ce_dtype)  # (K·N,)
        gx = torch.empty_like(x) if need_x else None
        gw = torch.zeros(w.shape, dtype=torch.promote_types(w.dtype, torch.float32),
                         device=w.device) if need_w else None
        with torch.autocast(x.device.type, enabled=False):
            for s in range(0, len(x), ctx.rows):
                xs = x[s:s + ctx.rows]  # (r, d)
                p = ce_logit_grad((xs @ w.T).to(ctx.ce_dtype), y[s:s + ctx.rows])  # (r, V)
                dz = p.mul_(g[s:s + ctx.rows, None]).to(x.dtype)  # (r, V) ∂ℓ/∂z
                if need_x:
                    gx[s:s + ctx.rows] = dz @ w
                if need_w:
                    gw += (dz.T @ xs).to(gw.dtype)
        grads_x = [None] * len(f_dtypes)
        if need_x:
            grads_x = [part.reshape(shape).to(dt) for part, shape, dt
                       in zip(gx.split(len(x) // len(f_dtypes)), ctx.shapes, f_dtypes,
                              strict=True)]
        return (None if gw is None else gw.to(w_dtype), None, None, None, *grads_x)

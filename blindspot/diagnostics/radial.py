r"""Radial gradient share: how much of the per-loop loss gradient points along the state.

For loop k with per-loop loss L_k = CE(readout_k(H_k), y) (summed over tokens, so each
token's state receives its own CE gradient g = ∇_{H_k} L_k), per token

.. math:: \cos(g, h) = \frac{⟨g, h⟩}{\|g\|\,\|h\|}, \qquad
          \text{radial share} = \frac{\|P_{rad}\, g\|}{\|g\|}
          = \sqrt{\frac{\sum_t ⟨g_t, u_t⟩^2}{\sum_t \|g_t\|^2}},

the second over all tokens of the batch. Closed forms (proofs/eps_leak.md,
proofs/readouts.md), for a readout z = W·h (raw) or z = W·RMSNorm_ε(h) (any gain, no bias),
with p = softmax(z):

.. math:: ⟨h, g⟩ = κ(h)\,(\mathbb{E}_p[z] - z_y), \qquad
          κ = 1 \text{ (raw)}, \quad κ = \frac{ε}{\mathrm{ms}(h) + ε} \text{ (RMSNorm)},

because d/dc L(c·h) at c = 1 equals ⟨h, g⟩ and d/dc z(c·h) = κ·z. So a normalized readout
has radial share exactly 0 at ε = 0 and an ε-leak of order ε/ms(h); a raw one does not.
A measured share is only meaningful above the round-off floor of the dtype
(proofs/precision.md), which the table reports beside it. Demonstrated in
``tests/test_diagnostics_math.py::test_radial_closed_form_matches_autograd``.

Beside that immediate force the table reports what the *total* per-loop loss
L = Σ_k CE_k sees (:func:`total_radial_force`, proofs/total_loss.md): per token

.. math:: R_k = ⟨H_k, ∇_{H_k} L⟩ = -\sum_{j=k}^{K-1} ⟨Δ_j, ∇_{H_{j+1}} L⟩, \qquad R_K = 0,

exactly when ε = 0 and each loop's update reads the state only through N(H_k) (one pre-norm
sublayer, no inter-loop norm, no input injection). Only the final state is blind to its own
scale; earlier states feel a radial force through the later loops. For a stack of sublayers
the prediction is first order in 1/‖H‖ (proofs/lemma2.md), and the table shows how far off
it is. Demonstrated in ``tests/test_diagnostics_theory.py``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from blindspot.diagnostics.adapter import LoopAdapter, ReadoutForm
from blindspot.diagnostics.recorder import continue_loops
from blindspot.diagnostics.table import Table
from blindspot.nn.readout_ce import readout_cross_entropy
from blindspot.nn.trace import LoopTrace

RADIAL_COLUMNS = ["loop", "scale_mean", "cos_mean", "abs_cos_mean", "radial_share",
                  "closed_form_share", "closed_form_error", "round_off_floor"]
TOTAL_COLUMNS = ["radial_force", "total_radial_force", "total_radial_force_predicted",
                 "total_radial_share"]


def radial_terms(h: Tensor, g: Tensor) -> dict[str, Tensor]:
    """Per-token ⟨h, g⟩, ‖h‖, ‖g‖ and cos; and the batch radial share ‖P_rad g‖/‖g‖."""
    inner = (h * g).sum(-1)  # (B, T) ⟨h, g⟩
    s = h.norm(dim=-1)
    gn = g.norm(dim=-1)
    cos = inner / (s * gn).clamp_min(torch.finfo(h.dtype).tiny)
    radial = inner / s.clamp_min(torch.finfo(h.dtype).tiny)  # ⟨u, g⟩
    share = radial.pow(2).sum().sqrt() / gn.pow(2).sum().sqrt().clamp_min(
        torch.finfo(h.dtype).tiny)
    return {"inner": inner, "scale": s, "grad_norm": gn, "cos": cos, "share": share}


def closed_form_inner(h: Tensor, logits: Tensor, targets: Tensor, form: ReadoutForm) -> Tensor:
    """⟨h, ∇_h CE⟩ per token from the closed form κ(h)·(E_p[z] − z_y)."""
    z = logits.double()  # (B, T, V)
    p = z.softmax(-1)
    expected = (p * z).sum(-1) - z.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    if form.kind == "raw":
        return expected
    ms = h.double().pow(2).mean(-1)  # (B, T) ms(h)
    return radial_gain(ms, form.eps) * expected


def radial_gain(ms: Tensor, eps: float) -> Tensor:
    """κ = ε/(ms(h) + ε): the factor by which an RMSNorm readout passes the radial derivative
    of its logits on to the state (proofs/eps_leak.md); ≈ ε/ms(h) only where ms(h) ≫ ε."""
    return eps / (ms + eps)


def loop_gradient(adapter: LoopAdapter, h: Tensor, targets: Tensor, loop: int,
                  num_loops: int) -> tuple[Tensor, Tensor, Tensor]:
    """(state, gradient of the summed per-loop CE through the loop's own readout, logits)."""
    h = h.detach().requires_grad_(True)
    with torch.enable_grad():
        z = adapter.head(h, loop, num_loops)  # (B, T, V)
        # float32 at least (bf16/f16 logits), never narrower than the model: a float32 cast of
        # float64 logits would round away the gradient of confidently predicted tokens
        loss = readout_cross_entropy([z], None, targets, reduction="sum")[0]
        (g,) = torch.autograd.grad(loss, h)
    return h.detach(), g, z.detach()


def total_radial_force(adapter: LoopAdapter, h0: Tensor, e: Tensor | None, targets: Tensor,
                       num_loops: int | None = None) -> dict[str, Tensor]:
    """One forward and backward pass through loops 1..K from the initial state ``h0``, with
    L = Σ_k CE_k (summed over tokens) through each loop's own readout. Returns per loop and
    token, shapes (K, B, T), float64: ``total`` R_k = ⟨H_k, ∇_{H_k} L⟩ (the total gradient,
    through every later loop) and ``predicted`` −Σ_{j≥k} ⟨Δ_j, ∇_{H_{j+1}} L⟩ (NaN with an
    inter-loop norm: the premise fails), ``size`` ‖H_k‖‖∇_{H_k} L‖ (the scale of the
    cancelling sum R_k, for round-off); and ``share`` (K,), the batch share of the total
    gradient along the state (as :func:`radial_terms`)."""
    K = adapter.num_loops if num_loops is None else num_loops
    with torch.enable_grad():
        # zero perturbations added to each H_k: their gradients are the total ∇_{H_k} L
        deltas = [torch.zeros_like(h0, requires_grad=True) for _ in range(K)]
        trace = continue_loops(adapter, LoopTrace(h0.detach(), [], [], []),
                               None if e is None else e.detach(), num_loops=K,
                               update_hook=lambda k, x, h: h + deltas[k - 1])
        # Σ_k Σ_tokens CE_k, every loop's readout through the one per-loop CE function
        loss = readout_cross_entropy(trace.logits, None, targets, reduction="sum").sum()
        G = torch.autograd.grad(loss, deltas)
    H = [h.detach().double() for h in trace.states]
    G = [g.double() for g in G]
    total = torch.stack([(h * g).sum(-1) for h, g in zip(H, G, strict=True)])  # (K, B, T)
    steps = torch.stack([((H[j + 1] - H[j]) * G[j + 1]).sum(-1) for j in range(K - 1)]
                        + [torch.zeros_like(total[0])])  # ⟨Δ_j, ∇_{H_{j+1}} L⟩
    predicted = -steps.flip(0).cumsum(0).flip(0)
    if adapter.carry is not None:
        predicted = torch.full_like(predicted, float("nan"))
    share = torch.stack([radial_terms(h, g)["share"] for h, g in zip(H, G, strict=True)])
    size = torch.stack([h.norm(dim=-1) * g.norm(dim=-1) for h, g in zip(H, G, strict=True)])
    return {"total": total, "predicted": predicted, "share": share, "size": size}


def radial_table(adapter: LoopAdapter, states: list[Tensor], targets: Tensor,
                 num_loops: int | None = None, *,
                 start: tuple[Tensor, Tensor | None] | None = None) -> Table:
    """One row per loop: cos, |cos|, radial share, its closed form (when the adapter states
    the readout's form) and the closed-form error: the share of the gradient norm in
    ⟨u, g⟩ − κ(E_p z − z_y)/‖h‖, i.e. what the closed form mispredicts, measured like the share.

    Beside it, the radial force ⟨H_k, ∇_{H_k} CE_k⟩ of the loop's own loss and, when ``start``
    = (H_0, e) of ``adapter.start`` is given, the total-loss force R_k of
    :func:`total_radial_force`, its prediction and share (token means; NaN without ``start``)."""
    K = adapter.num_loops if num_loops is None else num_loops
    tot = None if start is None else total_radial_force(adapter, start[0], start[1], targets, K)
    rows = []
    for k, state in enumerate(states, start=1):
        h, g, z = loop_gradient(adapter, state, targets, k, K)
        t = radial_terms(h, g)
        form = adapter.form(k, K)
        cf_share = cf_err = float("nan")
        if form is not None:
            pred = closed_form_inner(h, z, targets, form)  # (B, T)
            s64, g_all = t["scale"].double(), t["grad_norm"].double().pow(2).sum().sqrt()
            cf_share = ((pred / s64).pow(2).sum().sqrt() / g_all).item()
            # the radial gradient the closed form misses, as a share of the whole gradient
            cf_err = (((t["inner"].double() - pred) / s64).pow(2).sum().sqrt() / g_all).item()
        rows.append({"loop": k, "scale_mean": t["scale"].mean().item(),
                     "cos_mean": t["cos"].mean().item(),
                     "abs_cos_mean": t["cos"].abs().mean().item(),
                     "radial_share": t["share"].item(), "closed_form_share": cf_share,
                     "closed_form_error": cf_err,
                     "round_off_floor": torch.finfo(h.dtype).eps,
                     "radial_force": t["inner"].double().mean().item()}
                    | ({c: float("nan") for c in TOTAL_COLUMNS[1:]} if tot is None else
                       {"total_radial_force": tot["total"][k - 1].mean().item(),
                        "total_radial_force_predicted": tot["predicted"][k - 1].mean().item(),
                        "total_radial_share": tot["share"][k - 1].item()}))
    worst = max(rows, key=lambda r: r["radial_share"])
    errors = [r["closed_form_error"] for r in rows if math.isfinite(r["closed_form_error"])]
    closed = (f"; closed form κ(E_p z − z_y) matched to {max(errors):.2g} of the gradient norm"
              if errors else "; no closed form (the adapter does not state the readout's form)")
    if tot is not None:
        closed += ("; total-loss force R_k (through later loops) from "
                   f"{rows[0]['total_radial_force']:.3g} at loop 1 to "
                   f"{rows[-1]['total_radial_force']:.3g} at loop {rows[-1]['loop']}")
    return Table("radial_gradient", RADIAL_COLUMNS + TOTAL_COLUMNS, rows,
                 notes=(f"radial share of the per-loop CE gradient at each loop's own readout: "
                        f"at most {worst['radial_share']:.2g} (loop {worst['loop']}), dtype "
                        f"round-off floor {worst['round_off_floor']:.2g}{closed}. Expected ≈ 0 "
                        "(the ε-leak) through a normalized readout, O(0.1) through a raw one"))

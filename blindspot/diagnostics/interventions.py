r"""Interventions on the scale of the state: scale sensitivity and the radial clamp.

Scale sensitivity (paper: multiply the state by α ∈ [0.1, 10]):

- ``readout`` mode: CE_k(α) = CE(readout_k(α·H_k), y) at every loop k; flat in α for a
  normalized readout at ε = 0 (THEORY §1), not for a raw one.
- ``carry`` mode: H_j ← α·H_j at one loop j (default 1), seen by its readout and by every
  later loop; for pre-norm recurrence this changes only the angular step of later updates
  (THEORY §8: scale acts as an inverse step size).

Radial clamp (paper Table 4, THEORY §8), each loop update Δ_k = H_k − x_{k-1}:

- ``remove_radial``: H_k ← x_{k-1} + Δ⊥ (the radial part a·u of the update removed);
- ``freeze_scale``: H_k ← H_k · ‖H_1‖/‖H_k‖ for k ≥ 2 (scale frozen at loop 1, per token).

Both tables report CE and perplexity per loop against the unclamped run.
``tests/test_diagnostics_math.py::test_interventions_on_a_pre_norm_model`` checks the
invariances they rely on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from blindspot.diagnostics.adapter import LoopAdapter
from blindspot.diagnostics.recorder import continue_loops
from blindspot.diagnostics.table import Table
from blindspot.nn.trace import LoopTrace

ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0)
CARRY_ALPHAS = (0.1, 10.0)  # the two ends: each costs a forward pass of loops j+1..K


def cross_entropy(logits: Tensor, targets: Tensor) -> float:
    """Mean next-token CE in nats (float32 or wider accumulation)."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten()).item()


def remove_radial(x: Tensor, h: Tensor) -> Tensor:
    """x + Δ⊥ with Δ = h − x and Δ⊥ = Δ − ⟨u, Δ⟩u, u = x/‖x‖ (tokens with x = 0 unchanged)."""
    delta = h - x  # (B, T, d)
    s = x.norm(dim=-1, keepdim=True)  # (B, T, 1)
    u = x / s.clamp_min(torch.finfo(x.dtype).tiny)
    return x + delta - (u * delta).sum(-1, keepdim=True) * u


def rescale_to(h: Tensor, scale: Tensor) -> Tensor:
    """h · scale/‖h‖ per token (scale shaped (B, T))."""
    return h * (scale / h.norm(dim=-1).clamp_min(torch.finfo(h.dtype).tiny)).unsqueeze(-1)


def prefix(trace: LoopTrace, loops: int, replace_last: Tensor | None = None,
           adapter: LoopAdapter | None = None, num_loops: int | None = None) -> LoopTrace:
    """The first ``loops`` loops of a recorded trace (with logits), optionally with the state
    of the last of them replaced (its carried state and logits recomputed by ``adapter``)."""
    states, carried = trace.states[:loops], trace.carried[:loops]
    logits = list(trace.logits[:loops])
    if replace_last is not None:
        K = trace.num_loops if num_loops is None else num_loops
        states = states[:-1] + [replace_last]
        carried = carried[:-1] + [adapter.carry_state(replace_last, loops)]
        logits = logits[:-1] + [adapter.readout(replace_last, loops, K)]
    return LoopTrace(trace.initial, list(states), list(carried), logits)


def sensitivity_table(adapter: LoopAdapter, e: Tensor | None, targets: Tensor,
                      trace: LoopTrace,
                      alphas: Sequence[float] = ALPHAS,
                      carry_alphas: Sequence[float] = CARRY_ALPHAS, at_loop: int = 1) -> Table:
    """Rows (mode, alpha, loop): CE and its change from α = 1. ``trace`` is the unperturbed
    run of K loops with logits, ``e`` the injected context of ``adapter.start``."""
    for a in list(alphas) + list(carry_alphas):
        if not (isinstance(a, (int, float)) and math.isfinite(a) and a > 0):
            raise ValueError(f"every α must be a finite positive number; got {a!r}")
    K = trace.num_loops
    if not 1 <= at_loop <= K:
        raise ValueError(f"at_loop must be in 1..{K}, got {at_loop}")
    base = [cross_entropy(z, targets) for z in trace.logits]
    rows = []
    for a in alphas:
        for k, h in enumerate(trace.states, start=1):
            ce = base[k - 1] if a == 1 else cross_entropy(adapter.readout(a * h, k, K), targets)
            rows.append({"mode": "readout", "alpha": float(a), "loop": k, "ce": ce,
                         "ce_change": ce - base[k - 1]})
    for a in sorted(set(carry_alphas) | {1.0}):  # α = 1 (no change) anchors the curve
        # loops before at_loop are unchanged: start from the recorded ones
        start = prefix(trace, at_loop, a * trace.states[at_loop - 1], adapter, K)
        run = continue_loops(adapter, start, e, num_loops=K) if a != 1 else trace
        for k, z in enumerate(run.logits, start=1):
            ce = cross_entropy(z, targets)
            rows.append({"mode": "carry", "alpha": float(a), "loop": k, "ce": ce,
                         "ce_change": ce - base[k - 1]})
    worst = max(abs(r["ce_change"]) for r in rows if r["mode"] == "readout")
    return Table("scale_sensitivity", ["mode", "alpha", "loop", "ce", "ce_change"], rows,
                 notes=(f"readout mode: H_k -> α·H_k before loop k's readout only (largest |ΔCE| "
                        f"{worst:.3g} nats); carry mode: H_{at_loop} -> α·H_{at_loop}, seen by "
                        "its readout and every later loop"),
                 meta={"at_loop": at_loop})


def clamp_table(adapter: LoopAdapter, e: Tensor | None, targets: Tensor,
                trace: LoopTrace) -> Table:
    """Rows per loop: perplexity and mean scale of the unclamped run and of both clamps."""
    K = trace.num_loops

    first = trace.states[0].norm(dim=-1)  # (B, T) ‖H_1‖: loop 1 is not clamped
    runs = {"base": trace,
            "remove_radial": continue_loops(adapter, prefix(trace, 0), e, num_loops=K,
                                            update_hook=lambda k, x, h: remove_radial(x, h)),
            "freeze_scale": continue_loops(adapter, prefix(trace, 1), e, num_loops=K,
                                           update_hook=lambda k, x, h: rescale_to(h, first))}
    rows = []
    for k in range(1, K + 1):
        row = {"loop": k}
        ppl = {m: math.exp(cross_entropy(r.logits[k - 1], targets)) for m, r in runs.items()}
        for m in runs:
            row[f"ppl_{m}"] = ppl[m]
        for m in ("remove_radial", "freeze_scale"):
            row[f"rel_ppl_{m}"] = ppl[m] / ppl["base"]
        for m, r in runs.items():
            row[f"scale_{m}"] = r.states[k - 1].norm(dim=-1).mean().item()
        rows.append(row)
    last = rows[-1]
    return Table("radial_clamp", list(rows[0]), rows,
                 notes=(f"at loop K={K}: perplexity x{last['rel_ppl_remove_radial']:.4g} with the "
                        f"radial part of every update removed (scale {last['scale_base']:.4g} -> "
                        f"{last['scale_remove_radial']:.4g}), x{last['rel_ppl_freeze_scale']:.4g} "
                        f"with the scale frozen at loop 1 ({last['scale_freeze_scale']:.4g})"))

r"""Interventions on the scale of the state: scale sensitivity and the radial clamp.

Scale sensitivity (paper: multiply the state by α ∈ [0.1, 10]):

- ``readout`` mode: CE_k(α) = CE(readout_k(α·H_k), y) at every loop k; flat in α for a
  normalized readout at ε = 0 (proofs/normalizers.md), not for a raw one.
- ``carry`` mode: H_j ← α·H_j at one loop j, seen by its readout and by every later loop;
  for pre-norm recurrence this changes only the angular step of later updates
  (proofs/radial_clamp.md: scale acts as an inverse step size). Default j = K − 1, the state
  the last loop receives: the largest scale that still feeds a loop, and re-running one loop
  instead of K − 1 keeps the full pass within its cost budget
  (``benchmarks/diagnostics_cost.py``).

Radial clamp (paper Table 4, proofs/radial_clamp.md), each loop update Δ_k = H_k − x_{k-1}:

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
from torch import Tensor

from blindspot.diagnostics.adapter import LoopAdapter
from blindspot.diagnostics.recorder import UpdateHook, continue_loops
from blindspot.diagnostics.table import Table
from blindspot.nn.readout_ce import readout_cross_entropy
from blindspot.nn.trace import LoopTrace

ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0)
CARRY_ALPHAS = (0.1, 10.0)  # the two ends: each costs a forward pass of loops j+1..K


def cross_entropy(logits: Tensor, targets: Tensor) -> float:
    """Mean next-token CE in nats (float32 or wider accumulation; float64 stays float64)."""
    return readout_cross_entropy([logits], None, targets)[0].item()


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
        logits = logits[:-1] + [adapter.head(replace_last, loops, K)]
    return LoopTrace(trace.initial, list(states), list(carried), logits)


Branch = tuple[LoopTrace, UpdateHook | None]


def run_branches(adapter: LoopAdapter, branches: list[Branch], e: Tensor | None,
                 num_loops: int) -> list[LoopTrace]:
    """Continue several intervened runs that start after the same number of recorded loops,
    as ONE batch (concatenated along the batch axis, each branch's hook applied to its own
    slice): on a CPU one loop on n·B sequences costs far less than n loops on B. Falls back
    to one run per branch when ``e`` is not a batch-shaped tensor."""
    if not branches:
        return []
    B = branches[0][0].initial.shape[0]
    j = branches[0][0].num_loops
    batchable = len(branches) > 1 and (e is None or (isinstance(e, Tensor) and e.shape[0] == B))
    if not batchable or any(p.num_loops != j for p, _ in branches):
        return [continue_loops(adapter, p, e, num_loops=num_loops, update_hook=h)
                for p, h in branches]
    n = len(branches)

    def cat(ts):
        return torch.cat(list(ts), dim=0)  # (n·B, T, ...)

    pres = [p for p, _ in branches]
    joined = LoopTrace(cat(p.initial for p in pres),
                       [cat(p.states[i] for p in pres) for i in range(j)],
                       [cat(p.carried[i] for p in pres) for i in range(j)],
                       [cat(p.logits[i] for p in pres) for i in range(j)])
    hooks = [h for _, h in branches]

    def hook(k, x, h):
        return cat(hk(k, xs, hs) if hk is not None else hs
                   for hk, xs, hs in zip(hooks, x.split(B), h.split(B), strict=True))

    run = continue_loops(adapter, joined, None if e is None else cat([e] * n),
                         num_loops=num_loops, update_hook=hook)

    def part(ts, i):
        return [t[i * B:(i + 1) * B] for t in ts]

    return [LoopTrace(run.initial[i * B:(i + 1) * B], part(run.states, i), part(run.carried, i),
                      part(run.logits, i)) for i in range(n)]


def carry_loop(num_loops: int, at_loop: int | None) -> int:
    """The loop whose state carry mode rescales: ``at_loop``, by default K − 1 (1 if K = 1)."""
    j = max(1, num_loops - 1) if at_loop is None else at_loop
    if isinstance(j, bool) or not isinstance(j, int) or not 1 <= j <= num_loops:
        raise ValueError(f"at_loop must be an int in 1..{num_loops}, got {at_loop!r}")
    return j


def intervention_runs(adapter: LoopAdapter, e: Tensor | None, trace: LoopTrace,
                      carry_alphas: Sequence[float] = CARRY_ALPHAS, at_loop: int | None = None,
                      clamps: bool = True) -> dict[str, LoopTrace]:
    """Every intervened run of the two tables, batched where they start at the same loop:
    ``carry:<α>@<j>`` (H_j ← α·H_j), ``remove_radial`` and ``freeze_scale``."""
    K = trace.num_loops
    at_loop = carry_loop(K, at_loop)
    branches: dict[str, Branch] = {}
    for a in carry_alphas:
        if a != 1:  # loops before at_loop are unchanged: start from the recorded ones
            branches[f"carry:{float(a)}@{at_loop}"] = (
                prefix(trace, at_loop, a * trace.states[at_loop - 1], adapter, K), None)
    if clamps:
        x0 = trace.initial
        h1 = remove_radial(x0, adapter.step(x0, e))  # (B, T, d) clamped loop 1
        branches["remove_radial"] = (prefix(trace, 1, h1, adapter, K),
                                     lambda k, x, h: remove_radial(x, h))
        first = trace.states[0].norm(dim=-1)  # (B, T) ‖H_1‖: loop 1 is not clamped
        branches["freeze_scale"] = (prefix(trace, 1), lambda k, x, h: rescale_to(h, first))
    runs: dict[str, LoopTrace] = {}
    by_start: dict[int, list[str]] = {}
    for name, (p, _) in branches.items():
        by_start.setdefault(p.num_loops, []).append(name)
    for names in by_start.values():
        for name, run in zip(names, run_branches(adapter, [branches[n] for n in names], e, K),
                             strict=True):
            runs[name] = run
    return runs


def scaled_readouts(adapter: LoopAdapter, h: Tensor, alphas: Sequence[float], loop: int,
                    num_loops: int) -> list[Tensor]:
    """Logits of loop ``loop``'s readout of α·H_k for each α: the STATE is rescaled, not the
    logits (through a normalized readout the two differ). Every α at once, as one readout
    on the (n_α·B) batch."""
    z = adapter.head(torch.cat([a * h for a in alphas]), loop, num_loops)  # (n_α·B, T, V)
    return list(z.split(h.shape[0]))


def sensitivity_table(adapter: LoopAdapter, e: Tensor | None, targets: Tensor,
                      trace: LoopTrace,
                      alphas: Sequence[float] = ALPHAS,
                      carry_alphas: Sequence[float] = CARRY_ALPHAS, at_loop: int | None = None,
                      runs: dict[str, LoopTrace] | None = None) -> Table:
    """Rows (mode, alpha, loop): CE and its change from α = 1. ``trace`` is the unperturbed
    run of K loops with logits, ``e`` the injected context of ``adapter.start``; ``runs``
    the carry-mode runs of :func:`intervention_runs`, when already computed."""
    for a in list(alphas) + list(carry_alphas):
        if not (isinstance(a, (int, float)) and math.isfinite(a) and a > 0):
            raise ValueError(f"every α must be a finite positive number; got {a!r}")
    K = trace.num_loops
    at_loop = carry_loop(K, at_loop)
    if runs is None:
        runs = intervention_runs(adapter, e, trace, carry_alphas, at_loop, clamps=False)
    base = [cross_entropy(z, targets) for z in trace.logits]
    scaled = [a for a in alphas if a != 1]
    ce_at: dict[tuple[float, int], float] = {}
    for k, h in enumerate(trace.states, start=1):
        if scaled:
            for a, za in zip(scaled, scaled_readouts(adapter, h, scaled, k, K), strict=True):
                ce_at[(a, k)] = cross_entropy(za, targets)
    rows = []
    for a in alphas:
        for k in range(1, K + 1):
            ce = base[k - 1] if a == 1 else ce_at[(a, k)]
            rows.append({"mode": "readout", "alpha": float(a), "loop": k, "ce": ce,
                         "ce_change": ce - base[k - 1]})
    for a in sorted(set(carry_alphas) | {1.0}):  # α = 1 (no change) anchors the curve
        run = trace if a == 1 else runs[f"carry:{float(a)}@{at_loop}"]
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
                trace: LoopTrace, runs: dict[str, LoopTrace] | None = None) -> Table:
    """Rows per loop: perplexity and mean scale of the unclamped run and of both clamps
    (``runs``: the clamped runs of :func:`intervention_runs`, when already computed)."""
    K = trace.num_loops
    if runs is None:
        runs = intervention_runs(adapter, e, trace, carry_alphas=())
    runs = {"base": trace, "remove_radial": runs["remove_radial"],
            "freeze_scale": runs["freeze_scale"]}
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

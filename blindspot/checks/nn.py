"""Claims about the looped model, checked on a small ``LoopedLM`` in float64.

The recurrence claims intervene between loops through the public steps ``embed`` /
``loop_step`` / ``carry``: the state H_k is multiplied by c > 0 before the next loop sees it,
and we watch what the recurrence does with that scale. The norm and readout claims compare
the model's normalizers and each readout switch with their closed forms.
"""

from __future__ import annotations

import torch
from torch import Tensor

from blindspot.checks.small import SMALL, small_inputs, small_model
from blindspot.claims import Outcome, claim
from blindspot.nn import LoopedLM
from blindspot.nn.config import READOUTS
from blindspot.nn.readout_ce import readout_cross_entropy

FACTORS = (1e-3, 1e3)  # c in H_1 -> c·H_1


def rescaled_rollout(model: LoopedLM, idx: Tensor, loop: int, c: float) -> list[Tensor]:
    """States H_1..H_K of a forward pass in which H_loop is replaced by c·H_loop (as state and
    as what the next loop receives)."""
    h, e = model.embed(idx)
    states = []
    for k in range(1, model.cfg.num_loops + 1):
        state = model.loop_step(h, e)  # (B, T, d)
        if k == loop:
            state = c * state
        states.append(state)
        h = model.carry(state)
    return states


def _rel(a: Tensor, b: Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@claim("nn.inter_loop_norm_removes_scale",
       "With normalization between loops (ε = 0) the recurrence forgets each state's scale: "
       "rescaling H_1 by any c > 0 leaves every later state exactly unchanged, whereas a "
       "plain pre-norm recurrence carries the change into every later state.",
       source="paper",
       paper_ref="Claims 5-6 (scale-removing recurrence)",
       test="tests/test_nn_checks.py::test_inter_loop_norm_claim_and_its_contrast",
       page="proofs/normalizers.md")
def inter_loop_norm_removes_scale() -> Outcome:
    idx = small_inputs()
    worst_norm, least_plain = 0.0, float("inf")
    for kind in ("rmsnorm", "layernorm"):
        with torch.no_grad():
            normed, plain = small_model(norm=kind, inter_loop_norm=True), small_model(norm=kind)
            base_n = rescaled_rollout(normed, idx, 1, 1.0)
            base_p = rescaled_rollout(plain, idx, 1, 1.0)
            for c in FACTORS:
                after_n = rescaled_rollout(normed, idx, 1, c)
                after_p = rescaled_rollout(plain, idx, 1, c)
                worst_norm = max(worst_norm, max(_rel(a, b) for a, b in
                                                 zip(after_n[1:], base_n[1:], strict=True)))
                least_plain = min(least_plain, _rel(after_p[-1], base_p[-1]))
    # float64: N(c·h) differs from N(h) by round-off (~1e-16 relative) that a few blocks
    # amplify by O(1); 1e-12 leaves ample headroom. A carried change must be visible (> 1e-3).
    passed = worst_norm < 1e-12 and least_plain > 1e-3
    return Outcome(passed, f"c in {FACTORS}: max relative change of H_2..H_K with inter-loop norm "
                           f"{worst_norm:.1e} (needs < 1e-12); min relative change of H_K without "
                           f"it {least_plain:.2e} (needs > 1e-3); rmsnorm and layernorm")


@claim("nn.prenorm_loop_carries_scale",
       "A pre-norm loop changes the state's scale only additively: rescaling H_k by c up to 1e4 "
       "leaves the update H_{k+1} − c·H_k bounded (it tends to a limit that depends only on "
       "the direction), so ‖H_{k+1}‖/‖c·H_k‖ → 1 and the loop cannot undo a large scale.",
       source="paper",
       paper_ref="Claim 3 (pre-norm residual recurrence carries the scale)",
       test="tests/test_nn_checks.py::test_prenorm_claim_and_its_contrast",
       page="proofs/lemma2.md")
def prenorm_loop_carries_scale() -> Outcome:
    m, idx = small_model(), small_inputs()
    cs = (1.0, 1e1, 1e2, 1e3, 1e4)
    with torch.no_grad():
        h, e = m.embed(idx)
        state = m.loop_step(h, e)  # (B, T, d) H_1
        deltas, ratios = [], []
        for c in cs:
            nxt = m.loop_step(c * state, e)  # H_2 from c·H_1
            deltas.append(nxt - c * state)  # (B, T, d) the update Δ(c·H_1)
            ratios.append((nxt.norm(dim=-1) / (c * state.norm(dim=-1))).mean().item())
    sizes = [d.norm().item() for d in deltas]
    # Δ(c·h) → Δ_∞(u) with error O(1/c) (the second sublayer sees c·h + O(1)): successive
    # differences must shrink ~10x per decade of c; ask for at least 5x.
    gaps = [_rel(deltas[i + 1], deltas[-1]) for i in range(len(cs) - 2)]
    converging = all(gaps[i + 1] < gaps[i] / 5 for i in range(len(gaps) - 1))
    bounded = max(sizes) < 2 * min(sizes)
    carried = abs(ratios[-1] - 1) < 1e-3  # at c = 1e4 the O(1) update is < 1e-3 of the scale
    passed = converging and bounded and carried
    return Outcome(passed, "c = " + ", ".join(f"{c:g}" for c in cs)
                   + ": ‖Δ‖ = " + ", ".join(f"{s:.3f}" for s in sizes)
                   + "; ‖Δ(c)−Δ(1e4)‖/‖Δ(1e4)‖ = " + ", ".join(f"{g:.1e}" for g in gaps)
                   + "; mean ‖H_2‖/‖c·H_1‖ = " + ", ".join(f"{r:.5f}" for r in ratios))


# ------------------------------------------------------------------------------ norms, readouts
# Closed forms written out here, independently of blindspot.nn.functional, so that a bug there
# cannot hide in the reference. Gains (and LayerNorm biases) are drawn away from their init
# values γ = 1, β = 0, under which a dropped gain would compute the same numbers.

F64_REL = 1e-12  # float64 round-off (2.2e-16) through a few chained ops on d = 32 vectors


def closed_form_norm(kind: str, h: Tensor, gain: Tensor, bias: Tensor | None,
                     eps: float) -> Tensor:
    """RMSNorm γ ⊙ h/√(ms(h) + ε), or LayerNorm γ ⊙ Ph/√(‖Ph‖²/n + ε) + β, over the last axis."""
    n = h.shape[-1]
    if kind == "layernorm":
        p = h - h.mean(-1, keepdim=True)  # (..., n) Ph
        return gain * p / torch.sqrt((p * p).sum(-1, keepdim=True) / n + eps) + bias
    return gain * h / torch.sqrt((h * h).sum(-1, keepdim=True) / n + eps)


def norm_modules(model: LoopedLM) -> list[tuple[str, torch.nn.Module]]:
    """Every normalizer of the model (block, sandwich, inter-loop and readout norms)."""
    from blindspot.nn.model import LayerNorm, RMSNorm

    return [(n, m) for n, m in model.named_modules() if isinstance(m, RMSNorm | LayerNorm)]


def with_drawn_gains(model: LoopedLM, seed: int = 5) -> LoopedLM:
    """The model with every norm gain drawn from U(0.5, 1.5) and every bias from N(0, 0.1²)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, m in norm_modules(model):
            m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g, dtype=torch.float64))
            if getattr(m, "bias", None) is not None:
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g, dtype=torch.float64))
    return model


def nan_as_inf(error: float) -> float:
    """An error measure with NaN turned into inf: ``max`` would silently skip a NaN."""
    return error if error == error else float("inf")


def rel_error(a: Tensor, b: Tensor) -> float:
    """‖a − b‖/‖b‖ (NaN reported as inf)."""
    return nan_as_inf(_rel(a, b))


def _norm_error(model: LoopedLM, m: torch.nn.Module, h: Tensor) -> float:
    want = closed_form_norm(model.cfg.norm, h, m.weight, getattr(m, "bias", None), m.eps)
    return rel_error(m(h), want)


@claim("nn.norms_closed_form",
       "Every normalizer inside LoopedLM (block, sandwich, inter-loop and readout norms) "
       "computes its closed form with its own gain: RMSNorm γ ⊙ h/√(ms(h) + ε), LayerNorm "
       "γ ⊙ Ph/√(‖Ph‖²/n + ε) + β, at ε = 0 and 1e-6 and at state scales 1e-3..1e3.",
       source="package",
       paper_ref="Claim 3 (scale-invariant readouts: RMSNorm, LayerNorm); Setup (pre-norm "
                 "RMSNorm blocks)",
       test="tests/test_verify_catches_bugs.py::test_a_planted_bug_fails_its_claim")
def norms_closed_form() -> Outcome:
    g = torch.Generator().manual_seed(7)
    worst, count = 0.0, 0
    for kind in ("rmsnorm", "layernorm"):
        for eps in (0.0, 1e-6):
            model = with_drawn_gains(small_model(norm=kind, norm_eps=eps, block_norm="sandwich",
                                            inter_loop_norm=True))
            with torch.no_grad():
                for _, m in norm_modules(model):
                    for c in (1e-3, 1.0, 1e3):
                        h = c * torch.randn(2, 5, SMALL.d_model, generator=g,
                                            dtype=torch.float64)
                        worst = max(worst, _norm_error(model, m, h))
                    count += 1
    return Outcome(worst <= F64_REL, f"{count} norm modules (rmsnorm and layernorm, ε = 0 and "
                                     f"1e-6, gains drawn from U(0.5, 1.5)), scales 1e-3..1e3: "
                                     f"max relative error {worst:.1e} (needs ≤ {F64_REL:g})")


def normalized_at(readout: str, loop: int, num_loops: int) -> bool:
    """Whether the readout of ``loop`` in a ``num_loops``-loop run normalizes the state."""
    return readout == "norm" or (readout == "final_only_norm" and loop == num_loops)


def readout_errors(readout: str, kind: str = "rmsnorm") -> dict[str, float]:
    """Largest relative error of LoopedLM's logits against W·N_f(H_k) (normalized loops) or
    W·H_k (raw loops): ``loops`` for the per-loop readouts of a K-loop run, ``exits`` for the
    readout of a run stopped at depth k = 1..K (what an early exit sees)."""
    model = with_drawn_gains(small_model(readout=readout, norm=kind, norm_eps=1e-6))
    idx, K = small_inputs(), model.cfg.num_loops
    W, f = model.lm_head.weight, model.final_norm

    def want(h: Tensor, k: int, depth: int) -> Tensor:
        if normalized_at(readout, k, depth):
            h = closed_form_norm(kind, h, f.weight, getattr(f, "bias", None), f.eps)
        return h @ W.T  # (B, T, V)

    with torch.no_grad():
        out = model(idx)
        loops = max(rel_error(z, want(h, k, K)) for k, (z, h) in
                    enumerate(zip(out.logits, out.states, strict=True), start=1))
        exits = max(rel_error(model(idx, num_loops=k, logits="last").logits[-1],
                              want(out.states[k - 1], k, k)) for k in range(1, K + 1))
    return {"loops": loops, "exits": exits}


@claim("nn.readout_switches",
       "Each readout switch of LoopedLM decodes what it says, at every loop and at every exit "
       "depth: `norm` gives W·N_f(H_k), `raw` gives W·H_k, and `final_only_norm` gives W·H_k "
       "at loops before the last and W·N_f(H_K) at the last loop of the run (N_f with its own "
       "gain; RMSNorm and LayerNorm).",
       source="package",
       paper_ref="Setup (readout norm on/off, norm only at the final readout); Claims 3 and 5",
       test="tests/test_verify_catches_bugs.py::test_a_planted_bug_fails_its_claim")
def readout_switches() -> Outcome:
    errs = {(r, kind): readout_errors(r, kind) for r in READOUTS
            for kind in ("rmsnorm", "layernorm")}
    worst = max(max(e.values()) for e in errs.values())
    shown = "; ".join(f"{r}/{kind}: loops {e['loops']:.1e}, exits {e['exits']:.1e}"
                      for (r, kind), e in errs.items())
    return Outcome(worst <= F64_REL, f"max relative error of the logits against the closed form "
                                     f"(needs ≤ {F64_REL:g}): {shown}")


KERNELS_CHECKED = ("explicit", "blocked")
"""The kernels compared with torch's SDPA (``auto`` runs one of them or SDPA itself)."""


def attention_kernel_errors() -> dict[str, float]:
    """Largest relative difference between each kernel of :data:`KERNELS_CHECKED` and torch's
    SDPA on the same float64 model (same seed, so the same weights; eval mode, so no dropout):
    in the per-loop logits, the states, and the gradient of the per-loop CE; and of the blocked
    kernel with blocks of 3 queries (so blocks end mid-sequence and the last one is short)
    against the explicit kernel on random float64 q, k, v of 10 positions, output and
    gradients."""
    from blindspot.nn import functional as BF

    idx = small_inputs()
    targets = small_inputs(seed=2)
    out, grads = {}, {}
    for kernel in ("sdpa", *KERNELS_CHECKED):
        model = small_model(attention_kernel=kernel)
        out[kernel] = model(idx)
        loss = model.loop_cross_entropy(idx, targets)[0].mean()
        grads[kernel] = torch.autograd.grad(loss, list(model.parameters()))
    errs = {}
    for kernel in KERNELS_CHECKED:
        pairs = {"logits": zip(out[kernel].logits, out["sdpa"].logits, strict=True),
                 "states": zip(out[kernel].states, out["sdpa"].states, strict=True),
                 "gradients": zip(grads[kernel], grads["sdpa"], strict=True)}
        for name, ab in pairs.items():
            errs[f"{kernel}/{name}"] = max(rel_error(a.detach(), b.detach()) for a, b in ab)
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 2, 10, 4, dtype=torch.float64, generator=g).requires_grad_()
               for _ in range(3))
    w = torch.randn(2, 2, 10, 4, dtype=torch.float64, generator=g)
    res = {}
    for name, fn in (("blocked", lambda: BF.blocked_causal_attention(q, k, v, 0.0, block=3)),
                     ("explicit", lambda: BF.explicit_causal_attention(q, k, v, 0.0))):
        y = fn()
        res[name] = (y, *torch.autograd.grad((y * w).sum(), (q, k, v)))
    errs["blocked by 3/output and gradients"] = max(
        rel_error(a.detach(), b.detach()) for a, b in zip(res["blocked"], res["explicit"],
                                                         strict=True))
    return errs


@claim("nn.attention_kernels_agree",
       "The attention kernels compute one model: with attention_kernel = explicit "
       "(softmax(QK^T/sqrt(d_h) + M)V written out) or blocked (the same by blocks of queries) "
       "LoopedLM's per-loop logits, states and per-loop CE gradients equal those with torch's "
       "SDPA to float64 round-off, and the blocked kernel with blocks that end mid-sequence "
       "equals the explicit one.",
       source="package",
       paper_ref="Setup (causal softmax attention); the explicit and blocked kernels are this "
                 "package's faster CPU choices, not the paper's",
       test="tests/test_verify_catches_bugs.py::test_a_planted_bug_fails_its_claim")
def attention_kernels_agree() -> Outcome:
    errs = attention_kernel_errors()
    shown = ", ".join(f"{name} {e:.1e}" for name, e in errs.items())
    return Outcome(max(errs.values()) <= F64_REL, f"max relative difference against SDPA "
                                                  f"(needs ≤ {F64_REL:g}): {shown}")


def chunked_readout_errors() -> dict[str, float]:
    """Largest relative difference between the chunked and the plain per-loop readout CE of
    :func:`blindspot.nn.readout_ce.readout_cross_entropy` on the small float64 model: forced
    chunked (``max_bytes=0``, 7 rows per chunk, so chunks straddle tokens and loops) against
    plain (one ``F.linear`` + ``F.cross_entropy`` per loop), in the K per-loop CEs and in the
    gradient of Σ_k c_k CE_k (distinct weights c_k) with respect to every model parameter,
    reached through the readout matrix and through each loop's features."""
    model = with_drawn_gains(small_model())
    idx, targets = small_inputs(), small_inputs(seed=2)
    out = model(idx, logits="none")
    K = model.cfg.num_loops
    feats = [model.readout_features(h, k, K) for k, h in enumerate(out.states, start=1)]
    weights = torch.arange(1, K + 1, dtype=torch.float64)  # c_k: each loop's gradient its own
    params = list(model.parameters())
    res = {}
    for path, kw in (("plain", {"max_bytes": 2**62}),
                     ("chunked", {"max_bytes": 0, "chunk_bytes": 7 * 4 * model.cfg.vocab_size})):
        ce = readout_cross_entropy(feats, model.lm_head.weight, targets, **kw)  # (K,)
        res[path] = (ce.detach(), torch.autograd.grad((weights * ce).sum(), params,
                                                      retain_graph=True))
    return {"CE": rel_error(res["chunked"][0], res["plain"][0]),
            "gradients": max(rel_error(a, b) for a, b in
                             zip(res["chunked"][1], res["plain"][1], strict=True))}


@claim("nn.chunked_readout_ce_agrees",
       "The chunked per-loop readout cross-entropy (the path the paper's vocabulary takes on a "
       "GPU: logits decoded a few rows at a time, gradients (softmax(z) − e_y)·W recomputed in "
       "the backward pass) equals the plain one, values and gradients of every parameter, to "
       "float64 round-off.",
       source="package",
       paper_ref="Setup (per-loop CE); the chunking is this package's memory saving, not the "
                 "paper's",
       test="tests/test_verify_catches_bugs.py::test_a_planted_bug_fails_its_claim")
def chunked_readout_ce_agrees() -> Outcome:
    errs = chunked_readout_errors()
    shown = ", ".join(f"{name} {e:.1e}" for name, e in errs.items())
    return Outcome(max(errs.values()) <= F64_REL, f"max relative difference chunked vs plain "
                                                  f"(needs ≤ {F64_REL:g}): {shown}")

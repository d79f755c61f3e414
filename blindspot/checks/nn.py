"""Claims about the looped model's recurrence, checked on a small ``LoopedLM`` in float64.

Both intervene between loops through the public steps ``embed`` / ``loop_step`` / ``carry``:
the state H_k is multiplied by c > 0 before the next loop sees it (THEORY §8), and we watch
what the recurrence does with that scale.
"""

from __future__ import annotations

import torch
from torch import Tensor

from blindspot.claims import Outcome, claim
from blindspot.nn import LoopedLM, ModelConfig

SMALL = ModelConfig(vocab_size=64, max_seq_len=16, d_model=32, n_heads=4, n_layers=2,
                    ff_mult=2.0, num_loops=4, norm_eps=0.0)
SCALES = (1e-3, 1e3)


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


def _model(seed: int = 0, **overrides) -> LoopedLM:
    from dataclasses import replace

    torch.manual_seed(seed)
    return LoopedLM(replace(SMALL, **overrides)).double().eval()


def _tokens(seed: int = 1) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, SMALL.vocab_size, (2, SMALL.max_seq_len), generator=g)


def _rel(a: Tensor, b: Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@claim("nn.inter_loop_norm_removes_scale",
       "With normalization between loops (ε = 0) the recurrence forgets each state's scale: "
       "rescaling H_1 by any c > 0 leaves every later state exactly unchanged, whereas a "
       "plain pre-norm recurrence carries the change into every later state.",
       paper_ref="Claims 5-6 (scale-removing recurrence); THEORY §8",
       test="tests/test_nn_checks.py::test_inter_loop_norm_claim_and_its_contrast")
def inter_loop_norm_removes_scale() -> Outcome:
    idx = _tokens()
    worst_norm, least_plain = 0.0, float("inf")
    for kind in ("rmsnorm", "layernorm"):
        with torch.no_grad():
            normed, plain = _model(norm=kind, inter_loop_norm=True), _model(norm=kind)
            base_n = rescaled_rollout(normed, idx, 1, 1.0)
            base_p = rescaled_rollout(plain, idx, 1, 1.0)
            for c in SCALES:
                after_n = rescaled_rollout(normed, idx, 1, c)
                after_p = rescaled_rollout(plain, idx, 1, c)
                worst_norm = max(worst_norm, max(_rel(a, b) for a, b in
                                                 zip(after_n[1:], base_n[1:], strict=True)))
                least_plain = min(least_plain, _rel(after_p[-1], base_p[-1]))
    # float64: N(c·h) differs from N(h) by round-off (~1e-16 relative) that a few blocks
    # amplify by O(1); 1e-12 leaves ample headroom. A carried change must be visible (> 1e-3).
    passed = worst_norm < 1e-12 and least_plain > 1e-3
    return Outcome(passed, f"c in {SCALES}: max relative change of H_2..H_K with inter-loop norm "
                           f"{worst_norm:.1e} (needs < 1e-12); min relative change of H_K without "
                           f"it {least_plain:.2e} (needs > 1e-3); rmsnorm and layernorm")


@claim("nn.prenorm_loop_carries_scale",
       "A pre-norm loop changes the state's scale only additively: rescaling H_k by c up to 1e4 "
       "leaves the update H_{k+1} − c·H_k bounded (it tends to a limit that depends only on "
       "the direction), so ‖H_{k+1}‖/‖c·H_k‖ → 1 and the loop cannot undo a large scale.",
       paper_ref="Claim 3 (pre-norm residual recurrence carries the scale); THEORY §5",
       test="tests/test_nn_checks.py::test_prenorm_claim_and_its_contrast")
def prenorm_loop_carries_scale() -> Outcome:
    m, idx = _model(), _tokens()
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

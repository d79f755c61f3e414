r"""Early exit: perplexity at every depth, the compute/quality Pareto curve, calibrated halting.

Exit at loop k means decoding H_k with the readout the model uses when run at depth k
(``readout(H_k, k, k)``; it differs from the per-loop readout only for final-only-norm
models). Depths beyond the trained K are depth extrapolation.

Calibrated halting (paper Table 8): each token stops at the first loop k whose policy score
passes a threshold τ, and is then predicted from loop k (never later than K):

- ``margin``: top-1 minus top-2 logit, halt when ≥ τ;
- ``entropy``: H(p_k) in nats, halt when ≤ τ;
- ``kl``: KL(p_k ‖ p_{k-1}), halt when ≤ τ (no halting at loop 1).

τ is chosen on a validation split (the first half of the sequences) as the threshold with
the fewest average loops whose perplexity is within ``target`` (e.g. 1.01) of the full-depth
perplexity; the table reports both splits. Exits are simulated: every position runs every
loop, so later-loop attention still sees all positions, and "loops used" counts the loop
whose readout each token is predicted from. Demonstrated in
``tests/test_diagnostics_math.py::test_halting_calibration_respects_target``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from blindspot.diagnostics.table import Table
from blindspot.nn.readout_ce import readout_cross_entropy

POLICIES = ("margin", "entropy", "kl")


def token_ce(logits: Sequence[Tensor], targets: Tensor) -> Tensor:
    """(K, N) per-token CE of every loop's logits, float64."""
    return readout_cross_entropy(logits, None, targets, reduction="none", dtype=torch.float64)


def pareto_mask(cost: Sequence[float], loss: Sequence[float]) -> list[bool]:
    """True where no other point has cost ≤ and loss ≤ with one strictly smaller."""
    pts = list(zip(cost, loss, strict=True))
    return [not any((c2 <= c and l2 <= l) and (c2 < c or l2 < l) for c2, l2 in pts)
            for c, l in pts]


def early_exit_table(ce: Tensor, trained_loops: int) -> Table:
    """Rows k = 1..K_max from the (K_max, N) per-token CE of each exit (:func:`token_ce`):
    CE, perplexity, perplexity relative to the trained depth K, and whether (loops,
    perplexity) is on the Pareto front."""
    K = trained_loops
    if ce.dim() != 2 or not 1 <= K <= ce.shape[0]:
        raise ValueError(f"trained_loops={K} needs a (K_max >= K, N) CE tensor; got shape "
                         f"{tuple(ce.shape)}")
    mean = ce.mean(dim=1)  # (K_max,)
    ppl = mean.exp().tolist()
    front = pareto_mask(list(range(1, len(ppl) + 1)), ppl)
    rows = [{"loop": k, "ce": mean[k - 1].item(), "ppl": ppl[k - 1],
             "rel_ppl": ppl[k - 1] / ppl[K - 1], "beyond_trained_depth": k > K,
             "pareto": front[k - 1]} for k in range(1, len(ppl) + 1)]
    best = min(rows, key=lambda r: r["ppl"])
    return Table("early_exit", list(rows[0]), rows,
                 notes=(f"perplexity at the trained depth K={K}: {ppl[K - 1]:.4g}; best "
                        f"{best['ppl']:.4g} at loop {best['loop']}"))


def halting_scores(logits: Sequence[Tensor]) -> dict[str, Tensor]:
    """(K, N) score of every policy at every loop (see module doc); one loop's (N, V)
    log-probabilities in float64 at a time, so memory stays at two loops' worth."""
    margin, entropy, kl = [], [], []
    prev = None
    for z in logits:
        logp = z.flatten(0, 1).double().log_softmax(-1)  # (N, V)
        top2 = logp.topk(2, dim=-1).values  # (N, 2)
        p = logp.exp()
        margin.append(top2[:, 0] - top2[:, 1])
        entropy.append(-(p * logp).sum(-1))
        kl.append(torch.full_like(entropy[-1], math.inf) if prev is None
                  else (p * (logp - prev)).sum(-1))  # KL(p_k ‖ p_{k-1})
        prev = logp
    return {"margin": torch.stack(margin), "entropy": torch.stack(entropy),
            "kl": torch.stack(kl)}


def halt_loops(score: Tensor, policy: str, tau: float) -> Tensor:
    """(N,) 0-based loop at which each token halts: first loop passing τ, else the last."""
    passed = score >= tau if policy == "margin" else score <= tau  # (K, N)
    passed[-1] = True
    return passed.double().argmax(dim=0)  # first True


def halted_ppl(ce: Tensor, loops: Tensor) -> float:
    """Perplexity when token n is predicted from loop ``loops[n]`` (ce is (K, N))."""
    return ce.gather(0, loops.unsqueeze(0)).mean().exp().item()


def calibrate(score: Tensor, ce: Tensor, policy: str, target: float,
              candidates: int = 64) -> tuple[float, float, float]:
    """(τ, average loops, relative perplexity) on this split: the τ with the fewest average
    loops whose perplexity is ≤ target × full-depth perplexity (τ = ±inf: never halt).
    Candidates are ``candidates`` quantiles of the finite scores, all evaluated at once."""
    full = ce[-1].mean().exp().item()
    never = math.inf if policy == "margin" else -math.inf
    best = (never, float(score.shape[0]), 1.0)
    finite = score[torch.isfinite(score)]
    if not finite.numel():
        return best
    qs = torch.linspace(0, 1, candidates, dtype=torch.float64, device=score.device)
    taus = torch.quantile(finite, qs)  # (C,)
    s = score.unsqueeze(0)  # (1, K, N)
    t = taus.view(-1, 1, 1)  # (C, 1, 1)
    passed = s >= t if policy == "margin" else s <= t  # (C, K, N)
    passed[:, -1] = True
    loops = passed.double().argmax(dim=1)  # (C, N) first loop passing each τ
    halted = ce.unsqueeze(0).expand(len(taus), -1, -1).gather(1, loops.unsqueeze(1))  # (C,1,N)
    rel = (halted.squeeze(1).mean(dim=1).exp() / full).tolist()  # (C,)
    used = (loops.double().mean(dim=1) + 1).tolist()
    for tau, u, r in zip(taus.tolist(), used, rel, strict=True):
        if r <= target and u < best[1]:
            best = (tau, u, r)
    return best


def halting_table(logits: Sequence[Tensor], targets: Tensor, target: float = 1.01,
                  policies: Sequence[str] = POLICIES) -> Table:
    """Rows per policy: τ calibrated on the first half of the sequences; average loops used
    and perplexity relative to full depth on the validation and the held-out half."""
    if targets.dim() != 2 or targets.shape[0] < 2:
        raise ValueError("calibrated halting needs a (B, T) batch with B ≥ 2 sequences: the "
                         f"first half calibrates, the second tests; got shape "
                         f"{tuple(targets.shape)}")
    if not (math.isfinite(target) and target >= 1):
        raise ValueError(f"target relative perplexity must be ≥ 1 (e.g. 1.01), got {target}")
    unknown = set(policies) - set(POLICIES)
    if unknown:
        raise ValueError(f"unknown halting policies {sorted(unknown)}; valid: {POLICIES}")
    B, T = targets.shape
    n_val = (B // 2) * T  # flattening is row-major: the first B//2 sequences
    ce = token_ce(logits, targets)  # (K, N)
    scores = halting_scores(logits)
    rows = []
    for policy in policies:
        s = scores[policy]
        tau, val_loops, val_rel = calibrate(s[:, :n_val], ce[:, :n_val], policy, target)
        test_loops_t = halt_loops(s[:, n_val:], policy, tau)
        test_rel = halted_ppl(ce[:, n_val:], test_loops_t) / ce[-1, n_val:].mean().exp().item()
        rows.append({"policy": policy, "threshold": tau, "target_rel_ppl": target,
                     "val_avg_loops": val_loops, "val_rel_ppl": val_rel,
                     "test_avg_loops": test_loops_t.double().mean().item() + 1,
                     "test_rel_ppl": test_rel, "max_loops": len(logits)})
    return Table("halting", list(rows[0]), rows,
                 notes=("threshold calibrated on the first half of the sequences, reported on "
                        "the second half; exits simulated (every position runs every loop)"))

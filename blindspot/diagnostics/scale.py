"""Per-loop scale: ‖H_k‖ before and after the inter-loop norm, and per-token statistics.

The paper's Table 1 reports the mean over tokens of ‖H_K‖ and its Table 10 the per-token
distribution (mean, median, p99, max) at the last loop; this table has both for every loop
k = 0..K (k = 0 is H_0, the input of loop 1). Demonstrated in
``tests/test_diagnostics_math.py::test_scale_table_matches_direct_norms``.
"""

from __future__ import annotations

from blindspot.diagnostics.table import Table
from blindspot.nn.trace import LoopTrace, token_stats

SCALE_COLUMNS = ["loop", "scale_mean", "carried_scale_mean", "token_median", "token_p99",
                 "token_max"]


def scale_table(trace: LoopTrace) -> Table:
    """Rows k = 0..K: mean ‖H_k‖ (before any inter-loop norm), mean norm of what loop k+1
    receives, and the per-token median, p99 and max of ‖H_k‖."""
    states = [trace.initial] + list(trace.states)
    carried = [trace.initial] + list(trace.carried)
    rows = []
    for k, (h, c) in enumerate(zip(states, carried, strict=True)):
        st = token_stats(h.norm(dim=-1))  # (B, T) per-token scale
        rows.append({"loop": k, "scale_mean": st["mean"],
                     "carried_scale_mean": c.detach().double().norm(dim=-1).mean().item(),
                     "token_median": st["median"], "token_p99": st["p99"],
                     "token_max": st["max"]})
    last = rows[-1]
    return Table("scale", SCALE_COLUMNS, rows,
                 notes=(f"last loop K={trace.num_loops}: per-token mean {last['scale_mean']:.4g},"
                        f" median {last['token_median']:.4g}, p99 {last['token_p99']:.4g}, "
                        f"max {last['token_max']:.4g}"))

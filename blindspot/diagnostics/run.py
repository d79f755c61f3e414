"""``diagnose``: every diagnostic on one batch, and writing the tables with a run card.

One pass (what ``benchmarks/diagnostics_cost.py`` times against a training step):

1. record ``extrapolate`` ≥ K loops of states (no readout): loops K+1.. are depth
   extrapolation, used by the Lemma 2 table (e.g. K = 30 on the GPU checkpoints), the
   early-exit table and the toy-model prediction;
2. the per-loop readouts of loops 1..K, and the exit readouts of every loop;
3. the tables: scale, radial gradient, Lemma 2, scale sensitivity, radial clamp, early
   exit, calibrated halting (and the toy prediction, :mod:`blindspot.diagnostics.toy_fit`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

from blindspot.diagnostics.adapter import LoopAdapter
from blindspot.diagnostics.early_exit import early_exit_table, halting_table, token_ce
from blindspot.diagnostics.interventions import (
    ALPHAS,
    CARRY_ALPHAS,
    clamp_table,
    intervention_runs,
    sensitivity_table,
)
from blindspot.diagnostics.lemma2 import lemma2_table
from blindspot.diagnostics.radial import radial_table
from blindspot.diagnostics.recorder import continue_loops
from blindspot.diagnostics.scale import scale_table
from blindspot.diagnostics.table import Table
from blindspot.nn.trace import LoopTrace

TABLES = ("scale", "radial_gradient", "lemma2", "scale_sensitivity", "radial_clamp",
          "early_exit", "halting", "toy_prediction")


@contextmanager
def _eval_mode(adapter: LoopAdapter):
    """Dropout off while diagnosing; the module's previous mode is restored afterwards."""
    m = adapter.module
    was = None if m is None else m.training
    if m is not None:
        m.eval()
    try:
        yield
    finally:
        if m is not None and was:
            m.train()


def split_batch(tokens: Tensor) -> tuple[Tensor, Tensor]:
    """(inputs, next-token targets) of a (B, T+1) token batch."""
    if not isinstance(tokens, Tensor) or tokens.dim() != 2 or tokens.shape[1] < 2 \
            or tokens.dtype not in (torch.long, torch.int32):
        what = (f"{tuple(tokens.shape)} {tokens.dtype}" if isinstance(tokens, Tensor)
                else type(tokens).__name__)
        raise ValueError(f"diagnostics need integer tokens of shape (B, T+1) with T >= 1, got "
                         f"{what}")
    return tokens[:, :-1], tokens[:, 1:].long()


def diagnose(adapter: LoopAdapter, tokens: Tensor, *, extrapolate: int | None = None,
             alphas: Sequence[float] = ALPHAS, carry_alphas: Sequence[float] = CARRY_ALPHAS,
             halting_target: float = 1.01, toy: bool = True, progress: bool = False
             ) -> dict[str, Table]:
    """Run every diagnostic on the (B, T+1) token batch; returns the tables by name.

    ``extrapolate``: total loops to record (default 2K; must be ≥ K).
    """
    from tqdm.auto import tqdm

    idx, targets = split_batch(tokens)
    K = adapter.num_loops
    K_ext = 2 * K if extrapolate is None else extrapolate
    if not isinstance(K_ext, int) or K_ext < K:
        raise ValueError(f"extrapolate = {extrapolate!r} must be an int >= the trained depth "
                         f"K = {K}")
    names = [t for t in TABLES if toy or t != "toy_prediction"]
    bar = tqdm(total=len(names) + 1, desc=f"diagnose {adapter.name}", disable=not progress,
               unit="table")
    tables: dict[str, Table] = {}
    with _eval_mode(adapter), torch.no_grad():
        h0, e = adapter.start(idx)  # (B, T, d)
        long = continue_loops(adapter, LoopTrace(h0, [], [], None), e, num_loops=K_ext)
        trace = LoopTrace(long.initial, long.states[:K], long.carried[:K],
                          [adapter.head(h, k, K) for k, h in enumerate(long.states[:K], 1)])
        exit_ce = token_ce([trace.logits[k - 1] if k <= K and not adapter.readout_depends_on_depth
                            else adapter.head(h, k, k) for k, h in enumerate(long.states, 1)],
                           targets)  # (K_ext, N)
        bar.update()
        runs: dict = {}

        def interventions() -> dict:  # every intervened run, batched, computed once
            if not runs:
                runs.update(intervention_runs(adapter, e, trace, carry_alphas))
            return runs

        steps = {
            "scale": lambda: scale_table(trace),
            "radial_gradient": lambda: radial_table(adapter, trace.states, targets, K,
                                                    start=(h0, e)),
            "lemma2": lambda: lemma2_table(long),
            "scale_sensitivity": lambda: sensitivity_table(adapter, e, targets, trace, alphas,
                                                           carry_alphas, runs=interventions()),
            "radial_clamp": lambda: clamp_table(adapter, e, targets, trace, interventions()),
            "early_exit": lambda: early_exit_table(exit_ce, K),
            "halting": lambda: halting_table(trace.logits, targets, halting_target),
            "toy_prediction": lambda: _toy_table(tables["lemma2"], K, K_ext, adapter),
        }
        for name in names:
            bar.set_postfix_str(name)
            tables[name] = steps[name]()
            bar.update()
    bar.close()
    tables["lemma2"].meta["trained_loops"] = K
    return tables


def _toy_table(lemma2: Table, trained_loops: int, recorded_loops: int,
               adapter: LoopAdapter) -> Table:
    """The toy prediction, or (e.g. K = 1) an empty table whose notes say why it was skipped."""
    from blindspot.diagnostics.toy_fit import (
        architecture_rho,
        skipped_toy_table,
        too_few_loops,
        toy_prediction_table,
    )

    why = too_few_loops(trained_loops, recorded_loops)
    if why:
        return skipped_toy_table(why)
    rho, source = architecture_rho(adapter)
    return toy_prediction_table(lemma2, trained_loops, rho=rho, rho_source=source)

"""The recorder: run a looped model through its adapter and record a :class:`LoopTrace`.

It drives the loop itself (loop k: H_k = step(x_{k-1}, e), logits_k = readout(H_k, k, K),
x_k = carry(H_k)), which is what lets the diagnostics intervene on a loop (rescale a state,
remove the radial part of an update) and run past the trained depth (``num_loops`` > K).
``tests/test_diagnostics_adapter.py`` checks that it reproduces each model's own forward.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from blindspot.diagnostics.adapter import LoopAdapter
from blindspot.nn.trace import LoopTrace

UpdateHook = Callable[[int, Tensor, Tensor], Tensor]
"""``hook(k, x_{k-1}, H_k) -> H_k'``: replaces the state produced by loop k (its readout
and every later loop see the replacement)."""


def record(adapter: LoopAdapter, idx: Tensor, *, num_loops: int | None = None,
           readout: bool = True, update_hook: UpdateHook | None = None) -> LoopTrace:
    """Run ``num_loops`` loops (default: the trained depth K) and record every state.

    With ``readout=True`` the logits of loop k are ``readout(H_k, k, num_loops)``.
    Gradients flow as in the model's own forward; wrap in ``torch.no_grad()`` to record
    only values.
    """
    K = adapter.num_loops if num_loops is None else num_loops
    if not isinstance(K, int) or isinstance(K, bool) or K < 1:
        raise ValueError(f"num_loops must be a positive int, got {num_loops!r}")
    h0, e = adapter.start(idx)  # (B, T, d)
    _check_state(h0, "start (H_0)")
    x = h0
    states, carried, logits = [], [], []
    for k in range(1, K + 1):
        h = adapter.step(x, e)  # (B, T, d) H_k before any inter-loop norm
        _check_state(h, f"step (loop {k})", like=h0)
        if update_hook is not None:
            h = update_hook(k, x, h)
        states.append(h)
        if readout:
            logits.append(adapter.readout(h, k, K))  # (B, T, V)
        x = adapter.carry_state(h, k)  # (B, T, d) what loop k+1 receives
        carried.append(x)
    return LoopTrace(initial=h0, states=states, carried=carried,
                     logits=logits if readout else None)


def loop_inputs(trace: LoopTrace) -> list[Tensor]:
    """x_0..x_{K-1}: the state each loop k = 1..K received (H_0, then the carried states)."""
    return [trace.initial] + trace.carried[:-1]


def _check_state(h: Tensor, where: str, like: Tensor | None = None) -> None:
    if not isinstance(h, Tensor):
        raise TypeError(f"the adapter's {where} returned {type(h).__name__}, not a tensor; "
                        "the loop body must return the next state tensor")
    if h.dim() != 3:
        raise ValueError(f"the adapter's {where} returned shape {tuple(h.shape)}; a state must "
                         "be (B, T, d)")
    if like is not None and h.shape != like.shape:
        raise ValueError(f"the adapter's {where} returned shape {tuple(h.shape)}, but H_0 has "
                         f"shape {tuple(like.shape)}: the loop body must map a state to a state")
    if not torch.isfinite(h).all():
        raise FloatingPointError(
            f"the adapter's {where} produced NaN or inf: the model diverged (or its weights are "
            "corrupt); diagnose a checkpoint from before the divergence")

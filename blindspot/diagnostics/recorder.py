"""The recorder: run a looped model through its adapter and record a :class:`LoopTrace`.

It drives the loop itself (loop k: H_k = step(x_{k-1}, e), logits_k = head(H_k, k, K),
x_k = carry(H_k)), which is what lets the diagnostics intervene on a loop (rescale a state,
remove the radial part of an update) and run past the trained depth (``num_loops`` > K).
``tests/test_diagnostics_adapter.py`` checks that it reproduces each model's own forward.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from blindspot.diagnostics.adapter import LoopAdapter
from blindspot.nn.trace import LoopTrace

UpdateHook = Callable[[int, Tensor, Tensor], Tensor]
"""``hook(k, x_{k-1}, H_k) -> H_k'``: replaces the state produced by loop k (its readout
and every later loop see the replacement)."""


def record(adapter: LoopAdapter, idx: Tensor, *, num_loops: int | None = None,
           logits: bool = True, update_hook: UpdateHook | None = None,
           readout: bool | None = None) -> LoopTrace:
    """Run ``num_loops`` loops (default: the trained depth K) and record every state.

    With ``logits=True`` the logits of loop k are ``head(H_k, k, num_loops)``.
    Gradients flow as in the model's own forward; wrap in ``torch.no_grad()`` to record
    only values. ``readout=`` is the deprecated name of ``logits=``.
    """
    if readout is not None:
        warnings.warn("record(readout=...) is deprecated; use logits=...", DeprecationWarning,
                      stacklevel=2)
        logits = readout
    h0, e = adapter.start(idx)  # (B, T, d)
    _check_state(h0, "start (H_0)")
    empty = LoopTrace(initial=h0, states=[], carried=[], logits=[] if logits else None)
    return continue_loops(adapter, empty, e, num_loops=num_loops, update_hook=update_hook)


def continue_loops(adapter: LoopAdapter, prefix: LoopTrace, e: Tensor | None, *,
                   num_loops: int | None = None, update_hook: UpdateHook | None = None
                   ) -> LoopTrace:
    """Run loops j+1..``num_loops`` after the j loops recorded in ``prefix`` (whose last
    carried state, or H_0 when j = 0, is the input of loop j+1); ``e`` is the injected
    context of ``adapter.start``. Logits are recorded when ``prefix.logits`` is a list.
    Interventions reuse the unchanged loops of a run this way instead of recomputing them.
    """
    K = adapter.num_loops if num_loops is None else num_loops
    if not isinstance(K, int) or isinstance(K, bool) or K < 1:
        raise ValueError(f"num_loops must be a positive int, got {num_loops!r}")
    j = prefix.num_loops
    if j > K:
        raise ValueError(f"the prefix already has {j} loops, more than num_loops = {K}")
    states, carried = list(prefix.states), list(prefix.carried)
    logits = None if prefix.logits is None else list(prefix.logits)
    x = carried[-1] if carried else prefix.initial
    h = x
    for k in range(j + 1, K + 1):
        h = adapter.step(x, e)  # (B, T, d) H_k before any inter-loop norm
        _check_shape(h, f"step (loop {k})", like=prefix.initial)
        if update_hook is not None:
            h = update_hook(k, x, h)
        states.append(h)
        if logits is not None:
            logits.append(adapter.head(h, k, K))  # (B, T, V)
        x = adapter.carry_state(h, k)  # (B, T, d) what loop k+1 receives
        carried.append(x)
    # NaN and inf propagate through the residual stream, so checking the last state is
    # enough (and one reduction is far cheaper than an isfinite mask per loop)
    _check_finite(h, f"loop {K}")
    return LoopTrace(initial=prefix.initial, states=states, carried=carried, logits=logits)


def loop_inputs(trace: LoopTrace) -> list[Tensor]:
    """x_0..x_{K-1}: the state each loop k = 1..K received (H_0, then the carried states)."""
    return [trace.initial] + trace.carried[:-1]


def _check_state(h: Tensor, where: str) -> None:
    _check_shape(h, where)
    _check_finite(h, where)


def _check_shape(h: Tensor, where: str, like: Tensor | None = None) -> None:
    if not isinstance(h, Tensor):
        raise TypeError(f"the adapter's {where} returned {type(h).__name__}, not a tensor; "
                        "the loop body must return the next state tensor")
    if h.dim() != 3:
        raise ValueError(f"the adapter's {where} returned shape {tuple(h.shape)}; a state must "
                         "be (B, T, d)")
    if like is not None and h.shape != like.shape:
        raise ValueError(f"the adapter's {where} returned shape {tuple(h.shape)}, but H_0 has "
                         f"shape {tuple(like.shape)}: the loop body must map a state to a state")


def _check_finite(h: Tensor, where: str) -> None:
    # a sum is finite when every entry is (and a non-finite sum of finite entries, an
    # overflow, is checked entry by entry before it is reported)
    if not torch.isfinite(h.sum()) and not torch.isfinite(h).all():
        raise FloatingPointError(
            f"the adapter's {where} produced NaN or inf: the model diverged (or its weights are "
            "corrupt); diagnose a checkpoint from before the divergence")

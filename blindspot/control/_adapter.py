"""The one place where :mod:`blindspot.control` reaches into a :class:`LoopAdapter`.

Every control goes through :func:`checked` (the adapter with its loop body and head
validated) and :func:`model_of`, so a rename of the adapter's fields touches this file only.
"""

from __future__ import annotations

from dataclasses import replace

from torch import Tensor, nn

from blindspot.diagnostics.adapter import LoopAdapter


def model_of(adapter: LoopAdapter) -> nn.Module | None:
    """The model the adapter drives (``None`` when it was built from bare callables)."""
    return adapter.module


def checked(adapter: LoopAdapter) -> LoopAdapter:
    """The same adapter, whose loop body and head fail with a one-line error naming the
    problem and its fix instead of a shape error deep inside a loss."""
    if not isinstance(adapter, LoopAdapter):
        raise TypeError(f"expected a blindspot.diagnostics.LoopAdapter, got "
                        f"{type(adapter).__name__}; build one with LoopAdapter.from_modules("
                        "model, body=..., head=..., num_loops=...)")
    step, head = adapter.step, adapter.head

    def checked_step(x: Tensor, e: Tensor | None) -> Tensor:
        h = step(x, e)
        if isinstance(h, tuple | list):
            raise TypeError(
                f"the loop body returned a {type(h).__name__} of {len(h)} items, not the next "
                "state: point the adapter's body at a module that returns the (B, T, d) state "
                "tensor, or wrap it, e.g. nn.Module whose forward returns body(x)[0]")
        return h

    def checked_head(h: Tensor, loop: int, num_loops: int) -> Tensor:
        z = head(h, loop, num_loops)
        if not isinstance(z, Tensor) or z.dim() != 3 or z.shape[:2] != h.shape[:2]:
            got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(
                f"the head returned logits of shape {got} for a state of shape "
                f"{tuple(h.shape)}: it must return (B, T, V) logits, one vector per token; "
                "point the adapter's head at the module that maps a state to logits")
        return z

    return replace(adapter, step=checked_step, head=checked_head)

"""``StateTap``: the loop states H_1..H_K of the model's OWN forward pass, for the controls.

A forward hook on the loop body (the module an adapter names as ``body``) keeps each output,
H_k, the state before any inter-loop norm (the first element when the body returns a tuple or a
model-output object, as :meth:`LoopAdapter.from_modules` reads it). The hook returns
nothing, so the forward pass, its outputs and its gradients are exactly those of the model
without the tap
(``tests/test_control_tap.py::test_tap_leaves_the_forward_pass_bitwise_unchanged``); the
kept states are the live tensors, so a loss on them (:class:`blindspot.control.NormPenalty`)
back-propagates into the model. Works inside ``DistributedDataParallel``, autocast and
gradient accumulation, since it only watches the module call. In a training step::

    with StateTap(model.core) as tap:       # model.core: the loop body
        logits = model(x)
    loss = ce(logits, y) + NormPenalty(0.01)(tap.states)
"""

from __future__ import annotations

from torch import Tensor, nn

from blindspot.diagnostics.adapter import state_of


class StateTap:
    """Collects the outputs of ``body`` while the tap is open (``with`` block)."""

    def __init__(self, body: nn.Module):
        if not isinstance(body, nn.Module):
            raise TypeError(f"StateTap needs the loop body module (e.g. model.core), got "
                            f"{type(body).__name__}")
        self.body = body
        self.states: list[Tensor] = []
        self._handle = None

    def _keep(self, module: nn.Module, args, out) -> None:
        h = state_of(out, f"loop body {type(module).__name__}")  # a tuple's or output's first
        if h.dim() != 3:
            raise ValueError(f"the loop body {type(module).__name__} returned shape "
                             f"{tuple(h.shape)}; a loop state must be (B, T, d): tap the "
                             "module whose output is the recurrent state")
        self.states.append(h)

    def __enter__(self) -> StateTap:
        if self._handle is not None:
            raise RuntimeError("this StateTap is already open; use one `with` block at a time")
        self.states = []
        self._handle = self.body.register_forward_hook(self._keep)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()
        self._handle = None

r"""Controls that act on the recurrence itself: an inter-loop norm and the radial clamp.

- :class:`InterLoopNorm` wraps a model's loop body so that loop k+1 receives
  :math:`N(H_k)`, the state with its scale removed (the paper's scale-removing recurrence).
  It changes the model's forward pass: that is what the user asks for by wrapping.
- :func:`radial_clamp` runs a model through its adapter with the radial part of every loop
  update removed (or the scale frozen after loop 1): an inference-time control that changes
  only the run it returns (the paper's Table 4 intervention, as
  :mod:`blindspot.diagnostics.interventions` measures it).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from blindspot.control._adapter import checked
from blindspot.diagnostics.adapter import LoopAdapter
from blindspot.diagnostics.interventions import remove_radial, rescale_to
from blindspot.diagnostics.recorder import record
from blindspot.nn.functional import rms_norm
from blindspot.nn.trace import LoopTrace


class InterLoopNorm(nn.Module):
    r"""The loop body ``body`` with an RMSNorm on the state it receives:
    :math:`H_{k+1} = \mathrm{body}(N(H_k), \dots)`, :math:`N(h) = γ ⊙ h/\sqrt{\mathrm{ms}(h) + ε}`.

    ``injection`` says where the state is in the body's input, with the names of
    :meth:`LoopAdapter.from_modules`: ``"none"`` (``body(x)``), ``"concat"``
    (``body(cat[x, e])``: the first ``d_model`` features are normalized, the injected
    ``e`` is not) or ``"call"`` (``body(x, e)``). An additive injection ``body(x + e)``
    mixes the state with ``e`` before the body sees it, so it cannot be wrapped here:
    normalize the state before the addition in the model itself.

    Replace the body by the wrapper (``model.core = InterLoopNorm(model.core, 64,
    injection="concat")``) and build the adapter afterwards; the states the readout decodes,
    a :class:`StateTap` records and the monitor measures are still H_k, before the norm.

    **Radial force.** None on H_k: it makes the next loop blind to the scale instead. The
    input of loop k+1 has radial derivative
    :math:`\tfrac{d}{dc} N(c\,H_k)|_{c=1} = J_N H_k = ε\,γ ⊙ H_k / r^3` (zero at ε = 0),
    so :math:`\lVert H_{k+1}\rVert` cannot compound :math:`\lVert H_k\rVert`: the carried
    state has norm :math:`\lVert γ ⊙ u\rVert \sqrt{n\,\mathrm{ms}/(\mathrm{ms}+ε)}` whatever
    the scale. Certificates: ``blindspot.symbolic.identities.RMSNORM_INVARIANCE``
    (proofs/normalizers.md) and ``EPS_LEAK`` (proofs/eps_leak.md); checked by the claim
    ``control.inter_loop_norm_force``.
    """

    def __init__(self, body: nn.Module, d_model: int, *,
                 injection: Literal["none", "concat", "call"] = "none", eps: float = 1e-6,
                 gain: bool = True):
        super().__init__()
        if injection not in ("none", "concat", "call"):
            hint = (" (body(x + e) mixes the state with e before the body sees it: normalize "
                    "the state before the addition in the model)" if injection == "add" else "")
            raise ValueError(f"InterLoopNorm: injection must be 'none', 'concat' or 'call', got "
                             f"{injection!r}{hint}")
        if not isinstance(d_model, int) or isinstance(d_model, bool) or d_model < 1:
            raise ValueError(f"InterLoopNorm: d_model must be the state width (a positive int), "
                             f"got {d_model!r}")
        self.body, self.d_model, self.injection, self.eps = body, d_model, injection, eps
        like = next(body.parameters(), None)
        kw = {} if like is None else {"device": like.device, "dtype": like.dtype}
        self.weight = nn.Parameter(torch.ones(d_model, **kw)) if gain else None  # γ

    def norm(self, x: Tensor) -> Tensor:
        """N(x): RMSNorm over the last dimension with this wrapper's gain and ε."""
        return rms_norm(x, self.weight, self.eps)

    def forward(self, x: Tensor, *args, **kwargs):
        width = x.shape[-1]
        if self.injection == "concat":
            if width <= self.d_model:
                raise ValueError(f"InterLoopNorm(injection='concat') received width {width}, "
                                 f"not more than d_model = {self.d_model}: the body's input "
                                 "must be cat[state, e]; use injection='none' for a bare state")
            x = torch.cat([self.norm(x[..., :self.d_model]), x[..., self.d_model:]], dim=-1)
        else:
            if width != self.d_model:
                hint = (" (a concatenated [state, e] input needs injection='concat')"
                        if width > self.d_model else "")
                raise ValueError(f"InterLoopNorm received a state of width {width}, but "
                                 f"d_model = {self.d_model}{hint}")
            x = self.norm(x)
        return self.body(x, *args, **kwargs)


class RadialClamp:
    r"""An update hook for :func:`blindspot.diagnostics.record` (``hook(k, x, H_k) -> H_k'``).

    - ``"remove_radial"``: :math:`H_k \leftarrow x + Δ_\perp`, the update
      :math:`Δ = H_k - x` without its radial part :math:`a\,u`,
      :math:`a = ⟨u, Δ⟩`, :math:`u = x/\lVert x\rVert`;
    - ``"freeze_scale"``: loop 1 runs as it is; every later state is rescaled, per token, to
      :math:`\lVert H_1\rVert`.

    **Radial force.** ``remove_radial`` sets the radial increment to zero, :math:`a_k = 0`,
    so :math:`\lVert H_k\rVert^2 = \lVert x\rVert^2 + \lVert Δ_\perp\rVert^2` exactly (no
    linear drift); the new direction differs from the unclamped one by
    :math:`a\lVert Δ_\perp\rVert/s^2 + O(s^{-3})`. ``freeze_scale`` gives
    :math:`\lVert H_k\rVert = \lVert H_1\rVert`. Certificates:
    ``blindspot.symbolic.identities.LEMMA2_EXACT`` (proofs/lemma2.md) and ``RADIAL_CLAMP``
    (proofs/radial_clamp.md); checked by the claim ``control.radial_clamp_force``.
    """

    def __init__(self, mode: Literal["remove_radial", "freeze_scale"] = "remove_radial"):
        if mode not in ("remove_radial", "freeze_scale"):
            raise ValueError(f"radial clamp mode must be 'remove_radial' or 'freeze_scale', got "
                             f"{mode!r}")
        self.mode = mode
        self._first: Tensor | None = None

    def __call__(self, loop: int, x: Tensor, h: Tensor) -> Tensor:
        if self.mode == "remove_radial":
            return remove_radial(x, h)
        if loop == 1:
            self._first = h.norm(dim=-1)  # (B, T) ‖H_1‖
            return h
        return rescale_to(h, self._first)


def radial_clamp(adapter: LoopAdapter, idx: Tensor,
                 mode: Literal["remove_radial", "freeze_scale"] = "remove_radial",
                 num_loops: int | None = None) -> LoopTrace:
    """Run the model through ``adapter`` with :class:`RadialClamp` on every loop; returns the
    trace with per-loop logits (``trace.logits[-1]`` are the clamped predictions). Nothing
    about the model changes; wrap the call in ``torch.no_grad()`` at inference."""
    return record(checked(adapter), idx, num_loops=num_loops, update_hook=RadialClamp(mode))

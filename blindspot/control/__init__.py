"""Scale control for your own looped model: a training-time monitor and drop-in fixes.

The paper's design rule: dense supervision trains exits; recurrent scale control needs a
loss that sees the scale or a loop that removes it. This package makes the rule a few lines
of a user's own training loop, on any model a :class:`blindspot.diagnostics.LoopAdapter`
describes:

- :class:`ScaleMonitor` measures per-loop ‖H_k‖, the radial share of the per-loop loss
  gradient and how much of its input's scale each loop hands on every N steps (JSONL), and
  raises one :class:`BlindSpotWarning` when a loop's state doubles while no loss sees the
  scale and the loops carry it;
- :class:`StateTap` records the loop states of the model's own forward pass;
- :class:`NormPenalty` and :class:`RawReadoutLoss` are loss terms that see the scale;
- :class:`InterLoopNorm` wraps the loop body so the next loop cannot see the scale;
- :func:`radial_clamp` (:class:`RadialClamp`) removes the radial part of every loop update
  at inference.

Each control's docstring states its radial force and the certificate of
:mod:`blindspot.symbolic.identities` that proves it; ``blindspot.checks.control`` checks
each against autograd.
"""

from blindspot.control.loop import InterLoopNorm, RadialClamp, radial_clamp
from blindspot.control.losses import NormPenalty, RawReadoutLoss
from blindspot.control.monitor import (
           BlindSpotWarning,
           ScaleMonitor,
           blind_threshold,
           round_off_floor,
)
from blindspot.control.tap import StateTap

__all__ = ["BlindSpotWarning", "InterLoopNorm", "NormPenalty", "RadialClamp", "RawReadoutLoss",
           "ScaleMonitor", "StateTap", "blind_threshold", "radial_clamp", "round_off_floor"]

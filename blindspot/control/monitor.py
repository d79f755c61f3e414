r"""``ScaleMonitor``: watch a training run for the readout blind spot, and say how to fix it.

Every ``every`` optimizer steps, :meth:`ScaleMonitor.observe` measures on the step's batch:

- per-loop scale ‖H_k‖ over tokens: mean and 99th percentile;
- the radial share of each loop's per-loop loss gradient,
  :math:`\sqrt{\sum_t ⟨g_t, u_t⟩^2 / \sum_t \lVert g_t\rVert^2}` with
  :math:`g = ∇_{H_k}` of the loop's cross-entropy through its own readout
  (:func:`~blindspot.diagnostics.radial.loop_gradient`,
  :func:`~blindspot.diagnostics.radial.radial_terms`)
  plus the per-loop term of every loss control it is given (:class:`NormPenalty`,
  :class:`RawReadoutLoss`);
- the growth rate of ‖H_K‖ over steps, :math:`d \ln\lVert H_K\rVert / d\,\mathrm{step}`,
  the least-squares slope over the last ``window`` measurements;

and appends them to a JSONL file, one record per line. The verdict of a record:

- **blind**: every loop's radial share is at most the blind threshold
  :math:`\max(\texttt{blind\_share}, \mathrm{floor})`, where the floor is the round-off of
  the dtype the gradient was computed in, ``torch.finfo(dtype).eps`` (1.2e-7 in float32,
  7.8e-3 in bfloat16: above every radial share proofs/precision.md measures at ε = 0, where
  the exact share is 0). ``blind_share`` = 1e-4 leaves room for the ε-leak of a norm with
  ε ≤ 1e-5 (:math:`κ = ε/(\mathrm{ms}(h)+ε) ≤ 10^{-4}` once ms(h) ≥ 0.1,
  proofs/eps_leak.md) and is far below what a scale-visible loss puts there (a raw
  readout's share is O(0.1));
- **growing**: over the last ``window`` measurements ‖H_K‖ grew (``growth_rate`` > 0) and
  the loops grew it: the ratio ‖H_K‖/‖H_1‖ (``loop_ratio``, the scale the recurrence adds
  on top of the first loop's: :math:`1 + \sum_{k<K} a_k/s_1` to first order for a pre-norm
  residual loop, proofs/lemma2.md) rose by at least ``min_growth`` (20 %) along the
  least-squares fit. Growth that the first loop shares, such as weights growing during
  early training, is not the blind spot, and an inter-loop norm keeps the ratio flat (a
  model of one loop has nothing to compound, and never warns);
- **active** (the blind spot): blind at each of those measurements and growing. The first
  active record raises one :class:`BlindSpotWarning` and one log record on the
  ``blindspot.control`` logger, both naming the fixes; the monitor never warns again.

The measurement never changes training: it runs through the adapter in eval mode (each
module's own mode restored), with autocast off (so it measures in the parameters' dtype), on
a forked RNG, and takes gradients with respect to detached states only, so no parameter's
``.grad`` is touched
(``tests/test_control_monitor.py::test_monitor_leaves_training_bitwise_unchanged``).
Under ``torch.distributed`` every process calls :meth:`~ScaleMonitor.observe` with its own
slice of the batch; the statistics are reduced over processes (per-token scales gathered,
gradient sums all-reduced), so every process gets the same record and verdict, and only rank 0
writes and warns. Collectives run at the same steps on every process, and a process that
fails a measurement makes the others fail too instead of leaving them waiting
(``tests/test_control_distributed.py``).
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import Tensor, nn

from blindspot.control._adapter import checked, model_of
from blindspot.diagnostics.adapter import LoopAdapter
from blindspot.diagnostics.radial import loop_gradient, radial_terms
from blindspot.diagnostics.recorder import record

EVERY = 50  # optimizer steps between measurements (cost: benchmarks/monitor_overhead.py)
WINDOW = 4  # measurements the growth verdict looks back over
MIN_GROWTH = 0.2  # ... over which ‖H_K‖/‖H_1‖ must rise by 20 % (fitted)
BLIND_SHARE = 1e-4  # a radial share below this is no force on the scale (module docstring)
FIXES = ("make the scale visible to a loss (blindspot.control.NormPenalty, a norm penalty; "
         "blindspot.control.RawReadoutLoss, a raw-readout auxiliary loss) or remove it from "
         "the loop (blindspot.control.InterLoopNorm); see proofs/readouts.md")

logger = logging.getLogger("blindspot.control")


class BlindSpotWarning(UserWarning):
    """The readout blind spot is active: ‖H_K‖ grows while no loss sees the scale."""


class LossControl(Protocol):
    """A loss control the monitor adds to each loop's loss: its per-token term at one loop."""

    def per_token(self, h: Tensor, targets: Tensor) -> Tensor: ...


def round_off_floor(dtype: torch.dtype) -> float:
    """The round-off floor of a radial share measured in ``dtype``: ``finfo(dtype).eps``
    (proofs/precision.md measures shares below it at every scale its dtype can represent)."""
    return float(torch.finfo(dtype).eps)


def blind_threshold(dtype: torch.dtype, blind_share: float = BLIND_SHARE) -> float:
    """The largest radial share that counts as blind: max(blind_share, the dtype's floor)."""
    return max(blind_share, round_off_floor(dtype))


class ScaleMonitor:
    """Measure per-loop scale and radial share every ``every`` steps; warn once on the blind spot.

    ``adapter`` describes the model (:class:`blindspot.diagnostics.LoopAdapter`; build it on
    the model itself, not on a ``DistributedDataParallel`` wrapper). ``controls`` are the loss
    controls the training loss adds (:class:`NormPenalty`, :class:`RawReadoutLoss`), so that
    their force on the scale is part of the measured per-loop gradient. ``path``: the JSONL
    file (rewritten by this monitor's first record unless ``append``). ``process_group``: the
    group to reduce over (default: the default group when ``torch.distributed`` is
    initialized). In a training loop::

        monitor = ScaleMonitor(adapter, path="scale.jsonl")
        for step, (x, y) in enumerate(batches):
            ...                                  # forward, loss, backward, optimizer step
            monitor.observe(step, x, y)          # once per optimizer step
    """

    def __init__(self, adapter: LoopAdapter, *, every: int = EVERY,
                 path: str | Path | None = None, controls: Sequence[LossControl] = (),
                 window: int = WINDOW, min_growth: float = MIN_GROWTH,
                 blind_share: float = BLIND_SHARE, append: bool = False,
                 process_group: Any = None):
        for name, value, low in (("every", every, 1), ("window", window, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"ScaleMonitor: {name} must be an int >= {low}, got {value!r}")
        if not min_growth > 0 or not blind_share > 0:
            raise ValueError(f"ScaleMonitor: min_growth and blind_share must be > 0, got "
                             f"{min_growth!r} and {blind_share!r}")
        for c in controls:
            if not callable(getattr(c, "per_token", None)):
                raise TypeError(f"ScaleMonitor: controls are the loss controls the training loss "
                                f"adds (NormPenalty, RawReadoutLoss), got {type(c).__name__}; "
                                "an InterLoopNorm is part of the model and needs no registration")
        self.adapter = checked(adapter)
        self.every, self.window, self.min_growth = every, window, min_growth
        self.blind_share = blind_share
        self.controls = tuple(controls)
        self.path = None if path is None else Path(path)
        self._append = append
        self.group = process_group
        self.records: list[dict[str, Any]] = []
        self.fired_at: int | None = None  # the step of the warning, once it fired

    # -- the training-loop call ----------------------------------------------------------

    def observe(self, step: int, idx: Tensor, targets: Tensor) -> dict[str, Any] | None:
        """Measure at every ``every``-th step (returns the record), else do nothing (None).
        Call it once per optimizer step, on every process, with that process's batch."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"ScaleMonitor.observe: step must be a non-negative int (the "
                             f"optimizer step), got {step!r}")
        if step % self.every:
            return None
        rec = self.measure(idx, targets)
        rec = {"step": step, **rec}
        self.records.append(rec)
        rec.update(self._verdict())
        if self._rank() == 0:
            self._write(rec)
        if rec["active"] and self.fired_at is None:
            self.fired_at = step
            if self._rank() == 0:
                msg = self.message(rec)
                logger.warning(msg)
                warnings.warn(msg, BlindSpotWarning, stacklevel=2)
        return rec

    # -- one measurement ------------------------------------------------------------------

    def measure(self, idx: Tensor, targets: Tensor) -> dict[str, Any]:
        """Scale and radial share of one batch, reduced over processes (no verdict)."""
        failure = None
        try:
            local = self._measure_local(idx, targets)
        except Exception as err:  # every process must learn of a failure (see below)
            failure, local = err, None
        world = self._world()
        if world > 1:
            flag = torch.tensor([0.0 if failure is None else 1.0], device=idx.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.group)
            if flag.item() and failure is None:
                raise RuntimeError("ScaleMonitor: another process failed this measurement; its "
                                   "error names the problem (all processes stop together)")
        if failure is not None:
            raise failure
        scales, sums, dtype = local
        if world > 1:
            scales, sums = _gather_columns(scales, self.group, world), sums.clone()
            dist.all_reduce(sums, op=dist.ReduceOp.SUM, group=self.group)
        share = (sums[:, 0] / sums[:, 1].clamp_min(torch.finfo(sums.dtype).tiny)).sqrt()
        mean = scales.nanmean(dim=1)  # (K,) mean ‖H_k‖ over the tokens of every process
        return {"loops": scales.shape[0], "tokens": int(scales[0].isfinite().sum()),
                "scale_mean": mean.tolist(),
                "scale_p99": torch.nanquantile(scales, 0.99, dim=1).tolist(),
                "loop_ratio": (mean[-1] / mean[0]).item(),
                "radial_share": share.tolist(), "dtype": str(dtype).removeprefix("torch."),
                "round_off_floor": round_off_floor(dtype),
                "blind_threshold": blind_threshold(dtype, self.blind_share)}

    def _measure_local(self, idx: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, torch.dtype]:
        """(K, N) per-token ‖H_k‖, (K, 2) [Σ_t ⟨u_t, g_t⟩², Σ_t ‖g_t‖²] and the gradient dtype."""
        with _side_effect_free(model_of(self.adapter), idx.device):
            with torch.no_grad():
                try:
                    trace = record(self.adapter, idx, logits=False)
                except FloatingPointError:
                    raise FloatingPointError(
                        "ScaleMonitor: a loop state is NaN or inf, the model diverged; lower the "
                        "learning rate or clip gradients, and add a scale control: "
                        + FIXES) from None
            if not isinstance(targets, Tensor) or targets.shape != trace.initial.shape[:2]:
                got = (tuple(targets.shape) if isinstance(targets, Tensor)
                       else type(targets).__name__)
                raise ValueError(f"ScaleMonitor: targets must be the (B, T) = "
                                 f"{tuple(trace.initial.shape[:2])} next-token ids of the "
                                 f"batch, got {got}")
            K = trace.num_loops
            sums, dtype = [], None
            for k, state in enumerate(trace.states, start=1):
                h, g = self._loop_gradient(state, targets, k, K)
                t = radial_terms(h, g)
                grad_sq = t["grad_norm"].double().pow(2).sum()
                sums.append(torch.stack([t["share"].double().pow(2) * grad_sq, grad_sq]))
                dtype = g.dtype
            scales = trace.scales().detach().double().flatten(1)  # (K, N)
        return scales, torch.stack(sums), dtype

    def _loop_gradient(self, state: Tensor, targets: Tensor, loop: int, num_loops: int
                       ) -> tuple[Tensor, Tensor]:
        """∇_{H_k} of the loop's summed CE through its own readout plus the controls' terms."""
        h, g, _ = loop_gradient(self.adapter, state, targets, loop, num_loops)
        if self.controls:
            hh = h.detach().requires_grad_(True)
            with torch.enable_grad():
                extra = sum(c.per_token(hh, targets).sum() for c in self.controls)
                (ge,) = torch.autograd.grad(extra, hh)
            g = g + ge
        return h, g

    # -- verdict and output ----------------------------------------------------------------

    def _verdict(self) -> dict[str, Any]:
        recent = self.records[-self.window:]
        last = recent[-1]
        steps = [r["step"] for r in recent]
        log_scale = [math.log(r["scale_mean"][-1]) for r in recent]
        log_ratio = [math.log(r["loop_ratio"]) for r in recent]
        rate = _slope(steps, log_scale) if len(recent) >= 2 else None
        growing = len(recent) == self.window and rate > 0 and \
            _slope(steps, log_ratio) * (steps[-1] - steps[0]) >= math.log1p(self.min_growth)
        all_blind = all(max(r["radial_share"]) <= r["blind_threshold"] for r in recent)
        return {"growth_rate": rate,
                "blind": max(last["radial_share"]) <= last["blind_threshold"],
                "growing": growing, "active": bool(growing and all_blind)}

    def message(self, rec: dict[str, Any]) -> str:
        """The warning text for an active record."""
        first = self.records[-self.window]
        factor = rec["scale_mean"][-1] / first["scale_mean"][-1]
        return (f"readout blind spot at step {rec['step']}: ‖H_K‖ grew {factor:.2f}x over steps "
                f"{first['step']}..{rec['step']} (to {rec['scale_mean'][-1]:.4g}; rate "
                f"{rec['growth_rate']:.2e}/step), the loops' part ‖H_K‖/‖H_1‖ from "
                f"{first['loop_ratio']:.3g} to {rec['loop_ratio']:.3g}, while the radial share "
                f"of every loop's loss gradient stayed at most {max(rec['radial_share']):.1e} "
                f"(blind threshold {rec['blind_threshold']:.1e}; {rec['dtype']} round-off "
                f"{rec['round_off_floor']:.1e}): no loss sees the scale. Fix: {FIXES}")

    def _write(self, rec: dict[str, Any]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mode = "a" if self._append else "w"
        self._append = True  # the first record of this monitor starts the file
        with self.path.open(mode) as f:
            f.write(json.dumps(rec) + "\n")

    def _world(self) -> int:
        return dist.get_world_size(self.group) if _distributed() else 1

    def _rank(self) -> int:
        return dist.get_rank(self.group) if _distributed() else 0


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys against xs."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0


def _gather_columns(t: Tensor, group: Any, world: int) -> Tensor:
    """Concatenate every process's (K, N_rank) tensor along N (padded with NaN to the
    longest N, which the NaN-aware statistics then skip)."""
    n = torch.tensor([t.shape[1]], device=t.device)
    dist.all_reduce(n, op=dist.ReduceOp.MAX, group=group)
    padded = torch.full((t.shape[0], int(n.item())), float("nan"), dtype=t.dtype, device=t.device)
    padded[:, :t.shape[1]] = t
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded, group=group)
    return torch.cat(parts, dim=1)


@contextmanager
def _side_effect_free(model: nn.Module | None, device: torch.device) -> Iterator[None]:
    """Eval mode (each module's own mode restored after), autocast off, and a forked RNG."""
    modes = [] if model is None else [(m, m.training) for m in model.modules()]
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), \
                torch.autocast(device.type, enabled=False):
            if model is not None:
                model.eval()
            yield
    finally:
        for m, mode in modes:
            m.training = mode

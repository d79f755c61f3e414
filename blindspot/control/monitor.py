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
- the **carry** of each loop k = 2..K: how much of the scale of the state loop k-1 hands on
  reaches loop k's output, :math:`\log_2(\overline{\lVert H_k'\rVert}/\overline{\lVert H_k\rVert})`
  where :math:`H_k'` is loop k run on the carried state of :math:`2H_{k-1}` (the mean over
  tokens; one extra no-grad pass of the body per loop). A pre-norm residual loop,
  :math:`H_k = x + Δ(x/\lVert x\rVert)`, carries
  :math:`\log_2(\lVert 2x + Δ\rVert/\lVert x + Δ\rVert)`: near 1 when x dominates the update,
  near 0 when the update dominates, above 1 when the update points against x;
  a loop whose output is normalized (post-norm) or whose input is (an inter-loop norm) carries
  nothing but the ε-leak (:math:`\le 10^{-4}`, proofs/eps_leak.md);
- the growth rate of ‖H_K‖ over steps, :math:`d \ln\lVert H_K\rVert / d\,\mathrm{step}`,
  the least-squares slope over the last ``window`` measurements (reported, not judged);

and appends them to a JSONL file, one record per line. The verdict of a record:

- **blind**: every loop's radial share is at most the blind threshold
  :math:`\max(\texttt{blind\_share}, \mathrm{floor})`, where the floor is the round-off of
  the dtype the gradient was computed in, ``torch.finfo(dtype).eps`` (1.2e-7 in float32,
  7.8e-3 in bfloat16: above every radial share proofs/precision.md measures at ε = 0, where
  the exact share is 0). ``blind_share`` = 1e-4 leaves room for the ε-leak of a norm with
  ε ≤ 1e-5 (:math:`κ = ε/(\mathrm{ms}(h)+ε) ≤ 10^{-4}` once ms(h) ≥ 0.1,
  proofs/eps_leak.md) and is far below what a scale-visible loss puts there (a raw
  readout's share is O(0.1));
- **carried**: some loop k ≥ 2 carries at least ``min_carry`` (0.25) of its input's scale: the
  recurrence hands the scale on. A model of one loop has no loop to hand it to, and a
  post-norm or inter-loop-norm model carries only its ε-leak;
- **growing**: since the blind streak began (the measurements since the last one that was not
  blind), some loop's mean ‖H_k‖, any k, not only the last, has grown by at least
  ``growth_factor`` (2×) from its smallest value in the streak. Growth the first loop shares
  counts: in a real run the growth can sit in every loop's state while ‖H_K‖/‖H_1‖ falls
  (a pre-LN ALBERT, examples/albert.py). Parameters that grow without growing a state
  (weights in front of a norm) do not count: only states are measured;
- **active** (the blind spot): blind, carried and growing. The first active record raises
  one :class:`BlindSpotWarning` and one log record on the ``blindspot.control`` logger, both
  naming the fixes; the monitor never warns again.

A scale-visible loss (a raw readout, a norm penalty the monitor is told about) is not blind
and never warns. The false positives and negatives of this rule over a labelled set of runs
are in the book's "Fix it in your own model" page (``examples/monitor_labels.py``).

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
from blindspot.diagnostics.recorder import continue_loops
from blindspot.nn.trace import LoopTrace

EVERY = 50  # optimizer steps between measurements (cost: benchmarks/monitor_overhead.py)
WINDOW = 4  # measurements the reported growth rate of ‖H_K‖ is fitted over
GROWTH_FACTOR = 2.0  # a loop's ‖H_k‖ doubled while blind: the blind spot is active
MIN_CARRY = 0.25  # a loop carries the scale when doubling its input raises its output's by ≥ 2^0.25
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
                 window: int = WINDOW, growth_factor: float = GROWTH_FACTOR,
                 min_carry: float = MIN_CARRY, blind_share: float = BLIND_SHARE,
                 append: bool = False, process_group: Any = None, **removed: Any):
        if "min_growth" in removed:
            raise TypeError("ScaleMonitor: min_growth (a rise of ‖H_K‖/‖H_1‖) is no longer part "
                            "of the verdict; use growth_factor= (the factor by which any loop's "
                            "‖H_k‖ must grow while blind)")
        if removed:
            raise TypeError(f"ScaleMonitor got unexpected keyword arguments {sorted(removed)}")
        for name, value, low in (("every", every, 1), ("window", window, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"ScaleMonitor: {name} must be an int >= {low}, got {value!r}")
        if not growth_factor > 1 or not 0 < min_carry <= 1 or not blind_share > 0:
            raise ValueError(f"ScaleMonitor: growth_factor must be > 1, min_carry in (0, 1] and "
                             f"blind_share > 0, got {growth_factor!r}, {min_carry!r} and "
                             f"{blind_share!r}")
        for c in controls:
            if not callable(getattr(c, "per_token", None)):
                raise TypeError(f"ScaleMonitor: controls are the loss controls the training loss "
                                f"adds (NormPenalty, RawReadoutLoss), got {type(c).__name__}; "
                                "an InterLoopNorm is part of the model and needs no registration")
        self.adapter = checked(adapter)
        self.every, self.window = every, window
        self.growth_factor, self.min_carry = growth_factor, min_carry
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
        K = sums.shape[0]
        scales, doubled = scales[:K], scales[K:]  # (K, N) ‖H_k‖; (K-1, N) ‖H_k'‖, k = 2..K
        mean = scales.nanmean(dim=1)  # (K,) mean ‖H_k‖ over the tokens of every process
        tiny = torch.finfo(mean.dtype).tiny
        carry = (doubled.nanmean(dim=1).clamp_min(tiny) / mean[1:].clamp_min(tiny)).log2()
        return {"loops": K, "tokens": int(scales[0].isfinite().sum()),
                "scale_mean": mean.tolist(),
                "scale_p99": torch.nanquantile(scales, 0.99, dim=1).tolist(),
                "loop_ratio": (mean[-1] / mean[0]).item(), "carry": carry.tolist(),
                "radial_share": share.tolist(), "dtype": str(dtype).removeprefix("torch."),
                "round_off_floor": round_off_floor(dtype),
                "blind_threshold": blind_threshold(dtype, self.blind_share)}

    def _measure_local(self, idx: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, torch.dtype]:
        """(2K-1, N) per-token ‖H_k‖ (k = 1..K) then ‖H_k'‖ (loop k on the carried 2H_{k-1},
        k = 2..K), (K, 2) [Σ_t ⟨u_t, g_t⟩², Σ_t ‖g_t‖²] and the gradient dtype."""
        adapter = self.adapter
        with _side_effect_free(model_of(adapter), idx.device):
            with torch.no_grad():
                try:
                    h0, e = adapter.start(idx)
                    trace = continue_loops(adapter, LoopTrace(h0, [], [], None), e)
                    doubled = [adapter.step(adapter.carry_state(2 * h, k), e)
                               for k, h in enumerate(trace.states[:-1], start=1)]
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
            scales = torch.cat([trace.scales().detach().double().flatten(1)]
                               + [h.detach().double().norm(dim=-1).flatten()[None]
                                  for h in doubled])  # (2K-1, N)
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
        rate = _slope(steps, log_scale) if len(recent) >= 2 else None
        blind = _blind(last)
        streak: list[dict[str, Any]] = []  # the measurements since the last one not blind
        for r in reversed(self.records):
            if not _blind(r):
                break
            streak.insert(0, r)
        growth, loop, since = 1.0, None, None
        for k in range(last["loops"]):  # from each loop's smallest scale in the streak
            low = min(streak, key=lambda r: r["scale_mean"][k]) if streak else last
            g = last["scale_mean"][k] / low["scale_mean"][k]
            if g > growth:
                growth, loop, since = g, k + 1, low["step"]
        carried = max(last["carry"], default=0.0) >= self.min_carry
        growing = blind and growth >= self.growth_factor
        return {"growth_rate": rate, "blind": blind, "blind_since": streak[0]["step"] if streak
                else None, "growth": growth, "growth_loop": loop, "growth_from_step": since,
                "carried": carried, "growing": growing,
                "active": bool(blind and carried and growing)}

    def message(self, rec: dict[str, Any]) -> str:
        """The warning text for an active record."""
        k = rec["growth_loop"]
        first = next(r for r in self.records if r["step"] == rec["growth_from_step"])
        return (f"readout blind spot at step {rec['step']}: ‖H_{k}‖ (loop {k} of "
                f"{rec['loops']}) grew {rec['growth']:.2f}x, from {first['scale_mean'][k - 1]:.4g} "
                f"at step {first['step']} to {rec['scale_mean'][k - 1]:.4g} (‖H_K‖ "
                f"{first['scale_mean'][-1]:.4g} -> {rec['scale_mean'][-1]:.4g}), the loops "
                f"carrying the scale (carry up to {max(rec['carry']):.2f}), while the radial "
                f"share of every loop's loss gradient stayed at most "
                f"{max(rec['radial_share']):.1e} since step {rec['blind_since']} (blind threshold "
                f"{rec['blind_threshold']:.1e}; {rec['dtype']} round-off "
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


def _blind(rec: dict[str, Any]) -> bool:
    """Every loop's radial share at most the record's blind threshold."""
    return max(rec["radial_share"]) <= rec["blind_threshold"]


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

"""The trainer: AdamW with the recipe's schedule and decay set, clipping, bf16 autocast,
JSONL metrics, atomic checkpoints with exact resume, a NaN guard, and data parallelism.

Files in ``out_dir``:
``config.yaml`` (the resolved config), ``metrics.jsonl`` (one JSON record per line: ``train``
records every ``log_every`` steps with per-loop CE and per-loop ‖H_k‖; ``eval`` records at
step 0, every ``eval_every`` steps and at the end), ``checkpoint.pt`` (resumable), and
``final.json`` (the last evaluation with its run card).

Interrupts: SIGINT (Ctrl-C) or SIGTERM during the training loop finishes the step under way,
writes a resumable checkpoint at that step and raises :class:`TrainingInterrupted` (a
``KeyboardInterrupt``) naming it, so nothing trained is lost and the same call resumes;
``blindspot train`` turns it into one line and exit status 130
(``tests/test_train.py::test_a_signal_checkpoints_and_the_resumed_run_is_exact``). A second
signal while that checkpoint is written is ignored (the write is atomic either way).

Exactness: the batch of step i is a pure function of (corpus, seed, i)
(:class:`~blindspot.train.data.WindowBatches`), and a checkpoint holds model, optimizer,
scheduler and RNG states, so resuming from step s replays steps s+1.. exactly; metrics
records after s are dropped on resume so the log never holds a step twice
(``tests/test_train.py::test_sigkill_resume_is_exact``). On CPU a seed fixes the run bit for
bit (``tests/test_train.py::test_cpu_run_is_deterministic``).
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from blindspot.nn import LoopedLM
from blindspot.provenance import atomic_write_json, atomic_write_text, run_card
from blindspot.train import checkpoint as ckpt_io
from blindspot.train import distributed as dd
from blindspot.train.config import ConfigError, TrainConfig, to_yaml
from blindspot.train.data import WindowBatches, eval_windows, prepared_data
from blindspot.train.losses import loss_of, mean_scale
from blindspot.train.mechanism import mechanism_stats


class NonFiniteError(FloatingPointError):
    """A loss, state or gradient became NaN/inf; the message names the step, the loop and
    the fix."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped training; a resumable checkpoint holds ``step``."""

    def __init__(self, step: int, signum: int, checkpoint: Path):
        super().__init__(f"interrupted at step {step}; the same command resumes")
        self.step, self.signum, self.checkpoint = step, signum, checkpoint


class _StopOnSignals:
    """While active, SIGINT and SIGTERM set ``signum`` instead of interrupting: the loop
    checks it between steps. Installed only in the main thread (signal handlers cannot be
    set elsewhere); the previous handlers come back on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum

    def __enter__(self) -> _StopOnSignals:
        if self.enabled:
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)


@dataclass
class TrainResult:
    out_dir: Path
    config: TrainConfig
    model: torch.nn.Module
    final: dict[str, Any]  # the last evaluation (see :func:`evaluate`)
    wall_time_s: float


def lr_factor(step: int, warmup: int, total: int, min_ratio: float,
              schedule: str = "warmup_cosine") -> float:
    r"""Multiplier of the base lr at optimizer step ``step`` (0-based): linear warm-up
    $(s+1)/w$ for $s < w$, then 1 (``constant``, the paper's schedule, which has $w = 0$) or
    the cosine $r + (1-r)\tfrac12(1+\cos(\pi\,\tfrac{s-w}{\max(1,T-w)}))$ down to
    $r$ = ``min_ratio`` (``warmup_cosine``)."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def resolve_device(cfg: TrainConfig, ctx: dd.DistContext | None = None) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("device=cuda but torch sees no GPU; use --set device=cpu")
        return torch.device("cuda", ctx.local_rank if ctx else 0)
    return torch.device("cpu")


def autocast(cfg: TrainConfig, device: torch.device):
    """bf16 autocast when precision is bf16 (or auto on a GPU); a no-op context otherwise."""
    if cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def param_groups(model: torch.nn.Module, weight_decay: float,
                 on: str = "all") -> list[dict[str, Any]]:
    """AdamW parameter groups. ``on="all"``: decay on every parameter, norm gains included
    (the paper: ``AdamW(model.parameters(), weight_decay=...)``); ``on="matrices"``: decay on
    matrices (dim >= 2) only, the GPT-2 convention of blindspot 0.1."""
    params = [p for p in model.parameters() if p.requires_grad]
    if on == "all":
        return [{"params": params, "weight_decay": weight_decay}]
    if on != "matrices":
        raise ValueError(f"weight decay on {on!r}: valid choices are 'all', 'matrices'")
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


def speed_settings(cfg: TrainConfig, device: torch.device) -> dict[str, Any]:
    """How a run of ``cfg`` on ``device`` computes, decided before any tensor exists (so the
    GPU path's choices are testable on a CPU): the attention kernel training runs (``auto``
    resolved by device and dropout; :func:`blindspot.nn.functional.resolve_attention_kernel`),
    the one evaluation runs (no dropout), whether AdamW is fused (``fused_adamw``, None: on
    CUDA only) and whether the forward pass is compiled. Recorded in every run card."""
    from blindspot.nn.functional import resolve_attention_kernel

    kernel = cfg.model.attention_kernel
    return {"device": device.type,
            "attention_kernel_train": resolve_attention_kernel(kernel, cfg.model.dropout,
                                                               device.type),
            "attention_kernel_eval": resolve_attention_kernel(kernel, 0.0, device.type),
            "fused_adamw": (device.type == "cuda" if cfg.fused_adamw is None
                            else cfg.fused_adamw),
            "compile": cfg.compile, "precision": cfg.precision}


def optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device
              ) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over :func:`param_groups` with the recipe's betas, and its lr schedule."""
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay, cfg.weight_decay_on), lr=cfg.lr,
                            betas=(cfg.beta1, cfg.beta2),
                            fused=speed_settings(cfg, device)["fused_adamw"] or None)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio,
                                 cfg.lr_schedule))
    return opt, sched


def check_finite(step: int, ce: torch.Tensor, scales: torch.Tensor, loss: torch.Tensor,
                 lr: float | None = None) -> None:
    """Raise :class:`NonFiniteError` naming the first loop whose CE or ‖H_k‖ is not finite,
    and the fix (with the base ``lr`` when given)."""
    now = "" if lr is None else f" (now {lr:g})"
    if torch.isfinite(loss) and torch.isfinite(ce).all() and torch.isfinite(scales).all():
        return
    offset = len(scales) - len(ce)  # a terminal readout computes only the last loops' CE
    for k in range(len(scales)):
        c = ce[k - offset].item() if k >= offset else float("nan")
        bad_ce = k >= offset and not math.isfinite(c)
        if bad_ce or not math.isfinite(scales[k].item()):
            raise NonFiniteError(
                f"non-finite value at step {step}, loop {k + 1}: CE = {c}, "
                f"‖H_{k + 1}‖ = {scales[k].item()}; lower lr{now}, keep grad_clip > 0, "
                f"add a norm_penalty or an inter-loop norm")
    raise NonFiniteError(f"non-finite loss at step {step} ({loss.item()}) with finite per-loop "
                         f"CE and states: check norm_penalty")


@torch.no_grad()
def evaluate(model: torch.nn.Module, val: torch.Tensor, cfg: TrainConfig,
             device: torch.device) -> dict[str, Any]:
    """Validation per-loop CE and perplexity, per-loop mean ‖H_k‖, and the final-loop numbers
    the paper's Table 1 reports (``ppl`` = exp(CE_K), ``scale_K`` = mean ‖H_K‖). Always in
    float32, whatever the training precision: bf16 training keeps float32 master weights, and
    the numbers the claims read are computed from them without bf16 rounding. ``mechanism``:
    :func:`blindspot.train.mechanism.mechanism_stats` of the first batch (None for a model
    that is not a ``LoopedLM``)."""
    was_training = model.training
    model.eval()
    x_all, y_all = eval_windows(val, cfg.data.seq_len, cfg.eval_windows)
    ce_sum, sc_sum, n = 0.0, 0.0, 0
    mechanism = None
    for i in range(0, len(x_all), cfg.batch_size):
        x, y = x_all[i:i + cfg.batch_size].to(device), y_all[i:i + cfg.batch_size].to(device)
        ce, out = model.loop_cross_entropy(x, y)
        if i == 0 and isinstance(model, LoopedLM):  # the record reads LoopedLM's parts
            mechanism = mechanism_stats(model, x, out.states)
        b = len(x)
        ce_sum = ce_sum + ce.double().cpu() * b
        sc_sum = sc_sum + mean_scale(out.states).double().cpu() * b
        n += b
    model.train(was_training)
    ce, sc = (ce_sum / n).tolist(), (sc_sum / n).tolist()
    return {"ce": ce, "ppl": [math.exp(c) for c in ce], "scale": sc,
            "ppl_K": math.exp(ce[-1]), "scale_K": sc[-1], "windows": n, "mechanism": mechanism}


@dataclass
class StepStats:
    """What one optimizer step measured, before the update (all detached)."""

    loss: torch.Tensor  # ()
    ce: torch.Tensor  # (K,) per-loop CE, (1,) with terminal supervision
    scales: torch.Tensor  # (K,) mean ‖H_k‖
    grad_norm: torch.Tensor  # () global gradient norm before clipping


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer,
               sched: torch.optim.lr_scheduler.LRScheduler, x: torch.Tensor, y: torch.Tensor,
               cfg: TrainConfig, step: int, ctx: dd.DistContext | None = None) -> StepStats:
    """One optimizer step of :func:`train` on the batch (x, y), ``step`` steps done before it:
    forward pass and per-loop CE under the precision's autocast, the loss, the NaN guard,
    backward, gradient averaging across processes, clipping to ``cfg.grad_clip``, AdamW and
    the scheduler. ``benchmarks/roofline.py`` times this very function."""
    with autocast(cfg, x.device):
        ce, out = model.loop_cross_entropy(x, y, last_only=cfg.supervision != "per_loop")
    loss = loss_of(ce, out.states, cfg.supervision, cfg.norm_penalty)
    scales = mean_scale(out.states)  # (K,)
    check_finite(step + 1, ce.detach(), scales, loss.detach(), cfg.lr)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if ctx is not None:
        dd.average_gradients(model.parameters(), ctx)
    gnorm = torch.nn.utils.clip_grad_norm_(
        model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
    if not torch.isfinite(gnorm):
        raise NonFiniteError(f"non-finite gradient norm at step {step + 1}, no loop: every "
                             f"loop's CE and state are finite (loss {loss.item():.4g}, ‖H_K‖ "
                             f"{scales[-1].item():.4g}), the backward pass overflowed; lower "
                             f"lr (now {cfg.lr:g}) or keep grad_clip > 0")
    opt.step()
    sched.step()
    return StepStats(loss.detach(), ce.detach(), scales, gnorm)


def _signalled(stopper: _StopOnSignals, ctx: dd.DistContext, device: torch.device) -> bool:
    """Whether a stop signal arrived, agreed across processes (torchrun forwards a signal to
    every worker, but not within the same step): every rank stops after the same step."""
    flag = stopper.signum is not None
    if ctx.world > 1:
        t = torch.tensor([float(flag)], device=device)
        flag = bool(dd.mean_across(t, ctx).item() > 0)
    return flag


def _read_metrics(path: Path, upto: int, finished: bool) -> list[str]:
    """The metrics lines a resume at step ``upto`` keeps: records up to that step, minus the
    final evaluation when the run had finished (it is recomputed and written again)."""
    if not path.is_file():
        return []
    keep = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut by SIGKILL: drop it
            continue
        step = rec.get("step", 0)
        if step < upto or (step == upto and not (finished and rec.get("kind") == "eval")):
            keep.append(line)
    return keep


def train(cfg: TrainConfig, out_dir: str | Path, *, progress: bool = True, resume: bool = True,
          max_steps: int | None = None, stop_on_signals: bool = True,
          run_info: dict[str, Any] | None = None) -> TrainResult:
    """Train ``cfg`` into ``out_dir`` (resuming from ``out_dir/checkpoint.pt`` if present).

    ``max_steps`` stops early after that many total steps without finishing the run (the
    checkpoint then resumes it); tests use it to interrupt a run at a known point.
    ``stop_on_signals``: SIGINT/SIGTERM checkpoint the current step and raise
    :class:`TrainingInterrupted` (module doc). ``run_info`` goes into the run card of
    ``final.json`` as it is (``blindspot train`` records its thread choice there).
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    device0 = "cuda" if (cfg.device != "cpu" and torch.cuda.is_available()) else "cpu"
    ctx = dd.from_env(device0)
    device = resolve_device(cfg, ctx)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    data = prepared_data(cfg)
    batches = WindowBatches(data.train, cfg.data.seq_len, cfg.data.stride, cfg.batch_size,
                            cfg.seed)
    if cfg.batch_size % ctx.world:
        raise ConfigError(f"batch_size={cfg.batch_size} is not divisible by {ctx.world} "
                          f"processes; choose a multiple")

    torch.manual_seed(cfg.seed)
    model = ckpt_io.build_model(cfg).to(device)
    dd.broadcast_parameters(model, ctx)
    opt, sched = optimizer(model, cfg, device)
    if cfg.compile:
        model.compile()  # the forward pass; parameter names (and checkpoints) stay as they are
    # dropout streams differ per rank (each rank sees other tokens); all share the init above
    torch.manual_seed(cfg.seed * 7919 + 1 + ctx.rank)

    step, elapsed = 0, 0.0
    ckpt_path, metrics_path = out / "checkpoint.pt", out / "metrics.jsonl"
    if resume and ckpt_path.is_file():
        state = ckpt_io.read(ckpt_path)
        old = ckpt_io.config_of(state, ckpt_path)
        if old != cfg:
            raise ConfigError(f"{out} holds a checkpoint of a different config ("
                              + "; ".join(ckpt_io.config_diff(old, cfg))
                              + "); use another output directory or delete it")
        if state.get("kind") != "resume" or state.get("world", 1) != ctx.world:
            raise ConfigError(f"{ckpt_path} cannot resume this run (kind={state.get('kind')}, "
                              f"world={state.get('world', 1)} vs {ctx.world} processes)")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        rng = state["rng"][ctx.rank]
        torch.set_rng_state(rng["cpu"])
        if device.type == "cuda" and rng.get("cuda") is not None:
            torch.cuda.set_rng_state(rng["cuda"], device)
        step, elapsed = int(state["step"]), float(state["elapsed_s"])
        if ctx.is_main:
            print(f"resuming from step {step} of {cfg.steps} ({ckpt_path})", file=sys.stderr)
    lines = _read_metrics(metrics_path, step, step >= cfg.steps) if step > 0 else []
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.yaml", to_yaml(cfg))
        atomic_write_text(metrics_path, "".join(line + "\n" for line in lines))
    log = open(metrics_path, "a") if ctx.is_main else None  # noqa: SIM115 (closed below)

    def emit(rec: dict[str, Any]) -> None:
        if log is not None:
            log.write(json.dumps(rec) + "\n")
            log.flush()

    def save_resume() -> None:
        rng = {"cpu": torch.get_rng_state(),
               "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
        rngs = dd.gather_objects(rng, ctx)
        if ctx.is_main:
            ckpt_io.save(ckpt_path, {
                "kind": "resume", "config": ckpt_io.to_dict(cfg), "step": step, "world": ctx.world,
                "elapsed_s": elapsed + time.perf_counter() - t_start,
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "rng": rngs,
                "tokenizer_key": data.tokenizer_key})
        dd.barrier(ctx)

    if step == 0:
        emit({"kind": "eval", "step": 0, **evaluate(model, data.val, cfg, device)})
    stop = cfg.steps if max_steps is None else min(cfg.steps, max_steps)
    bar = tqdm(total=cfg.steps, initial=step, disable=not (progress and ctx.is_main),
               desc=cfg.name, dynamic_ncols=True)
    model.train()
    with _StopOnSignals(stop_on_signals) as stopper:
        stopped = False
        try:
            while step < stop:
                if _signalled(stopper, ctx, device):
                    stopped = True
                    break
                x, y = batches.get(step, ctx.rank, ctx.world)
                stats = train_step(model, opt, sched, x.to(device), y.to(device), cfg, step,
                                   ctx)
                step += 1
                if step % cfg.log_every == 0 or step == cfg.steps:
                    m = dd.mean_across(torch.cat([stats.loss.reshape(1), stats.ce,
                                                  stats.scales]), ctx).tolist()
                    K = len(stats.scales)
                    emit({"kind": "train", "step": step, "lr": sched.get_last_lr()[0],
                          "loss": m[0], "ce": m[1:-K], "scale": m[-K:],
                          "grad_norm": stats.grad_norm.item()})
                    bar.set_postfix(loss=f"{m[0]:.3f}", H_K=f"{m[-1]:.1f}")
                bar.update(1)
                if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
                    emit({"kind": "eval", "step": step,
                          **evaluate(model, data.val, cfg, device)})
                if cfg.ckpt_every and step % cfg.ckpt_every == 0 and step < cfg.steps:
                    save_resume()
        finally:
            bar.close()
            if log is not None:
                log.close()

        # a signal during the last step lets the run finish: there is nothing to resume
        stopped = stopped or _signalled(stopper, ctx, device)
        interrupted = stopped and step < cfg.steps
        final: dict[str, Any] = {}
        if step >= cfg.steps:
            final = {"kind": "eval", "step": step, **evaluate(model, data.val, cfg, device)}
            if ctx.is_main:
                with open(metrics_path, "a") as f:
                    f.write(json.dumps(final) + "\n")
        save_resume()
        if interrupted:
            raise TrainingInterrupted(step, stopper.signum or signal.SIGTERM, ckpt_path)
    wall = elapsed + time.perf_counter() - t_start
    if final and ctx.is_main:
        atomic_write_json(out / "final.json", {
            **final, "tokenizer": data.tokenizer_key, "processes": ctx.world,
            "run_card": run_card(config=cfg, seed=cfg.seed, wall_time_s=wall,
                                 device=str(device), speed=speed_settings(cfg, device),
                                 **(run_info or {}))})
    return TrainResult(out, cfg, model, final, wall)

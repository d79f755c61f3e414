"""Fix it in YOUR looped model: watch a training run for the blind spot, then add a control.

The model is the Huginn-style looped transformer of ``diagnose_foreign_model.py`` (plain torch
layers, unknown to blindspot; loaded from that file, since examples/ is not a package). It
is trained with per-loop cross-entropy through its LayerNorm coda, in a plain torch loop, five
ways: with no control, a :class:`~blindspot.control.ScaleMonitor` watching, warns that the
blind spot is active (‖H_K‖ grows while no loss sees it); with a norm penalty, a raw-readout
auxiliary loss or an inter-loop norm the monitor stays silent and the growth stops. The
uncontrolled model is also run with the radial clamp at inference. Each is evaluated on
held-out text: final ‖H_K‖, final-loop perplexity and perplexity at every exit depth.

    python examples/control_foreign_model.py [--steps 400] [--out runs/control-cpu]

writes ``OUT/controls.json`` (the table, the monitor's records of every run and a run card;
atomically) and, with ``--log-dir DIR``, the monitor's JSONL log of each run. The default
``OUT`` is ``runs/control-cpu`` (git-ignored); the committed table the book shows was written
with ``--out results/control-cpu``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from blindspot.control import (
    BlindSpotWarning,
    InterLoopNorm,
    NormPenalty,
    RawReadoutLoss,
    ScaleMonitor,
    StateTap,
    radial_clamp,
)
from blindspot.diagnostics import LoopAdapter, record
from blindspot.diagnostics.early_exit import token_ce
from blindspot.provenance import atomic_write_json, run_card

TRAINED = ("none", "norm_penalty", "raw_readout", "inter_loop_norm")  # one training run each
CLAMPS = ("remove_radial", "freeze_scale")  # at inference, on the uncontrolled model
LR = 1e-2  # high enough that ‖H_K‖ grows within a few hundred CPU steps without a control
PENALTY = 0.01  # λ, the paper's norm-penalty weight
AUX = 0.1  # μ, the raw-readout auxiliary loss weight
SEQ, BATCH = 32, 8  # the model takes up to 64 positions; 32 keeps the example at CPU minutes
EVAL_SEED, EVAL_BATCHES = 1000, 4  # held-out text: another seed of the generated corpus


def foreign_model_module():
    """``diagnose_foreign_model.py``, imported from its file beside this one."""
    path = Path(__file__).resolve().with_name("diagnose_foreign_model.py")
    spec = importlib.util.spec_from_file_location("diagnose_foreign_model", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def adapter_of(model) -> LoopAdapter:
    return LoopAdapter.from_modules(model, prelude="prelude", body="core", head="coda",
                                    injection="concat", num_loops=model.loops)


def build(condition: str, seed: int):
    """(model, adapter, loss controls) of one trained condition."""
    torch.manual_seed(seed)
    model = foreign_model_module().MyLoopedModel()
    d = model.coda[0].normalized_shape[0]
    if condition == "inter_loop_norm":  # the user asks for a new forward: wrap the loop body
        model.core = InterLoopNorm(model.core, d, injection="concat")
    controls = {"norm_penalty": [NormPenalty(PENALTY)],
                "raw_readout": [RawReadoutLoss(model.coda[1], AUX)]}.get(condition, [])
    return model, adapter_of(model), controls


def train(condition: str, steps: int, seed: int, every: int, log_dir: Path | None):
    """Train one condition in a plain torch loop with the monitor; returns (model, adapter,
    monitor)."""
    model, adapter, controls = build(condition, seed)
    log = None if log_dir is None else log_dir / f"{condition}.jsonl"
    monitor = ScaleMonitor(adapter, every=every, path=log, controls=controls)
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    data = foreign_model_module().batches(seq=SEQ, batch=BATCH, seed=seed)
    for step in range(steps + 1):
        tokens = next(data)
        x, y = tokens[:, :-1], tokens[:, 1:]
        with StateTap(model.core) as tap:  # the loop states of the model's own forward
            logits = model(x)
        loss = sum(F.cross_entropy(z.flatten(0, 1), y.flatten()) for z in logits) / len(logits)
        for control in controls:
            loss = loss + control(tap.states, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        monitor.observe(step, x, y)
    return model, adapter, monitor


def evaluate(adapter: LoopAdapter, clamp: str | None = None) -> dict:
    """Held-out ‖H_K‖ (mean and p99 over tokens) and perplexity at every exit depth."""
    data = foreign_model_module().batches(seq=SEQ, batch=BATCH, seed=EVAL_SEED)
    model = adapter.module
    model.eval()
    ce, scales = [], []
    with torch.no_grad():
        for _ in range(EVAL_BATCHES):
            tokens = next(data)
            x, y = tokens[:, :-1], tokens[:, 1:]
            trace = record(adapter, x) if clamp is None else radial_clamp(adapter, x, clamp)
            ce.append(token_ce(trace.logits, y))  # (K, N) per exit, float64
            scales.append(trace.states[-1].double().norm(dim=-1).flatten())
    ppl = torch.cat(ce, dim=1).mean(dim=1).exp().tolist()
    s = torch.cat(scales)
    return {"scale_K": s.mean().item(), "scale_K_p99": torch.quantile(s, 0.99).item(),
            "ppl": ppl, "ppl_final": ppl[-1]}


def parser() -> argparse.ArgumentParser:
    """The command line; its defaults write under runs/ only."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=400, help="optimizer steps per trained run")
    p.add_argument("--every", type=int, default=25, help="monitor interval (steps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/control-cpu",
                   help="folder for controls.json (default runs/control-cpu)")
    p.add_argument("--log-dir", default=None, help="also write each run's monitor JSONL here")
    # a model this small gains nothing from more threads, and on a shared CPU they wait on
    # each other; one thread also makes the run the same bit for bit on every machine
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    return p


def main(argv=None) -> dict:
    args = parser().parse_args(argv)
    log_dir = None if args.log_dir is None else Path(args.log_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(args, log_dir)
    finally:
        torch.set_num_threads(threads)


def run(args, log_dir: Path | None) -> dict:
    """Train, evaluate and write the table (see the module docstring)."""
    t0 = time.perf_counter()
    rows, monitors = [], {}
    for condition in TRAINED:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BlindSpotWarning)
            model, adapter, monitor = train(condition, args.steps, args.seed, args.every,
                                            log_dir)
        fired = [w for w in caught if issubclass(w.category, BlindSpotWarning)]
        for w in caught:
            if w not in fired:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        monitors[condition] = monitor.records
        rows.append({"control": condition, "at": "training", "warning_step": monitor.fired_at,
                     "warnings": len(fired), **evaluate(adapter)})
        print(f"{condition:>16}: ‖H_K‖ {rows[-1]['scale_K']:9.4g}   final-loop ppl "
              f"{rows[-1]['ppl_final']:.4g}   warning "
              + (f"at step {monitor.fired_at}" if fired else "none"), flush=True)
        if condition == "none":
            for clamp in CLAMPS:
                rows.append({"control": clamp, "at": "inference", "warning_step": None,
                             "warnings": 0, **evaluate(adapter, clamp)})
                print(f"{clamp:>16}: ‖H_K‖ {rows[-1]['scale_K']:9.4g}   final-loop ppl "
                      f"{rows[-1]['ppl_final']:.4g}   (uncontrolled model, clamped at "
                      "inference)", flush=True)
    wall = time.perf_counter() - t0
    config = {"model": "MyLoopedModel (examples/diagnose_foreign_model.py)", "steps": args.steps,
              "every": args.every, "threads": args.threads, "lr": LR, "optimizer": "AdamW",
              "batch": BATCH, "seq": SEQ,
              "norm_penalty": PENALTY, "raw_readout_weight": AUX,
              "eval": {"seed": EVAL_SEED, "batches": EVAL_BATCHES},
              "supervision": "per-loop cross-entropy"}
    result = {"rows": rows, "monitor": monitors,
              "run_card": run_card(config=config, seed=args.seed, wall_time_s=wall)}
    out = Path(args.out) / "controls.json"
    atomic_write_json(out, result)
    assert all(math.isfinite(r["ppl_final"]) for r in rows)
    print(f"wrote {out} ({wall:.0f} s)")
    return result


if __name__ == "__main__":
    main()

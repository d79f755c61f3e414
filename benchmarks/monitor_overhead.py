"""Cost of the ScaleMonitor in a training loop, at its default interval.

Target: at the default interval (``blindspot.control.monitor.EVERY`` steps between
measurements), watching a run costs at most 5 % of its training time. Timed side by side,
interleaved, after a warm-up, on the same batch:

- a training step, as the trainer does it: forward with a readout after every loop (under the
  preset's bf16 autocast), per-loop cross-entropy, backward, gradient clipping, AdamW;
- ``observe`` at a measuring step (one no-grad pass through the adapter and the per-loop
  readout gradients, autocast off) and at a skipping step (an integer test).

The overhead is (measuring + (EVERY − 1) · skipping) / (EVERY · step): the monitor's time per
step, as a fraction of the step. Three estimates, as in ``benchmarks/diagnostics_cost.py``:
the fastest repeats (wall; the least disturbed by other jobs, on which the target is judged),
and the medians of process CPU time and of wall time. Two models: the CPU preset's
``LoopedLM`` and the Huginn-style model of ``examples/diagnose_foreign_model.py``. The result
(with a run card) goes to ``results/benchmarks/monitor_overhead.json``.

    python benchmarks/monitor_overhead.py [--repeats 15] [--threads 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from blindspot.control import ScaleMonitor
from blindspot.control.monitor import EVERY
from blindspot.diagnostics import LoopAdapter, adapter_for
from blindspot.provenance import atomic_write_json, run_card

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.05


def looped_lm(name: str):
    """(train_step, adapter, tokens, label) of the preset ``name``'s LoopedLM, trained as in
    ``benchmarks/diagnostics_cost.py`` but under the preset's bf16 autocast, as the trainer
    does (a faster step, so a larger share for the monitor)."""
    cost = _load("diagnostics_cost", ROOT / "benchmarks" / "diagnostics_cost.py")
    model, step, tokens = cost.preset_training(name, autocast=True)
    cfg = model.cfg
    return step, adapter_for(model), tokens, (f"{name} (batch {tokens.shape[0]} x "
                                              f"{tokens.shape[1] - 1}, d {cfg.d_model}, K "
                                              f"{cfg.num_loops}, bf16 autocast)")


def _load(name: str, path: Path):
    """A module from a file (benchmarks/ and examples/ are not packages)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def foreign_model(batch: int = 8, seq: int = 64):
    """The same for the example's Huginn-style model (float32, per-loop CE, AdamW)."""
    mod = _load("diagnose_foreign_model", ROOT / "examples" / "diagnose_foreign_model.py")
    torch.manual_seed(0)
    model = mod.MyLoopedModel()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = next(mod.batches(seq=seq, batch=batch, seed=0))
    x, y = tokens[:, :-1], tokens[:, 1:]

    def step():
        logits = model(x)
        loss = sum(F.cross_entropy(z.flatten(0, 1), y.flatten()) for z in logits) / len(logits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    adapter = LoopAdapter.from_modules(model, prelude="prelude", body="core", head="coda",
                                       injection="concat", num_loops=model.loops)
    return step, adapter, tokens, f"MyLoopedModel (batch {batch} x {seq}, d 64, K 4, float32)"


def timed(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def measure(step, adapter, tokens, repeats: int) -> dict:
    """Interleaved timings of a step, a measuring observe and a skipping observe."""
    monitor = ScaleMonitor(adapter)
    x, y = tokens[:, :-1], tokens[:, 1:]
    calls = {"step": step, "measuring observe": lambda: monitor.observe(0, x, y),
             "skipping observe": lambda: monitor.observe(1, x, y)}
    for fn in calls.values():  # warm-up: first-call allocations and kernel selection
        fn()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            times[name].append(timed(fn))
    est = {"fastest wall": lambda ts: min(t[0] for t in ts),
           "median CPU": lambda ts: statistics.median(t[1] for t in ts),
           "median wall": lambda ts: statistics.median(t[0] for t in ts)}
    seconds = {e: {name: f(ts) for name, ts in times.items()} for e, f in est.items()}
    overhead = {e: (s["measuring observe"] + (EVERY - 1) * s["skipping observe"])
                / (EVERY * s["step"]) for e, s in seconds.items()}
    return {"seconds": seconds, "overhead": overhead}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu-per_loop-norm")
    p.add_argument("--repeats", type=int, default=15)
    # one thread: on a shared 2-core machine two threads of these small models wait on each
    # other, which would time the machine's load rather than the monitor
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=str(ROOT / "results" / "benchmarks" /
                                          "monitor_overhead.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    results = {}
    for build in (lambda: looped_lm(args.preset), foreign_model):
        step, adapter, tokens, label = build()
        results[label] = measure(step, adapter, tokens, args.repeats)
    print(f"ScaleMonitor every {EVERY} steps, {args.threads} thread(s), {args.repeats} repeats "
          f"(target: overhead of the fastest repeats <= {TARGET:.0%})")
    for label, r in results.items():
        print(f"\n{label}")
        print(f"{'':<22}" + "".join(f"{e:>15}" for e in r["seconds"]))
        for name in r["seconds"]["fastest wall"]:
            print(f"{name:<22}" + "".join(f"{r['seconds'][e][name] * 1e3:12.2f} ms"
                                          for e in r["seconds"]))
        print(f"{'overhead per step':<22}" + "".join(f"{r['overhead'][e]:15.2%}"
                                                     for e in r["overhead"]))
    out = {"every": EVERY, "target": TARGET, "results": results,
           "run_card": run_card(config={k: v for k, v in vars(args).items() if k != "json"},
                                seed=0,
                                wall_time_s=time.perf_counter() - t0)}
    if args.json:
        atomic_write_json(args.json, out)
        print(f"\nwrote {args.json}")
    return out


if __name__ == "__main__":
    main()

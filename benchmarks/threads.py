"""A training step beside a busy process: torch's default thread count against the count
``blindspot train`` chooses (:func:`blindspot.train.threads.choose_threads`).

torch runs one intra-op thread per CPU. When another process keeps a CPU busy, the threads of
each matrix product wait for the one that shares a core with it, and a step can take several
times as long as with fewer threads. This benchmark starts one busy process (a Python loop
spinning on one CPU, a child of this process, stopped at the end), then times the trainer's
own step (:func:`blindspot.train.trainer.train_step`: forward, per-loop CE, backward,
clipping, AdamW) of a preset's model at each thread count from 1 to the CPUs available,
interleaved (every count once per round, ``--repeats`` rounds) so that all counts see the
same machine. It reports the median seconds per step at each count and each count's time
relative to the chosen count's, measured side by side in one run: ratios, not absolute
times, are what carries over to another machine, and even they depend on how busy the machine
is (the run card records the CPUs and the 1-minute load before and after).

The chosen count comes from the load read before the busy process starts, as ``blindspot
train`` reads it at its start; the busy process is added to it (+1), since the 1-minute load
average takes a minute to show a new process.

    python benchmarks/threads.py [--preset cpu-per_loop-norm] [--steps 2] [--repeats 3]
                                 [--json results/benchmarks/threads.json]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch

from blindspot.provenance import atomic_write_json, run_card
from blindspot.train import checkpoint as ckpt_io
from blindspot.train.config import load_config
from blindspot.train.threads import available_cpus, load_1min, threads_for
from blindspot.train.trainer import optimizer, train_step

BUSY = "while True:\n    pass\n"
"""The busy process: one CPU spinning in Python."""


def step_timer(preset: str, seed: int = 0):
    """``run(n)``: seconds for ``n`` training steps of ``preset``'s model on a fixed random
    batch (the time of a step does not depend on the tokens), and a label."""
    cfg = load_config(preset)
    torch.manual_seed(seed)
    model = ckpt_io.build_model(cfg)
    opt, sched = optimizer(model, cfg, torch.device("cpu"))
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, cfg.model.vocab_size, (cfg.batch_size, cfg.data.seq_len + 1),
                           generator=g)
    x, y = tokens[:, :-1], tokens[:, 1:]
    done = [0]

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            train_step(model, opt, sched, x, y, cfg, done[0])
            done[0] += 1
        return time.perf_counter() - t0

    m = cfg.model
    return run, (f"{preset}: batch {cfg.batch_size} x {cfg.data.seq_len}, d {m.d_model}, "
                 f"K {m.num_loops}, {cfg.precision}")


def measure(preset: str, steps: int, repeats: int, counts: list[int]
            ) -> tuple[dict[int, list[float]], str]:
    """Seconds per step at each thread count, ``repeats`` interleaved rounds (after one
    warm-up step per count), and the model's label."""
    run, label = step_timer(preset)
    before = torch.get_num_threads()
    times: dict[int, list[float]] = {n: [] for n in counts}
    try:
        for n in counts:  # warm-up: allocator, autocast caches, thread pool start
            torch.set_num_threads(n)
            run(1)
        for _ in range(repeats):
            for n in counts:
                torch.set_num_threads(n)
                times[n].append(run(steps) / steps)
    finally:
        torch.set_num_threads(before)
    return times, label


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu-per_loop-norm", help="model and batch to step")
    p.add_argument("--steps", type=int, default=2, help="steps per timing")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    p.add_argument("--no-busy", action="store_true", help="do not start the busy process")
    p.add_argument("--json", help="write the result here (with a run card)")
    args = p.parse_args(argv)

    cpus, load_before = available_cpus(), load_1min()
    busy = 0 if args.no_busy else 1
    chosen = threads_for(cpus, None if load_before is None else load_before + busy)
    counts = list(range(1, cpus + 1))
    t0 = time.perf_counter()
    spinner = None if args.no_busy else subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        times, label = measure(args.preset, args.steps, args.repeats, counts)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    median = {n: statistics.median(ts) for n, ts in times.items()}
    result = {
        "model": label,
        "busy_processes": busy,
        "cpus": cpus,
        "load_1min_before": load_before,
        "load_1min_after": load_1min(),
        "torch_default_threads": cpus,
        "chosen_threads": chosen,
        "seconds_per_step": {str(n): ts for n, ts in times.items()},
        "median_seconds_per_step": {str(n): median[n] for n in counts},
        "relative_to_chosen": {str(n): median[n] / median[chosen] for n in counts},
        "default_over_chosen": median[cpus] / median[chosen],
    }
    result["run_card"] = run_card(
        config={"preset": args.preset, "steps": args.steps, "repeats": args.repeats,
                "busy": not args.no_busy}, seed=0, wall_time_s=time.perf_counter() - t0,
        note="a shared machine: other jobs ran beside the busy process (see the loads)")
    for n in counts:
        tag = " (chosen)" if n == chosen else ""
        tag += " (torch's default)" if n == cpus else ""
        print(f"{n} thread(s){tag}: {median[n]:.3f} s/step, {median[n] / median[chosen]:.2f}x "
              f"the chosen count's")
    if args.json:
        atomic_write_json(args.json, result)
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()

"""Cost of one full diagnostic pass against one training step of the same model.

Target: a full ``diagnose`` pass (every table, default options) on one batch costs
at most 2x one training step on the same batch: the trainer's own step
(:func:`blindspot.train.trainer.train_step`: forward with a readout after every loop under
the preset's precision, per-loop CE, backward, gradient clipping, AdamW). Both are timed
side by side, interleaved, after a warm-up. On a shared machine other jobs inflate some repeats of
either side, so three ratios are printed: of the fastest repeats (wall time; the repeats
least disturbed by other jobs, the usual estimator of intrinsic cost, on which the target is
judged), and of the medians of process CPU time and of wall time (which swing with the
machine's load).

    python benchmarks/diagnostics_cost.py [--preset cpu-per_loop-norm] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from blindspot.diagnostics import adapter_for
from blindspot.diagnostics.run import diagnose
from blindspot.train.checkpoint import build_model
from blindspot.train.config import preset
from blindspot.train.trainer import optimizer
from blindspot.train.trainer import train_step as trainer_step


def preset_training(name: str, *, autocast: bool = False):
    """(model, train_step, tokens) of the preset ``name``'s LoopedLM on a random batch: the
    step is the trainer's own (a readout after every loop, the preset's objective, backward,
    gradient clipping, AdamW), under the preset's precision if ``autocast``, else float32."""
    cfg = preset(name) if autocast else preset(name, precision="fp32")
    torch.manual_seed(0)
    model = build_model(cfg)
    opt, sched = optimizer(model, cfg, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, cfg.model.vocab_size, (cfg.batch_size, cfg.data.seq_len + 1),
                           generator=g)
    x, y = tokens[:, :-1], tokens[:, 1:]
    steps = iter(range(10**9))

    def train_step():
        model.train()
        trainer_step(model, opt, sched, x, y, cfg, next(steps))

    return model, train_step, tokens


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu-per_loop-norm")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = preset(args.preset)
    model, train_step, tokens = preset_training(args.preset)

    def diagnostic_pass():
        diagnose(adapter_for(model), tokens)

    def timed(fn):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - w0, time.process_time() - c0

    train_step(), diagnostic_pass()  # warm-up: first-call allocations and kernel selection
    train_t, diag_t = [], []
    for _ in range(args.repeats):
        train_t.append(timed(train_step))
        diag_t.append(timed(diagnostic_pass))
    rows = {}
    for name, ts in (("train step", train_t), ("diagnostic pass", diag_t)):
        rows[name] = (min(t[0] for t in ts), statistics.median(t[1] for t in ts),
                      statistics.median(t[0] for t in ts))
    (tr, dg) = rows["train step"], rows["diagnostic pass"]
    ratios = [d / t for d, t in zip(dg, tr, strict=True)]
    print(f"preset {args.preset}: batch {cfg.batch_size} x {cfg.data.seq_len} tokens, "
          f"K = {cfg.model.num_loops}, {args.threads} threads, {args.repeats} repeats")
    print(f"{'':<26}{'fastest wall':>14}{'median CPU':>14}{'median wall':>14}")
    for name, r in rows.items():
        print(f"{name:<26}" + "".join(f"{x * 1e3:11.1f} ms" for x in r))
    print(f"{'ratio diagnostic/train':<26}" + "".join(f"{x:14.2f}" for x in ratios)
          + "   (target: fastest <= 2)")
    return ratios[0]


if __name__ == "__main__":
    main()

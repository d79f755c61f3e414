"""Cost of one full diagnostic pass against one training step of the same model.

Target (issue 5): a full ``diagnose`` pass (every table, default options) on one batch costs
at most 2x one training step (forward with a readout after every loop, per-loop CE,
backward, gradient clipping, AdamW) on the same batch. Both are timed side by side,
interleaved, after a warm-up, and the ratio of medians is printed: absolute times swing with
the machine's load, the ratio much less.

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
from blindspot.train.losses import objective
from blindspot.train.trainer import param_groups


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu-per_loop-norm")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = preset(args.preset)
    torch.manual_seed(0)
    model = build_model(cfg)
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                            betas=(cfg.beta1, cfg.beta2))
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, cfg.model.vocab_size, (cfg.batch_size, cfg.data.seq_len + 1),
                           generator=g)
    x, y = tokens[:, :-1], tokens[:, 1:]

    def train_step():
        model.train()
        out = model(x, readout="all")
        loss, _ = objective(out.logits, out.states, y, cfg.supervision, cfg.norm_penalty)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()

    def diagnostic_pass():
        diagnose(adapter_for(model), tokens)

    def timed(fn):
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    train_step(), diagnostic_pass()  # warm-up: first-call allocations and kernel selection
    train_t, diag_t = [], []
    for _ in range(args.repeats):
        train_t.append(timed(train_step))
        diag_t.append(timed(diagnostic_pass))
    tr, dg = statistics.median(train_t), statistics.median(diag_t)
    ratio = dg / tr
    print(f"preset {args.preset}: batch {cfg.batch_size} x {cfg.data.seq_len} tokens, "
          f"K = {cfg.model.num_loops}, {args.threads} threads, {args.repeats} repeats")
    print(f"train step (median)       {tr * 1e3:8.1f} ms")
    print(f"diagnostic pass (median)  {dg * 1e3:8.1f} ms")
    print(f"ratio diagnostic/train    {ratio:8.2f}  (target <= 2)")
    return ratio


if __name__ == "__main__":
    main()

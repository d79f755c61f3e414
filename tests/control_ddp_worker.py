"""One process of ``tests/test_control_distributed.py`` (launched by torchrun, gloo on CPU).

``train OUT``: the Huginn-style example model wrapped in ``DistributedDataParallel`` trains 7
steps on this process's half of a fixed global batch, under bf16 autocast, with gradient
accumulation over 2 micro-batches (``no_sync`` on the first), a state tap and a norm penalty,
twice: watched by a ``ScaleMonitor`` (every 2 steps, JSONL in OUT) and not. Writes
``OUT/rank<r>.pt``: both runs' parameters, the monitor's records and warning step, and the
last global batch.

``fail OUT``: rank 1 passes targets of the wrong shape to the monitor at step 0; every process
must stop with an error (none may wait forever in a collective).
"""

import runpy
import sys
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from blindspot.control import BlindSpotWarning, NormPenalty, ScaleMonitor, StateTap
from blindspot.diagnostics import LoopAdapter

STEPS, EVERY, GLOBAL_BATCH, SEQ, MICRO = 7, 2, 8, 16, 2
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "diagnose_foreign_model.py"


def foreign() -> dict:
    """The globals of the example (its model class ``MyLoopedModel`` and ``batches``)."""
    return runpy.run_path(str(EXAMPLE))


def global_batches():
    """The same (GLOBAL_BATCH, SEQ+1) batches on every process."""
    return foreign()["batches"](seq=SEQ, batch=GLOBAL_BATCH, seed=0)


def train(out: Path, rank: int, world: int, watched: bool) -> dict:
    torch.manual_seed(0)
    model = foreign()["MyLoopedModel"](d=32, heads=2, seq=SEQ)
    ddp = DDP(model)
    adapter = LoopAdapter.from_modules(model, prelude="prelude", body="core", head="coda",
                                       injection="concat", num_loops=model.loops)
    penalty = NormPenalty(0.01)
    monitor = ScaleMonitor(adapter, every=EVERY, path=out / "monitor.jsonl" if watched else None,
                           controls=[penalty])
    opt = torch.optim.AdamW(ddp.parameters(), lr=1e-2)
    data = global_batches()
    per_rank = GLOBAL_BATCH // world
    for step in range(STEPS):
        tokens = next(data)
        mine = tokens[rank * per_rank:(rank + 1) * per_rank]  # (B/world, T+1)
        micro = mine.chunk(MICRO)
        for i, mb in enumerate(micro):
            x, y = mb[:, :-1], mb[:, 1:]
            with ddp.no_sync() if i < len(micro) - 1 else nullcontext():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    with StateTap(model.core) as tap:
                        logits = ddp(x)
                    ce = sum(F.cross_entropy(z.float().flatten(0, 1), y.flatten())
                             for z in logits) / len(logits)
                    loss = (ce + penalty(tap.states)) / len(micro)
                loss.backward()
        opt.step()
        opt.zero_grad()
        if watched:
            monitor.observe(step, mine[:, :-1], mine[:, 1:])
    return {"params": [p.detach().clone() for p in model.parameters()],
            "records": monitor.records, "fired_at": monitor.fired_at, "last_batch": tokens,
            "state": model.state_dict()}


def main(mode: str, out: Path) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if mode == "fail":
        torch.manual_seed(0)
        model = foreign()["MyLoopedModel"](d=32, heads=2, seq=SEQ)
        adapter = LoopAdapter.from_modules(model, prelude="prelude", body="core",
                                           head="coda", injection="concat",
                                           num_loops=model.loops)
        tokens = next(global_batches())
        y = tokens[:, 1:] if rank == 0 else tokens[:, 1:-1]  # rank 1: wrong shape
        try:
            ScaleMonitor(adapter, every=1).observe(0, tokens[:, :-1], y)
        except Exception as err:
            print(f"rank {rank}: {type(err).__name__}: {err}", flush=True)
            raise
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BlindSpotWarning)  # the verdict is checked from records
        watched = train(out, rank, world, watched=True)
        plain = train(out, rank, world, watched=False)
    torch.save({"watched": watched, "plain": plain["params"]}, out / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))

"""Multi-process data parallelism with ``torch.distributed`` (launched by ``torchrun``).

Each of ``world`` processes takes an equal slice of the global batch
(:class:`blindspot.train.data.WindowBatches`), computes the gradient of its *mean* loss, and
the gradients are averaged with an all-reduce. With equal slices, the average of the slice
means is the mean over the global batch, so ``world`` processes follow one process with the
same global batch up to floating-point summation order (``tests/test_distributed.py`` runs
2 CPU processes with gloo against 1). Backend: ``nccl`` on GPU, ``gloo`` on CPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def from_env(device_type: str) -> DistContext:
    """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK, ...);
    a plain single-process run returns the trivial context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(),
                       int(os.environ.get("LOCAL_RANK", "0")))


def broadcast_parameters(module: torch.nn.Module, ctx: DistContext) -> None:
    """Make every process start from rank 0's parameters and buffers."""
    if ctx.active:
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients(params: Iterable[torch.nn.Parameter], ctx: DistContext) -> None:
    """g <- (1/world) Σ_ranks g, for every parameter with a gradient."""
    if not ctx.active:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(ctx.world)


def mean_across(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """The mean of a metric tensor over processes (a copy; the input is unchanged)."""
    if not ctx.active:
        return t
    t = t.detach().clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / ctx.world


def gather_objects(obj, ctx: DistContext) -> list:
    """Every process's ``obj``, indexed by rank (used for per-rank RNG states)."""
    if not ctx.active:
        return [obj]
    out = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        dist.barrier()


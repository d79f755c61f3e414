"""The scale monitor under DistributedDataParallel: 2 CPU processes (torchrun, gloo), with bf16
autocast and gradient accumulation (worker: ``tests/control_ddp_worker.py``)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from blindspot.control import NormPenalty, ScaleMonitor

WORKER = Path(__file__).with_name("control_ddp_worker.py")
ROOT = Path(__file__).resolve().parents[1]


def torchrun(mode: str, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(WORKER), mode, str(out)]
    # a hang in a collective would end here, not in CI's global timeout
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_two_processes_reduce_to_one_record_and_never_change_training(small_foreign, tol,
                                                                      tmp_path):
    proc = torchrun("train", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]

    # every process holds the same records (reduced over processes), rank 0 alone wrote them
    r0, r1 = (r["watched"]["records"] for r in ranks)
    assert r0 == r1 and [r["step"] for r in r0] == [0, 2, 4, 6]
    lines = (tmp_path / "monitor.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == r0
    assert ranks[0]["watched"]["fired_at"] == ranks[1]["watched"]["fired_at"]

    # watching changed nothing (bit for bit), and DDP kept the two processes in step
    for r in ranks:
        for a, b in zip(r["watched"]["params"], r["plain"], strict=True):
            assert torch.equal(a, b)
    for a, b in zip(ranks[0]["plain"], ranks[1]["plain"], strict=True):
        assert torch.equal(a, b)

    # the reduced record equals one process measuring the whole global batch (the worker's
    # model is the small_foreign one: d = 32, 2 heads, 16 positions)
    model, adapter = small_foreign()
    model.load_state_dict(ranks[0]["watched"]["state"])
    tokens = ranks[0]["watched"]["last_batch"]
    one = ScaleMonitor(adapter, controls=[NormPenalty(0.01)]).measure(tokens[:, :-1],
                                                                      tokens[:, 1:])
    two = r0[-1]
    assert two["tokens"] == one["tokens"] == tokens[:, 1:].numel()
    for key in ("scale_mean", "scale_p99", "radial_share"):
        # float32 states; two processes sum in another order: the float32 tolerance is far
        # above that and far below what a missing or doubled slice would change
        assert two[key] == pytest.approx(one[key], rel=tol.float32), key


@pytest.mark.slow
def test_a_failing_process_stops_every_process(tmp_path):
    proc = torchrun("fail", tmp_path)
    assert proc.returncode != 0
    assert "rank 1: ValueError: ScaleMonitor: targets must be the (B, T)" in proc.stdout
    assert "rank 0: RuntimeError: ScaleMonitor: another process failed" in proc.stdout

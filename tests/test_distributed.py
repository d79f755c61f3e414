"""Data parallel training: 2 CPU processes (torchrun, gloo) follow 1 process with the same
global batch."""

import json
import os
import subprocess
import sys

import pytest
import torch

from blindspot.train import checkpoint as ckpt_io
from blindspot.train import trainer as T
from blindspot.train.config import preset

# float32: this test checks gradient averaging up to float32 summation order; under the
# preset's bf16 autocast, per-slice GEMMs round differently and the two runs drift apart by
# bf16's 4e-3 relative precision, which would hide a real averaging error.
SETS = ["steps=8", "log_every=1", "batch_size=8", "norm_penalty=0.01", "precision=fp32"]


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BLINDSPOT_CACHE", str(cache))
    cfg = preset("tiny-per_loop-norm", steps=8, log_every=1, batch_size=8, norm_penalty=0.01,
                 precision="fp32")
    T.train(cfg, tmp_path / "one", progress=False)
    env = {**os.environ, "BLINDSPOT_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "blindspot.train.cli", "tiny-per_loop-norm", "--out", str(tmp_path / "two"),
           "--no-progress", *[a for s in SETS for a in ("--set", s)]]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    one, two = (ckpt_io.read(tmp_path / d / "checkpoint.pt") for d in ("one", "two"))
    assert two["world"] == 2 and len(two["rng"]) == 2
    for name, p in one["model"].items():
        # same global batch, gradients averaged over 2 slices: equal up to float32 summation
        # order, which Adam's normalisation can amplify to ~1e-5 relative over 8 steps
        torch.testing.assert_close(two["model"][name], p, rtol=1e-4, atol=1e-5, msg=name)
    rec = [[json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
           for d in ("one", "two")]
    for a, b in zip(*rec, strict=True):
        assert a["step"] == b["step"] and a["kind"] == b["kind"]
        assert a["ce"] == pytest.approx(b["ce"], rel=1e-4)  # same tolerance as the weights
        assert a["scale"] == pytest.approx(b["scale"], rel=1e-4)


def test_batch_not_divisible_by_processes_is_refused(monkeypatch, tmp_path):
    from blindspot.train import distributed as dd

    monkeypatch.setenv("BLINDSPOT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(dd, "from_env", lambda device_type: dd.DistContext(0, 3, 0))
    with pytest.raises(T.ConfigError, match="batch_size=8 is not divisible by 3 processes"):
        T.train(preset("tiny-per_loop-norm", steps=1), tmp_path / "x", progress=False)

"""The speed switches: what a run computes with on each device (decided before any tensor
exists, so the GPU path's choices are checked here on a CPU), and that the compiled and fused
paths train, checkpoint and resume on a CPU."""

import json

import pytest
import torch

from blindspot.experiments import table1
from blindspot.train.checkpoint import build_model
from blindspot.train.config import load_config
from blindspot.train.trainer import optimizer, speed_settings, train

CUDA, CPU = torch.device("cuda"), torch.device("cpu")


def test_the_gpu_tier_runs_fused_sdpa_without_compilation():
    """Every run of the GPU tier (the paper-scale presets, dropout 0.1): SDPA's fused kernels
    with dropout in training and evaluation, AdamW fused, no compilation (it did not pay on the
    CPU side, and nothing was measured on a GPU), bf16."""
    runs = table1.plan_runs("gpu")
    assert runs
    for _, _, cfg in runs:
        assert cfg.model.dropout > 0
        assert speed_settings(cfg, CUDA) == {
            "device": "cuda", "attention_kernel_train": "sdpa", "attention_kernel_eval": "sdpa",
            "fused_adamw": True, "compile": False, "precision": "bf16"}
    # the switches reach the GPU path unchanged when set
    cfg = load_config("44m-per_loop-norm", ["compile=true", "fused_adamw=false",
                                             "model.attention_kernel=auto"])
    s = speed_settings(cfg, CUDA)
    assert (s["attention_kernel_train"], s["fused_adamw"], s["compile"]) == ("sdpa", False, True)


def test_the_cpu_preset_trains_with_blocked_attention_and_evaluates_with_sdpa():
    s = speed_settings(load_config("cpu-per_loop-norm"), CPU)
    assert (s["attention_kernel_train"], s["attention_kernel_eval"], s["fused_adamw"],
            s["compile"]) == ("blocked", "sdpa", False, False)
    # the committed studies that pin SDPA keep it
    for _, _, cfg in table1.plan_runs("converged"):
        assert speed_settings(cfg, CPU)["attention_kernel_train"] == "sdpa"


def test_fused_adamw_switch_reaches_the_optimizer():
    cfg = load_config("tiny", ["fused_adamw=true"])
    model = torch.nn.Linear(2, 2)
    assert optimizer(model, cfg, CPU)[0].defaults["fused"] is True
    assert not optimizer(model, load_config("tiny"), CPU)[0].defaults["fused"]


@pytest.mark.slow
def test_a_compiled_run_trains_records_its_settings_and_resumes(tmp_path, monkeypatch):
    """``compile=true`` on a CPU: the run trains (loss falls), its checkpoint keeps the
    parameter names of an eager model (so ``blindspot diagnose`` and a resume read it), and
    the run card records the speed settings."""
    monkeypatch.setenv("BLINDSPOT_CACHE", str(tmp_path / "cache"))
    sets = ["steps=6", "log_every=1", "ckpt_every=3", "data.source=generated",
            "compile=true", "fused_adamw=true"]
    cfg = load_config("tiny", sets)
    first = train(cfg, tmp_path / "run", progress=False, max_steps=3)
    assert not first.final  # stopped at step 3, checkpoint written
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert set(state["model"]) == set(build_model(cfg).state_dict())
    res = train(cfg, tmp_path / "run", progress=False)  # resumes at step 3
    card = json.loads((tmp_path / "run" / "final.json").read_text())["run_card"]
    assert card["speed"]["compile"] is True and card["speed"]["fused_adamw"] is True
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert res.final is not None

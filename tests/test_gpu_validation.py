"""The GPU validation command, rehearsed on CPU: training, K = 30 diagnostics and the measured
utilisation all run end to end, so a GPU session cannot fail on a typo."""

import json

import pytest

from blindspot.experiments import gpu_validation, table1
from blindspot.experiments.cli import main


@pytest.mark.slow
def test_rehearsal_runs_end_to_end_and_measures_utilisation(tmp_path):
    out, diag = tmp_path / "table1-gpu", tmp_path / "diagnostics-gpu"
    res = gpu_validation.run("gpu", out, diagnostics_out=diag, rehearse=True,
                             conditions=("per_loop-norm", "per_loop-raw"),
                             scratch=tmp_path / "scratch", log=lambda *_: None)
    util = json.loads((out / "utilisation.json").read_text())
    assert {r["run"] for r in util["runs"]} == {"per_loop-norm-seed42",
                                               "per_loop-raw-seed42"}
    runs = {(k, s): c for k, s, c in table1.plan_runs(
        "gpu", None, ("per_loop-norm", "per_loop-raw"), (), True)}
    for r in util["runs"]:
        key = r["run"].rsplit("-seed", 1)[0]
        cfg = runs[(key, 42)]
        # the arithmetic, redone from the recorded numbers (float rounding only: 1e-12)
        flops = table1.training_flops_per_token(cfg) * cfg.batch_size * cfg.data.seq_len * 3
        assert r["steps"] == cfg.steps == 3
        assert r["training_flops"] == pytest.approx(flops, rel=1e-12)
        assert r["mfu"]["h200_bf16_target"] == pytest.approx(
            flops / r["wall_time_s"] / 790e12, rel=1e-12)
    assert "git_revision" in util["run_card"]
    for name in ("per_loop-norm", "per_loop-raw"):
        lemma2 = json.loads((diag / name / "lemma2.json").read_text())
        assert lemma2, name
    assert (diag / "summary.json").is_file()
    assert res["table1"]["complete"]


def test_cli_knows_the_experiment_and_rejects_the_cpu_tier(capsys):
    assert main(["gpu-validation", "--tier", "cpu"]) == 2
    assert "gpu-validation runs the gpu tier only" in capsys.readouterr().err


def test_cli_out_diag_belongs_to_gpu_validation_only(capsys):
    assert main(["table1", "--tier", "cpu", "--out-diag", "x"]) == 2
    assert "--out-diag applies to gpu-validation only" in capsys.readouterr().err

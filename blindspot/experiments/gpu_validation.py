"""``blindspot experiment gpu-validation --tier gpu``: the paper-scale check in one command.

1. trains the Table 1 conditions at the 44M scale within the H200 budget
   (:func:`blindspot.experiments.table1.run`, tier ``gpu``) into ``results/table1-gpu/``;
2. diagnoses every resulting checkpoint over K = 30 loops (Lemma 2 decomposition, radial
   gradient share, radial clamp, scale sensitivity, early exit;
   :func:`blindspot.experiments.diagnose.diagnose_gpu_checkpoints`) into
   ``results/diagnostics-gpu/``;
3. writes ``results/table1-gpu/utilisation.json``: the model FLOP utilisation each run
   achieved, measured from its recorded wall time (which includes evaluation and checkpoints,
   so the figure is a lower bound on the training loop's own utilisation).

``--rehearse`` runs the same path with tiny models on a CPU (``tests/test_gpu_validation.py``),
so the GPU run cannot fail on a typo. The utilisation target (:data:`MFU_TARGET`) is stated
against the H200's ≈ 790 TFLOP/s bf16; NVIDIA's datasheet states 989 TFLOP/s dense bf16
(table1's planning figure), so both denominators are reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blindspot.experiments import table1
from blindspot.provenance import atomic_write_json, run_card

PEAKS = {"h200_bf16_dense_datasheet": table1.H200_BF16_FLOPS, "h200_bf16_target": 790e12}
MFU_TARGET = 0.40  # of the 790 TFLOP/s peak; reported, never asserted


def utilisation(summary: dict[str, Any], runs: list) -> dict[str, Any]:
    """Achieved training FLOP/s of every run in ``summary`` and its fraction of each peak.

    achieved = training_flops_per_token(cfg) × batch × seq_len × steps / wall_time_s."""
    cfgs = {(key, seed): cfg for key, seed, cfg in runs}
    rows = []
    for key, cond in summary["conditions"].items():
        for r in cond["seeds"]:
            cfg = cfgs[(key, r["seed"])]
            flops = (table1.training_flops_per_token(cfg) * cfg.batch_size * cfg.data.seq_len
                     * r["steps"])
            achieved = flops / r["wall_time_s"]
            rows.append({"run": f"{key}-seed{r['seed']}", "steps": r["steps"],
                         "wall_time_s": r["wall_time_s"], "training_flops": flops,
                         "achieved_flops_per_s": achieved,
                         "mfu": {name: achieved / peak for name, peak in PEAKS.items()}})
    return {"runs": rows, "peaks": PEAKS, "target": MFU_TARGET,
            "note": "wall time includes evaluation and checkpoints: a lower bound"}


def run(tier: str = "gpu", out: str | Path | None = None, *, diagnostics_out=None,
        rehearse: bool = False, seeds=None, conditions=None, overrides=(), log=print,
        **table1_options) -> dict[str, Any]:
    if tier != "gpu":
        raise ValueError(f"gpu-validation runs the gpu tier only (got tier {tier!r}); for the "
                         "CPU grid use `blindspot experiment table1 --tier cpu`")
    from blindspot.experiments.diagnose import diagnose_gpu_checkpoints

    suffix = "-rehearse" if rehearse else ""
    out = Path(out or f"results/table1-gpu{suffix}")
    diag_out = Path(diagnostics_out or f"results/diagnostics-gpu{suffix}")
    summary = table1.run("gpu", out, seeds=seeds, conditions=conditions, overrides=overrides,
                         rehearse=rehearse, log=log, **table1_options)
    checkpoints = sorted((out / "checkpoints").glob("*.pt"))
    if not checkpoints:
        raise FileNotFoundError(f"no checkpoints under {out / 'checkpoints'}: training wrote none")
    diagnose_gpu_checkpoints(checkpoints, diag_out, progress=False)  # K = 30 loops
    runs = table1.plan_runs("gpu", seeds, conditions, overrides, rehearse)
    util = utilisation(summary, runs)
    util["run_card"] = run_card(config={"tier": "gpu", "rehearse": rehearse,
                                        "overrides": list(overrides)}, seed=None)
    atomic_write_json(out / "utilisation.json", util)
    for r in util["runs"]:
        log(f"[gpu-validation] {r['run']}: {r['achieved_flops_per_s'] / 1e12:.2f} TFLOP/s, MFU "
            + ", ".join(f"{v:.1%} of {k}" for k, v in r["mfu"].items()))
    return {"table1": summary, "utilisation": util, "diagnostics": str(diag_out)}

"""The table1 experiment: the pipeline end to end at toy size, the GPU rehearsal, the GPU step
budget, and the claim checks on synthetic summaries that must pass or be refuted."""

import json
import math

import pytest

from blindspot.checks import table1 as checks
from blindspot.claims import Skip
from blindspot.experiments import EXPERIMENTS
from blindspot.experiments import table1 as E
from blindspot.train.checkpoint import load_model
from blindspot.train.config import CONDITIONS, PAPER_LABELS, load_config


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BLINDSPOT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


TINY = ("data.source=generated", "steps=4", "model.d_model=16", "model.n_heads=2",
        "model.n_layers=1", "model.max_seq_len=16", "data.seq_len=16", "data.stride=8",
        "batch_size=4", "eval_windows=4", "warmup_steps=1")


@pytest.mark.slow
def test_cpu_grid_pipeline_writes_runs_checkpoints_summary_and_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the scratch runs/ folder goes here
    lines = []
    summary = E.run("cpu", tmp_path / "out", seeds=(0, 1), overrides=TINY, log=lines.append)
    assert summary["complete"] and summary["runs"] == summary["total_runs"] == 14
    assert list(summary["conditions"]) == list(CONDITIONS)
    for cond, c in summary["conditions"].items():
        assert [s["seed"] for s in c["seeds"]] == [0, 1] and c["ppl_K"]["n"] == 2
        assert c["ppl_K"]["mean"] == pytest.approx(sum(s["ppl_K"] for s in c["seeds"]) / 2)
        assert math.isfinite(c["scale_K"]["mean"]) and c["initial_scale_K"]["mean"] > 0
        for seed in (0, 1):
            run = tmp_path / "out" / "per_run" / f"{cond}-seed{seed}"
            final = json.loads((run / "final.json").read_text())
            assert final["ppl_K"] == pytest.approx(c["seeds"][seed]["ppl_K"])
            assert "run_card" in final and (run / "metrics.jsonl").is_file()
        model, cfg = load_model(tmp_path / "out" / "checkpoints" / f"{cond}.pt")
        assert cfg.seed == 0 and cfg.name == f"cpu-{cond}"
    assert not list((tmp_path / "out").rglob("checkpoint.pt"))  # resume state stays in runs/
    table = (tmp_path / "out" / "table.md").read_text()
    assert "per-loop + RMSNorm readout (n=2)" in table and "≈ 39,207" in table
    labels = [row.split(" (n=")[0][2:] for row in table.splitlines()[4:]]
    assert labels == [PAPER_LABELS[c] for c in CONDITIONS]  # the paper's order
    assert table.count("| n/a |") >= 7  # the paper states no perplexity we could print
    assert lines[-1] == table.rstrip("\n")
    # a second invocation keeps every finished run as it is: no training, no new run card
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("final.json")}
    again_log = []
    again = E.run("cpu", tmp_path / "out", seeds=(0, 1), overrides=TINY, log=again_log.append)
    assert sum("finished earlier, kept as it is" in line for line in again_log) == 14
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("final.json")} == before
    for cond, c in again["conditions"].items():
        assert (c["ppl_K"], c["scale_K"]) == (summary["conditions"][cond]["ppl_K"],
                                              summary["conditions"][cond]["scale_K"])


def test_shards_split_the_grid_and_stale_results_do_not_count(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kw = {"seeds": (0,), "conditions": ("per_loop-norm", "per_loop-raw", "terminal-raw"),
          "overrides": TINY, "log": lambda s: None}
    first = E.run("cpu", tmp_path / "out", shard=(0, 2), **kw)  # runs 0 and 2 of 3
    assert (first["runs"], first["complete"]) == (2, False)
    assert set(first["conditions"]) == {"per_loop-norm", "terminal-raw"}
    second = E.run("cpu", tmp_path / "out", shard=(1, 2), **kw)
    assert (second["runs"], second["complete"]) == (3, True)
    # a result written under another config is not this grid's: it no longer counts
    final = tmp_path / "out" / "per_run" / "per_loop-raw-seed0" / "final.json"
    data = json.loads(final.read_text())
    data["run_card"]["config"]["lr"] = 1.0
    final.write_text(json.dumps(data))
    again = E.summarize(tmp_path / "out", E.plan_runs("cpu", **{k: kw[k] for k in
                                                               ("seeds", "conditions",
                                                                "overrides")}),
                       {"tier": "cpu", "rehearse": False, "seeds": [0], "plan": {},
                        "recipe": "paper", "unigram_entropy": 3.0,
                        "config": {"contrast": None}}, 0.0)
    assert (again["runs"], set(again["conditions"])) == (2, {"per_loop-norm", "terminal-raw"})


@pytest.mark.slow
def test_gpu_tier_rehearses_on_cpu(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from blindspot.experiments.cli import main

    assert main(["table1", "--tier", "gpu", "--rehearse", "--out", str(tmp_path / "gpu"),
                 "--conditions", "per_loop-norm", "per_loop-raw"]) == 0
    s = json.loads((tmp_path / "gpu" / "summary.json").read_text())
    assert s["rehearse"] and s["seeds"] == [42] and s["gpu_plan"]["steps"]["44m"] > 0
    c = s["conditions"]["per_loop-norm"]
    assert c["scale_name"] == "44m" and c["steps"] == 3
    _, cfg = load_model(tmp_path / "gpu" / "checkpoints" / "per_loop-norm.pt")
    # the rehearsal keeps the paper's word tokenizer and its 20k-row readout
    assert (cfg.data.tokenizer, cfg.model.vocab_size, cfg.model.dropout) == ("word", 20000, 0.1)


def test_experiment_cli_rejects_unknown_names(capsys):
    from blindspot.experiments.cli import main

    assert main(["table2"]) == 2 and "unknown experiment 'table2'" in capsys.readouterr().err
    assert main(["table1", "--tier", "tpu"]) == 2 and "valid tiers" in capsys.readouterr().err
    assert main(["table1", "--conditions", "per_loop"]) == 2
    assert "unknown condition" in capsys.readouterr().err
    assert EXPERIMENTS["table1"] is E.run


def test_prepare_only_tokenizes_the_corpus(capsys):
    from blindspot.experiments.cli import main

    assert main(["table1", "--prepare", "--set", "data.source=generated"]) == 0
    assert "training and" in capsys.readouterr().out
    # a corpus that cannot be read is a one-line error, not a traceback
    assert main(["table1", "--prepare", "--set", "data.source=wikitext103"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data.source=wikitext103 needs data.path") and err.count("\n") == 1


def test_step_time_estimate_counts_the_training_flops():
    cfg = load_config("44m-per_loop-norm")
    d, V, L, K, T, B = 512, 20000, 8, 4, 256, 64
    per_layer = 4 * d * d + 3 * d * 4 * d  # attention q,k,v,o + SwiGLU (3 matrices of d x 4d)
    flops = (6 * (K * L * per_layer + K * d * V) + 12 * K * L * T * d) * B * T
    assert E.estimate_step_seconds(cfg, flops=1e15, mfu=0.5) == pytest.approx(flops / 5e14)
    terminal = load_config("44m-terminal-norm")  # one readout instead of K
    assert E.estimate_step_seconds(terminal) < E.estimate_step_seconds(cfg)


def test_gpu_plan_fits_the_budget():
    plan = E.gpu_plan()
    runs = len(CONDITIONS) * len(E.GPU_SEEDS)
    used = sum(runs * steps * plan["step_seconds"][s] for s, steps in plan["steps"].items())
    assert 0 < plan["steps"]["44m"] <= load_config("44m").steps
    assert used <= E.GPU_BUDGET_S - E.OVERHEAD_S


def _summary(scales, ppl, initial=0.5, n=3, std=0.1, entropy=3.33):
    """A synthetic summary: ``scales``/``ppl`` map condition -> mean final ‖H_K‖ / perplexity;
    each seed holds the same values."""
    conds = {}
    for k in CONDITIONS:
        p = ppl.get(k, 10.0)
        seed = {"seed": 0, "ppl_K": p, "scale_K": scales.get(k, 1.0), "ce_K": math.log(p),
                "initial_scale_K": initial, "ppl": [p] * 4, "scale": [scales.get(k, 1.0)] * 4}
        conds[k] = {"condition": k, "scale_name": "cpu", "label": k,
                    "scale_K": {"mean": scales.get(k, 1.0), "std": 0.0, "n": n},
                    "initial_scale_K": {"mean": initial, "std": 0.0, "n": n},
                    "ppl_K": {"mean": p, "std": std, "n": n},
                    "ce_K": {"mean": math.log(p), "std": 0.0, "n": n},
                    "ppl_per_loop": [p] * 4, "seeds": [seed]}
    return {"experiment": "table1", "tier": "cpu", "runs": 21, "total_runs": 21,
            "conditions": conds, "seeds": [0], "unigram_entropy": entropy, "recipe": "paper"}


def test_table1_checks_pass_and_refute_on_synthetic_summaries():
    blown = _summary({"per_loop-norm": 300.0, "terminal-raw": 3.0, "per_loop-raw": 4.0,
                      "terminal-penalty": 2.0, "per_loop-penalty": 29.0}, {})
    out = checks.blowup(blown)
    assert out.passed and "10.3x (per_loop-penalty)" in out.evidence
    close = _summary({"per_loop-norm": 300.0, "per_loop-penalty": 31.0}, {})
    out = checks.blowup(close)
    assert not out.passed and out.evidence.startswith("refuted: ") and "9.7x" in out.evidence

    assert checks.near_initial(_summary({"per_loop-penalty": 4.9}, {}, initial=0.5)).passed
    out = checks.near_initial(_summary({"terminal-raw": 5.1}, {}, initial=0.5))
    assert not out.passed and "10.2x (terminal-raw)" in out.evidence

    # 2 SE of the difference with std 0.1 over n = 3 seeds: 2·√2·0.1/√3 ≈ 0.163
    ok = _summary({}, {"per_loop-norm": 10.0, "per_loop-raw": 10.15, "per_loop-penalty": 9.0})
    assert checks.perplexity(ok).passed
    worse = _summary({}, {"per_loop-norm": 10.0, "per_loop-raw": 10.2, "per_loop-penalty": 9.0})
    out = checks.perplexity(worse)
    assert not out.passed and out.evidence.startswith("refuted: ")


def test_learning_is_judged_against_the_unigram_entropy():
    # ln 10 = 2.303 nats; entropy 2.7 leaves a margin of 0.397 ≥ 0.3, entropy 2.5 only 0.197
    assert checks.learns(_summary({}, {}, entropy=2.7)).passed
    out = checks.learns(_summary({}, {"terminal-raw": 12.0}, entropy=2.7))  # ln 12 = 2.485
    assert not out.passed and "0.215 (terminal-raw)" in out.evidence
    no_entropy = _summary({}, {})
    del no_entropy["unigram_entropy"]
    with pytest.raises(Skip, match="no unigram entropy"):
        checks.learns(no_entropy)


def test_verdicts_of_one_seed_compare_across_precisions():
    blown = {"per_loop-norm": 300.0, "terminal-raw": 3.0, "per_loop-raw": 4.0,
             "terminal-penalty": 2.0, "per_loop-penalty": 20.0}
    bf16, fp32 = _summary(blown, {}, initial=1.0), _summary(blown, {}, initial=1.0, n=1)
    out = checks.same_verdicts(bf16, fp32)
    assert out.passed and "scale_blowup: PASS -> PASS" in out.evidence
    fp32_small = _summary({**blown, "per_loop-norm": 100.0}, {}, initial=1.0, n=1)
    out = checks.same_verdicts(bf16, fp32_small)  # 100/20 = 5x: the blow-up verdict flips
    assert not out.passed and "scale_blowup: PASS -> FAIL" in out.evidence


def test_recipe_decides_needs_both_grids():
    blown = _summary({"per_loop-norm": 300.0, "terminal-raw": 3.0, "per_loop-raw": 4.0,
                      "terminal-penalty": 2.0, "per_loop-penalty": 20.0}, {})
    flat = _summary({"per_loop-norm": 50.0, "per_loop-raw": 30.0}, {})
    assert checks.recipe_decides(blown, flat).passed
    assert not checks.recipe_decides(blown, blown).passed  # contrast blows up too
    assert not checks.recipe_decides(flat, flat).passed  # the paper's recipe does not


def test_contrast_grid_is_blindspot_0_1s_configuration():
    runs = E.plan_runs("cpu", seeds=(0,), conditions=("per_loop-norm",),
                       overrides=E.CONTRASTS["gpt2"])
    (_, _, cfg), = runs
    assert (cfg.model.init, cfg.lr_schedule, cfg.warmup_steps, cfg.beta2, cfg.weight_decay_on,
            cfg.precision, cfg.model.dropout) == \
        ("gpt2", "warmup_cosine", 20, 0.95, "matrices", "auto", 0.0)
    from blindspot.experiments.cli import main

    assert main(["sensitivity", "--contrast", "gpt2"]) == 2  # a table1 option


def test_table1_checks_skip_without_results(tmp_path, monkeypatch):
    monkeypatch.setenv("BLINDSPOT_RESULTS", str(tmp_path))
    with pytest.raises(Skip, match="blindspot experiment table1 --tier cpu"):
        checks.load("cpu")
    partial = _summary({}, {})
    del partial["conditions"]["per_loop-raw"]
    with pytest.raises(Skip, match="lacks per_loop-raw"):
        checks.perplexity(partial)
    (tmp_path / "table1-gpu").mkdir()
    (tmp_path / "table1-gpu" / "summary.json").write_text(json.dumps(_summary({}, {})))
    assert checks.load("gpu")["tier"] == "cpu"  # loads what is there; the checks read it


def test_table1_figure_draws_from_a_summary(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from blindspot.figures import MissingResults, draw
    from blindspot.figures.table1 import draw_table1

    s = _summary({"per_loop-norm": 300.0}, {"per_loop-penalty": 9.0})
    for c in s["conditions"].values():
        c["scale_per_loop"] = [1.0, 2.0, 3.0, c["scale_K"]["mean"]]
        c["seeds"] = [{"scale_K": c["scale_K"]["mean"]}]
    s["seeds"] = [0]
    fig = draw_table1(s)
    a, b = fig.axes
    assert a.get_yscale() == "log" and len(b.patches) == len(CONDITIONS)
    assert max(line.get_ydata()[-1] for line in a.get_lines()) == 300.0
    with pytest.raises(MissingResults, match="blindspot experiment table1 --tier cpu"):
        draw("table1-cpu", tmp_path)
    (tmp_path / "table1-cpu").mkdir()
    (tmp_path / "table1-cpu" / "summary.json").write_text(json.dumps(s))
    assert len(draw("table1-cpu", tmp_path).axes) == 2

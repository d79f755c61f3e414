"""The roofline benchmark measures what it says: its eager reference computes LoopedLM's
function on the same weights and trains the same way, it times the trainer's own step, its
FLOP count is the model's closed form, its memory probe sees what it should, and the README
quotes its committed JSON."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("roofline", ROOT / "benchmarks" / "roofline.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["roofline"] = bench  # its dataclasses resolve their module by name
_spec.loader.exec_module(bench)

RESULT = ROOT / "results" / "benchmarks" / "roofline.json"


def _cfg(seq=12, tokens=24):
    # the tiny preset (d 32, 1 layer, K 3, two heads) in float32, no dropout
    return bench.config("tiny", seq, tokens, "fp32", ("model.dropout=0",))


def test_reference_computes_the_same_per_loop_logits_in_float64():
    cfg = _cfg()
    ours, eager = bench.build("ours", cfg)[0].double(), bench.build("eager", cfg)[0].double()
    x, _, _ = bench.batch(cfg)
    a, b = ours(x).logits, eager(x)
    assert len(a) == len(b) == cfg.model.num_loops
    for za, zb in zip(a, b, strict=True):
        # fused vs explicit attention and norm kernels differ only by float64 round-off
        torch.testing.assert_close(za, zb, rtol=1e-10, atol=1e-12)


def test_the_trainer_step_and_the_eager_step_train_the_same_way():
    """Three steps of the trainer's step (clipping, AdamW, scheduler) with either attention
    kernel and of the release-style eager loop from the same weights in float64 give the
    same losses."""
    cfg = _cfg()
    x, y, _ = bench.batch(cfg)
    losses = {}
    for impl in ("ours", "explicit", "eager"):
        c = bench.with_kernel(cfg, "explicit") if impl == "explicit" else cfg
        model, opt, sched = bench.build("eager" if impl == "eager" else "ours", c)
        model.double()
        if impl == "eager":
            losses[impl] = [bench.eager_step(model, opt, x, y, c) for _ in range(3)]
        else:
            assert model.blocks[0].attn.kernel == ("explicit" if impl == "explicit" else "sdpa")
            losses[impl] = [bench.train_step(model, opt, sched, x, y, c, i).loss.item()
                            for i in range(3)]
    assert losses["ours"][-1] < losses["ours"][0]  # the step trains
    # float64 gradients agree to round-off, and AdamW's update is a smooth function of them
    for impl in ("explicit", "eager"):
        torch.testing.assert_close(torch.tensor(losses[impl]), torch.tensor(losses["ours"]),
                                   rtol=1e-9, atol=0)


def test_each_training_workload_times_the_trainer_step_with_its_switch(monkeypatch):
    """``train_sdpa``/``train_explicit`` run :func:`train_step` itself on a model with that
    attention kernel, ``train`` keeps the config's (the tiny preset's: SDPA), and the levers
    switch on compilation and the fused AdamW."""
    seen = []
    monkeypatch.setattr(bench, "train_step", lambda model, opt, sched, x, y, cfg, step:
                        seen.append((model.blocks[0].attn.kernel, cfg.compile,
                                     bool(opt.defaults.get("fused")))))
    for name in ("train", "train_sdpa", "train_explicit", *bench.LEVERS):
        bench.workload(name, _cfg())()
    assert seen == [("sdpa", False, False), ("sdpa", False, False), ("explicit", False, False),
                    ("sdpa", True, False), ("sdpa", False, True)]


def test_levers_and_targets_read_the_rounds_they_say():
    times = {f"{w}/{s}/bf16": [t] * 3 for s in bench.SEQS
             for w, t in (("train", 1.0), ("eager", 1.5), ("train_compiled", 2.0),
                          ("train_fused_adamw", 0.98))}
    first = {k: v[0] + (40.0 if k.startswith("train_compiled") else 0.1) for k, v in times.items()}
    lev = bench.levers(times, first)
    c = lev["64"]["train_compiled"]
    assert c["vs_train"]["median"] == 0.5 and c["vs_eager"]["median"] == 0.75
    assert c["first_step_extra_s"] == pytest.approx(40.0)
    res = {"ratios": {s: {"by_precision": {"bf16": {"ours_vs_eager": {"median": m}}}}
                      for s, m in (("64", 1.35), ("256", 1.2), ("1024", 1.6))},
           "rows": [{"workload": "train", "seq": 256, "precision": "bf16",
                     "peak_fraction": 0.2}]}
    t = bench.targets(res)
    assert [t[k]["met"] for k in ("vs_eager_bf16_64", "vs_eager_bf16_256", "vs_eager_bf16_1024",
                                  "peak_fraction_256")] == [True, False, True, False]
    grid = json.loads((ROOT / bench.GRIDS["paper"]).read_text())
    assert t["grid_wall_min"]["measured"] == pytest.approx(grid["wall_time_s"] / 60)


def test_flop_count_is_the_models_closed_form():
    """Forward: 2 FLOPs per multiply-add of every matrix product (qkv, output projection,
    SwiGLU up and down, readout) and causal attention over T(T+1)/2 pairs (QKᵀ and PV);
    training: three times that (each product's backward is two products)."""
    seq, tokens = 16, 64
    cfg = _cfg(seq, tokens)
    m = cfg.model
    d, h, V, K, L = m.d_model, int(m.ff_mult * m.d_model), m.vocab_size, m.num_loops, m.n_layers
    per_token = K * L * 2 * (3 * d * d + d * d + 2 * d * h + h * d) + K * 2 * d * V
    attention = K * L * (tokens // seq) * 2 * 2 * d * seq * (seq + 1) // 2
    forward = tokens * per_token + attention
    assert bench.workload_flops("forward", cfg) == forward
    assert bench.workload_flops("train", cfg) == bench.workload_flops("eager", cfg) == 3 * forward
    # the explicit kernel computes the same function: credited the same useful work, not the
    # masked half of its T x T products
    for name in ("train_sdpa", "train_explicit", *bench.LEVERS):
        assert bench.workload_flops(name, cfg) == 3 * forward


def test_timed_rounds_rotate_the_order_and_time_every_unit_each_round():
    calls = []
    units = {n: (lambda n=n: calls.append(n)) for n in "abc"}
    times = bench.timed_rounds(units, rounds=3, repeat={"b": 2})
    assert {n: len(t) for n, t in times.items()} == {"a": 3, "b": 3, "c": 3}
    # one warm-up each, then rounds starting at a, b, c in turn ("b" twice per round)
    assert calls == ["a", "b", "c", "a", "b", "b", "c", "b", "b", "c", "a", "c", "a", "b", "b"]
    assert bench.paired([2.0, 4.0, 9.0], [1.0, 1.0, 3.0]) == {"median": 3.0, "best": 2.0}


def test_ratios_compare_each_step_with_the_others_at_best_and_at_equal_precision():
    """tokens/s of a over b = time of b / time of a, per round; each workload's best
    precision is its faster one by median time."""
    base = {"train": 1.0, "train_sdpa": 2.0, "train_explicit": 1.25, "eager": 1.5}  # s, bf16
    times = {f"{impl}/{s}/{p}": [t * (3 if p == "fp32" else 1)] * 3  # fp32 3x slower
             for impl, t in base.items() for s in bench.SEQS for p in bench.PRECISIONS}
    times["eager/64/fp32"] = [1.0] * 3  # the eager model's best precision at seq 64: fp32
    r = bench.ratios(times)
    assert set(r) == {str(s) for s in bench.SEQS}
    q = r["256"]
    assert set(q["best_precision"].values()) == {"bf16"}
    assert q["ours_vs_sdpa"]["median"] == 2.0 and q["ours_vs_eager"]["median"] == 1.5
    assert q["sdpa_vs_eager"]["median"] == 0.75 and q["explicit_vs_eager"]["median"] == 1.2
    assert q["bf16_gain_sdpa"]["median"] == 3.0
    assert q["by_precision"]["fp32"]["ours_vs_sdpa"]["median"] == 2.0
    assert r["64"]["best_precision"]["eager"] == "fp32"
    assert r["64"]["ours_vs_eager"]["median"] == 1.0  # bf16 ours vs fp32 eager
    assert r["64"]["by_precision"]["bf16"]["ours_vs_eager"]["median"] == 1.5


@pytest.mark.slow
def test_memory_probe_sees_the_attention_matrices_and_the_logits():
    """Child processes, as the benchmark measures. At T = 256 the eager model keeps its
    softmax probabilities for backward, one (B, H, T, T) = 8 x 2 x 256 x 256 float32 matrix
    of 4 MiB per loop and layer, 12 MiB over K·L = 3; the fused kernel keeps a (B, H, T)
    log-sum-exp instead. 9 MiB leaves 3 MiB for every other difference of the two. And the
    chunked readout keeps no logits: at V = 8192, K = 4, 8 x 128 tokens the plain one keeps
    the log-softmax of every loop for backward (128 MiB, the size of the float32 logits), the
    chunked one holds two or three 16 MiB chunks at a time: less than half."""
    spec = {"kind": "workload", "config": {"base": "tiny", "seq": 256, "tokens": 2048,
                                           "precision": "fp32",
                                           "overrides": ["model.dropout=0"]}}
    peak = {impl: bench.memory_in_child({**spec, "name": impl}, threads=1)
            for impl in ("train", "eager")}
    assert peak["eager"] - peak["train"] > 9 * 2**20, peak
    shape = dict(vocab=8192, d=64, loops=4, batch_size=8, seq=128, precision="fp32")
    readout = {path: bench.memory_in_child({"kind": "readout", "args": {**shape, "path": path}},
                                           threads=1) for path in ("plain", "chunked")}
    assert readout["plain"] > 128 * 2**20 and readout["chunked"] < readout["plain"] / 2, readout


def test_readme_quotes_the_committed_benchmark():
    """The README's performance paragraph is the one the committed JSON generates: rerun
    ``python benchmarks/roofline.py --readme README.md --from results/benchmarks/roofline.json``
    after the benchmark."""
    text = (ROOT / "README.md").read_text()
    block = text.split(bench.README_BEGIN, 1)[1].split(bench.README_END, 1)[0].strip()
    res = json.loads(RESULT.read_text())
    assert block == bench.readme_block(res, "results/benchmarks/roofline.json")

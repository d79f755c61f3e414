"""``ScaleMonitor``: its verdict, its statistics against the diagnostics', its JSONL, its errors,
and that watching a run never changes it."""

import json
import logging
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from blindspot.checks.control import TINY, byte_batches, monitored_run, one_thread
from blindspot.checks.small import small_model, small_tokens
from blindspot.control import (
    BlindSpotWarning,
    InterLoopNorm,
    NormPenalty,
    ScaleMonitor,
    StateTap,
    blind_threshold,
    round_off_floor,
)
from blindspot.diagnostics import LoopAdapter, adapter_for, record
from blindspot.diagnostics.radial import radial_table
from blindspot.diagnostics.scale import scale_table
from blindspot.nn import LoopedLM
from blindspot.train import losses

ROOT = Path(__file__).resolve().parents[1]


def test_monitor_warns_once_on_the_blind_spot():
    run = monitored_run("norm", steps=20, every=2)
    active = [r["step"] for r in run["records"] if r["active"]]
    assert len(active) >= 2 and run["fired_at"] == active[0]  # active again later: no repeat
    assert len(run["warnings"]) == 1 and len(run["logs"]) == 1
    text = str(run["warnings"][0].message)
    assert text == run["logs"][0].getMessage() and run["logs"][0].levelno == logging.WARNING
    for fix in ("NormPenalty", "RawReadoutLoss", "InterLoopNorm", "proofs/readouts.md"):
        assert fix in text
    assert f"readout blind spot at step {active[0]}" in text
    fired = run["records"][[r["step"] for r in run["records"]].index(active[0])]
    assert max(fired["radial_share"]) <= fired["round_off_floor"] * 10  # at the float32 floor
    assert fired["growing"] and fired["blind"] and fired["carried"] and fired["growth"] >= 2
    assert f"grew {fired['growth']:.2f}x" in text


def test_monitor_stays_silent_on_a_raw_readout_and_under_a_penalty():
    for run in (monitored_run("raw"), monitored_run("norm", penalty=0.01)):
        assert run["fired_at"] is None and not run["warnings"] and not run["logs"]
        assert all(not r["blind"] for r in run["records"])  # the losses see the scale


def test_monitor_statistics_are_the_diagnostics_tables():
    model = small_model()  # float64, ε = 0
    adapter = adapter_for(model)
    tk = small_tokens(batch=3)
    rec = ScaleMonitor(adapter).measure(tk[:, :-1], tk[:, 1:])
    with torch.no_grad():
        trace = record(adapter, tk[:, :-1])
    scale = scale_table(trace).rows[1:]  # loops 1..K (row 0 is H_0)
    radial = radial_table(adapter, trace.states, tk[:, 1:])
    # float64: the same quantities, reduced in another order
    assert rec["scale_mean"] == pytest.approx([r["scale_mean"] for r in scale], rel=1e-12)
    assert rec["scale_p99"] == pytest.approx([r["token_p99"] for r in scale], rel=1e-12)
    assert rec["radial_share"] == pytest.approx(radial.column("radial_share"), rel=1e-9,
                                                abs=1e-15)  # shares ~1e-17 at ε = 0
    assert rec["loop_ratio"] == pytest.approx(scale[-1]["scale_mean"] / scale[0]["scale_mean"])
    assert rec["tokens"] == tk[:, 1:].numel() and rec["dtype"] == "float64"
    assert max(rec["radial_share"]) <= rec["round_off_floor"]  # blind at ε = 0


def test_monitor_adds_its_controls_to_the_per_loop_gradient():
    model = small_model()
    tk = small_tokens()
    plain = ScaleMonitor(adapter_for(model)).measure(tk[:, :-1], tk[:, 1:])
    lam = 0.01
    seen = ScaleMonitor(adapter_for(model), controls=[NormPenalty(lam)]).measure(tk[:, :-1],
                                                                                 tk[:, 1:])
    # with a zero CE radial part (ε = 0), the share is ‖radial penalty gradient‖ / ‖g‖, with
    # the penalty's gradient 2λh/n per token, all of it radial
    with torch.no_grad():
        trace = record(adapter_for(model), tk[:, :-1])
    for k, h in enumerate(trace.states):
        from blindspot.diagnostics.radial import loop_gradient

        _, g_ce, _ = loop_gradient(adapter_for(model), h, tk[:, 1:], k + 1, 4)
        g_pen = 2 * lam * h / h.shape[-1]
        want = g_pen.norm() / (g_ce + g_pen).norm()
        assert seen["radial_share"][k] == pytest.approx(want.item(), rel=1e-9)
        assert plain["radial_share"][k] < 1e-14


def test_monitor_writes_one_jsonl_line_per_measurement(tmp_path):
    path = tmp_path / "logs" / "scale.jsonl"
    path.parent.mkdir()
    path.write_text("an old run\n")
    quiet = {"growth_factor": 1e3}  # this run's state grows 3x at once: not what is tested here
    _, run = _short_run(path=path, every=2, steps=5, **quiet)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines == run.records and [r["step"] for r in lines] == [0, 2, 4]  # old run replaced
    _, again = _short_run(path=path, every=2, steps=3, append=True, **quiet)
    assert len(path.read_text().splitlines()) == len(run.records) + len(again.records)


def _short_run(watched=True, *, steps=4, dropout=0.0, autocast=False, micro=1, **monitor):
    """A tiny LoopedLM trained ``steps`` steps, ``micro`` micro-batches per step, under bf16
    autocast if asked; watched: a state tap, a zero-weight penalty and a monitor (``monitor``
    its options), which observes after the first micro-batch's forward, mid-accumulation.
    Returns (final parameters, the monitor or None)."""
    with one_thread():
        return _train(watched, steps, dropout, autocast, micro, monitor)


def _train(watched, steps, dropout, autocast, micro, monitor):
    torch.manual_seed(0)
    model = LoopedLM(replace(TINY, dropout=dropout))
    mon = ScaleMonitor(adapter_for(model), **monitor) if watched else None
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    data = byte_batches()
    for step in range(steps):
        for i, mb in enumerate(next(data).chunk(micro)):
            x, y = mb[:, :-1], mb[:, 1:]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                if watched:
                    with StateTap(model.blocks[-1]) as tap:
                        out = model(x)
                    loss = losses.per_loop_cross_entropy(out.logits, y).mean() \
                        + NormPenalty(0.0)(tap.states)
                    if i == 0:  # gradients of earlier micro-batches may already sit in .grad
                        mon.observe(step, x, y)
                else:
                    out = model(x)
                    loss = losses.per_loop_cross_entropy(out.logits, y).mean()
            (loss / micro).backward()
        opt.step()
        opt.zero_grad()
    return [p.detach().clone() for p in model.parameters()], mon


def test_monitor_leaves_training_bitwise_unchanged():
    opts = {"steps": 5, "dropout": 0.1, "autocast": True, "micro": 2}
    plain, _ = _short_run(watched=False, **opts)
    with pytest.warns(BlindSpotWarning):  # this run grows the blind state at once
        watched, mon = _short_run(every=1, window=2, **opts)
    assert len(mon.records) == opts["steps"] and mon.fired_at is not None
    for a, b in zip(plain, watched, strict=True):
        assert torch.equal(a, b)


def test_monitor_measures_in_the_parameters_dtype(small_foreign, byte_tokens):
    model, adapter = small_foreign()
    tk = byte_tokens()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the user's autocast is switched off
        rec = ScaleMonitor(adapter).measure(tk[:, :-1], tk[:, 1:])
    assert rec["dtype"] == "float32" and rec["round_off_floor"] == torch.finfo(torch.float32).eps
    model.bfloat16()  # a model whose parameters are bf16 is measured in bf16
    rec = ScaleMonitor(adapter).measure(tk[:, :-1], tk[:, 1:])
    assert rec["dtype"] == "bfloat16"
    assert rec["blind_threshold"] == round_off_floor(torch.bfloat16) == 2.0 ** -7
    assert blind_threshold(torch.float32) == 1e-4  # the floor sits far below blind_share there


def test_round_off_floor_bounds_the_measured_radial_shares():
    from blindspot.symbolic.precision import invariance_table

    # the floors of proofs/precision.md: every share measured at ε = 0 (exactly 0 in exact
    # arithmetic) where ms(c·h) is representable in that dtype
    for row in invariance_table(seeds=1):
        if math.isfinite(row["radial_share"]):
            assert row["radial_share"] <= round_off_floor(getattr(torch, row["dtype"])), row


def test_monitor_restores_each_modules_mode_and_the_rng(small_foreign, byte_tokens):
    model, adapter = small_foreign()
    model.train()
    model.prelude.eval()  # a user's frozen part stays as it was
    modes = {n: m.training for n, m in model.named_modules()}
    tk = byte_tokens()
    rng = torch.get_rng_state()
    ScaleMonitor(adapter).measure(tk[:, :-1], tk[:, 1:])
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert torch.equal(torch.get_rng_state(), rng)


class NaNCore(nn.Module):
    def __init__(self, core):
        super().__init__()
        self.core = core

    def forward(self, xe):
        return self.core(xe) * float("nan")


def test_monitor_names_bad_input(small_foreign, byte_tokens):
    model, adapter = small_foreign()
    tk = byte_tokens()
    x, y = tk[:, :-1], tk[:, 1:]
    with pytest.raises(ValueError, match=r"targets must be the \(B, T\) = \(4, 16\) next-token "
                                         r"ids of the batch, got \(4, 15\)"):
        ScaleMonitor(adapter).measure(x, y[:, 1:])
    flat = replace(adapter, head=lambda h, k, K: model.coda(h).flatten(0, 1))
    with pytest.raises(ValueError, match=r"the head returned logits of shape \(64, 256\) for "
                                         r"a state of shape \(4, 16, 32\): it must return "
                                         r"\(B, T, V\) logits"):
        ScaleMonitor(flat).measure(x, y)
    pair = replace(adapter, step=lambda x, e: (adapter.step(x, e), None))  # a bare callable
    with pytest.raises(TypeError, match="the loop body returned a tuple of 2 items, not the next "
                                        "state: point the adapter's body at a module"):
        ScaleMonitor(pair).measure(x, y)
    model.core = NaNCore(model.core)
    nan = LoopAdapter.from_modules(model, prelude="prelude", body="core", head="coda",
                                   injection="concat", num_loops=4)
    with pytest.raises(FloatingPointError, match="a loop state is NaN or inf, the model diverged;"
                                                 " lower the learning rate"):
        ScaleMonitor(nan).measure(x, y)
    for bad in ({"every": 0}, {"window": 1}, {"every": 2.5}, {"growth_factor": 1.0},
                {"min_carry": 0.0}, {"min_carry": 1.5}):
        with pytest.raises(ValueError, match="ScaleMonitor: "):
            ScaleMonitor(adapter, **bad)
    with pytest.raises(TypeError, match="min_growth .* is no longer part of the verdict; use "
                                        "growth_factor="):
        ScaleMonitor(adapter, min_growth=0.2)
    with pytest.raises(TypeError, match="an InterLoopNorm is part of the model"):
        ScaleMonitor(adapter, controls=[InterLoopNorm(nn.Identity(), 32)])
    with pytest.raises(ValueError, match="step must be a non-negative int"):
        ScaleMonitor(adapter).observe(-1, x, y)
    with pytest.raises(TypeError, match="expected a blindspot.diagnostics.LoopAdapter"):
        ScaleMonitor(model)


GROW = (1.0, 1.2, 1.5, 2.0, 2.6)  # growth of a state at steps 0, 10, 20, 30, 40
BLIND, SEEN = 1e-7, 1e-2  # radial shares: at the float32 floor; what a raw readout puts there
CARRY, NONE = [0.9], [0.0]  # a pre-norm residual loop's carry; a post- or inter-loop norm's
# name: ((‖H_1‖, ‖H_K‖, radial share, carry of loops 2..K) per measurement, step it warns at)
VERDICT_CASES = {
    # the blind spot: fires once a state doubled while blind and carried
    "blind, the loops grow the scale": ([(10, 10 * g, BLIND, CARRY) for g in GROW], 30),
    "blind, the first loop grows as fast (old rule: silent)": (
        [(10 * g, 10 * g, BLIND, CARRY) for g in GROW], 30),
    "blind, every loop grows while ‖H_K‖/‖H_1‖ falls (the ALBERT pre-LN miss)": (
        [(3 * g ** 2, 9 * g, BLIND, CARRY) for g in GROW], 20),
    "blind, dips then grows: counted from the smallest scale": (
        [(10, 10 * g, BLIND, CARRY) for g in (1.0, 0.6, 0.8, 1.3, 1.4)], 30),
    # what it must not fire on
    "post-norm or inter-loop norm: grows, blind, carries nothing": (
        [(10 * g, 10 * g, BLIND, NONE) for g in GROW], None),
    "a one-loop model: grows, blind, no loop to carry to": (
        [(10 * g, 10 * g, BLIND, []) for g in GROW], None),
    "a scale-visible loss: the loops grow it, and a loss sees it": (
        [(10, 10 * g, SEEN, CARRY) for g in GROW], None),
    "parameters grow, the state does not": ([(10, 10, BLIND, CARRY)] * 5, None),
    "blind, the scale shrinks": ([(10, 10 / g, BLIND, CARRY) for g in GROW], None),
    "blind, growing by less than 2x": ([(10, 10 * g, BLIND, CARRY) for g in GROW[:3]]
                                       + [(10, 19.5, BLIND, CARRY)] * 2, None),
    "seen inside the run, then blind: counted from the last seen": (
        [(10, 10 * g, r, CARRY) for g, r in zip(GROW, (BLIND, BLIND, SEEN, BLIND, BLIND),
                                                 strict=True)], None),
}


@pytest.mark.parametrize("case", list(VERDICT_CASES))
def test_verdict(small_foreign, case, monkeypatch):
    import warnings

    series, warns_at = VERDICT_CASES[case]
    adapter = small_foreign()[1]
    monitor = ScaleMonitor(adapter, every=10)
    rows = iter(series)

    def measure(idx, targets):
        s1, sK, share, carry = next(rows)
        loops = 1 + len(carry)
        scales = [s1, sK][-loops:]
        return {"loops": loops, "tokens": 1, "scale_mean": scales, "scale_p99": scales,
                "loop_ratio": sK / s1, "carry": carry, "radial_share": [share] * loops,
                "dtype": "float32", "round_off_floor": 1.2e-7, "blind_threshold": 1e-4}

    monkeypatch.setattr(monitor, "measure", measure)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BlindSpotWarning)
        for i in range(len(series)):
            monitor.observe(10 * i, None, None)
    assert monitor.fired_at == warns_at
    assert len(caught) == (warns_at is not None)
    if warns_at is not None:  # the warning names the loop, its growth and the steps
        rec = monitor.records[warns_at // 10]
        text = str(caught[0].message)
        assert f"‖H_{rec['growth_loop']}‖ (loop {rec['growth_loop']} of" in text
        assert f"grew {rec['growth']:.2f}x, from" in text and rec["growth"] >= 2
    assert monitor.records[1]["growth_rate"] == pytest.approx(
        math.log(series[1][1] / series[0][1]) / 10)  # two points: the slope through them


def test_carry_separates_a_carrying_loop_from_a_normalized_one(small_foreign, byte_tokens):
    """Measured, not assumed: the example's pre-norm residual core hands on most of its input's
    scale; wrapped in an inter-loop norm it hands on only the ε-leak; one loop has none."""
    tk = byte_tokens()
    x, y = tk[:, :-1], tk[:, 1:]
    model, adapter = small_foreign()
    plain = ScaleMonitor(adapter).measure(x, y)["carry"]
    model.core = InterLoopNorm(model.core, 32, injection="concat")
    normed = ScaleMonitor(replace(adapter, step=_concat_step(model))).measure(x, y)["carry"]
    one = ScaleMonitor(replace(adapter, num_loops=1)).measure(x, y)["carry"]
    assert len(plain) == len(normed) == 3 and one == []
    assert min(plain) > 0.25  # the default min_carry
    # ε = 1e-6 against ms(h) ~ 1: the leak is ~1e-6 of a doubling, far below any threshold
    assert max(abs(c) for c in normed) < 1e-4


def _concat_step(model):
    return lambda x, e: model.core(torch.cat([x, e], dim=-1))


def _grown_monitor(model, adapter, grow, tk, steps=4):
    """Observe ``steps`` times, calling ``grow(model)`` (a parameter change) before each
    observation after the first; returns the monitor."""
    import warnings

    monitor = ScaleMonitor(adapter, every=1)
    with warnings.catch_warnings(record=True), torch.no_grad():
        warnings.simplefilter("always", BlindSpotWarning)
        for step in range(steps):
            if step:
                grow(model)
            monitor.observe(step, tk[:, :-1], tk[:, 1:])
    return monitor


def _scale_inject(model):
    """Grow the parameters that make the core's state: its input projection, 1.5x a call."""
    inject = model.core.body.inject if isinstance(model.core, InterLoopNorm) else \
        model.core.inject
    inject.weight.mul_(1.5)
    inject.bias.mul_(1.5)


def test_parameter_growth_fires_through_a_carrying_loop_not_through_an_inter_loop_norm(
        small_foreign, byte_tokens):
    tk = byte_tokens()
    model, adapter = small_foreign()
    carried = _grown_monitor(model, adapter, _scale_inject, tk)
    model, adapter = small_foreign()
    model.core = InterLoopNorm(model.core, 32, injection="concat")
    normed_adapter = LoopAdapter.from_modules(model, prelude="prelude", body="core",
                                              head="coda", injection="concat", num_loops=4)
    normed = _grown_monitor(model, normed_adapter, _scale_inject, tk)
    for mon in (carried, normed):  # both blind (LayerNorm coda) and both states grew
        assert all(r["blind"] for r in mon.records)
        assert mon.records[-1]["growth"] >= 2
    assert carried.fired_at is not None
    assert normed.fired_at is None and not any(r["carried"] for r in normed.records)


def test_a_one_loop_model_never_warns():
    run = monitored_run("norm", model={"num_loops": 1}, steps=20, every=5)
    assert run["fired_at"] is None and not run["warnings"]
    assert all(r["carry"] == [] and r["blind"] for r in run["records"])
    assert max(r["growth"] for r in run["records"]) >= 2  # its state did double, blind


def test_monitor_is_deterministic():
    a, b = (monitored_run("norm", steps=10, every=5)["records"] for _ in range(2))
    assert a == b

"""The "fix it in your own model" example runs: the monitor warns on the uncontrolled
Huginn-style model, each control stops the growth, and the table is written with a run card."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def example(load):
    """examples/control_foreign_model.py, loaded afresh for each test."""
    return load(ROOT / "examples" / "control_foreign_model.py")


@pytest.mark.slow
def test_example_warns_without_a_control_and_not_with_one(example, tmp_path, capsys):
    out, logs = tmp_path / "out", tmp_path / "logs"
    # measured every 20 steps, the uncontrolled run warns at step 20: its last state has
    # doubled since step 0 (blind, and the loops hand the scale on)
    result = example.main(["--steps", "80", "--every", "20", "--out", str(out),
                              "--log-dir", str(logs)])
    printed = capsys.readouterr().out
    assert f"wrote {out / 'controls.json'}" in printed
    assert json.loads((out / "controls.json").read_text()) == json.loads(json.dumps(result))
    rows = {r["control"]: r for r in result["rows"]}
    assert list(rows) == ["none", "remove_radial", "freeze_scale", "norm_penalty",
                          "raw_readout", "inter_loop_norm"]
    assert rows["none"]["warning_step"] == 20 and rows["none"]["warnings"] == 1
    fired = result["monitor"]["none"][1]
    assert fired["growth"] >= 2 and fired["carried"] and fired["blind"]
    for name in ("norm_penalty", "raw_readout", "inter_loop_norm"):
        assert rows[name]["warning_step"] is None and rows[name]["warnings"] == 0
        # the growth stops: less scale than the uncontrolled run, and no loop amplification
        assert rows[name]["scale_K"] < rows["none"]["scale_K"]
        last = result["monitor"][name][-1]
        assert last["loop_ratio"] < result["monitor"]["none"][-1]["loop_ratio"]
    assert rows["freeze_scale"]["scale_K"] < rows["none"]["scale_K"]
    for name, records in result["monitor"].items():
        lines = [json.loads(x) for x in (logs / f"{name}.jsonl").read_text().splitlines()]
        assert lines == records and [r["step"] for r in lines] == [0, 20, 40, 60, 80]
    card = result["run_card"]
    assert card["seed"] == 0 and card["config"]["steps"] == 80 and card["wall_time_s"] > 0


def test_control_figure_draws_the_committed_shape_and_names_its_command(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from blindspot.figures import MissingResults, draw
    from blindspot.figures.control import draw_control

    rec = [{"step": s, "scale_mean": [1.0, 1.0 + s], "loop_ratio": 1.0 + s} for s in (0, 1)]
    rows = [{"control": "none", "at": "training", "warning_step": 1, "ppl": [3.0, 2.0]},
            {"control": "freeze_scale", "at": "inference", "warning_step": None,
             "ppl": [3.0, 2.5]}]
    fig = draw_control({"rows": rows, "monitor": {"none": rec}})
    a, _, c = fig.axes
    assert len(a.lines) == 2 and len(c.lines) == 2  # the run and the warning; two rows
    assert c.lines[1].get_linestyle() == "--"  # a control at inference is dashed
    plt.close(fig)
    with pytest.raises(ValueError, match="rows and monitor records"):
        draw_control({"rows": [], "monitor": {}})
    with pytest.raises(MissingResults, match="python examples/control_foreign_model.py"):
        draw("control-cpu", tmp_path)


def test_overhead_benchmark_runs_and_writes_its_ratios(load, tmp_path):
    import torch

    bench = load(ROOT / "benchmarks" / "monitor_overhead.py")
    threads = torch.get_num_threads()
    try:
        out = bench.main(["--repeats", "1", "--json", str(tmp_path / "o.json")])
    finally:
        torch.set_num_threads(threads)
    assert json.loads((tmp_path / "o.json").read_text()) == json.loads(json.dumps(out))
    assert len(out["results"]) == 2 and out["run_card"]["config"]["repeats"] == 1
    for r in out["results"].values():  # ratios only: timings are never asserted
        assert set(r["overhead"]) == {"fastest wall", "median CPU", "median wall"}
        assert all(v > 0 for v in r["overhead"].values())


def test_the_committed_monitor_labels_are_consistent_and_the_monitor_errs_nowhere(load):
    """results/control-cpu/monitor_labels.json (examples/monitor_labels.py): each label follows
    the stated rule from its row, the counts are the rows', and the monitor has no false
    positive or negative on it, where the ratio rule before it missed the pre-LN ALBERT."""
    labels = load(ROOT / "examples" / "monitor_labels.py")
    result = json.loads((ROOT / "results" / "control-cpu" / "monitor_labels.json").read_text())
    rows = result["rows"]
    blind_by_construction = {"raw readout": False, "norm penalty": False,
                             "norm_penalty": False, "raw_readout": False}
    carried_by_construction = {"inter-loop norm": False, "inter_loop_norm": False,
                               "post-ln": False}
    for r in rows:
        want = (blind_by_construction.get(r["control"], True)
                and carried_by_construction.get(r["control"], True)
                and r["loops"] >= 2 and r["state_growth"] >= labels.LABEL_GROWTH)
        assert r["label"] == want, r
    assert result["monitor"] == labels.counts(rows, "warned")
    assert result["old_rule"] == labels.counts(rows, "old_rule_warned")
    assert result["monitor"]["false_positives"] == result["monitor"]["false_negatives"] == 0
    assert {(r["model"], r["control"]) for r in rows if r["label"] and not r["old_rule_warned"]} \
        == {("HF ALBERT", "pre-ln")}
    assert sum(r["label"] for r in rows) >= 3 and len(rows) == 11


def test_ratio_rule_is_the_rule_before(load):
    """The old rule recomputed: it warns where ‖H_K‖/‖H_1‖ rises 20 % over four blind
    measurements, and not where every loop grows and the ratio falls."""
    labels = load(ROOT / "examples" / "monitor_labels.py")

    def recs(s1, sK):
        return [{"step": 10 * i, "scale_mean": [a, b], "loop_ratio": b / a,
                 "radial_share": [1e-7], "blind_threshold": 1e-4}
                for i, (a, b) in enumerate(zip(s1, sK, strict=True))]

    grow = [1.0, 1.2, 1.5, 2.0, 2.6]
    assert labels.ratio_rule(recs([10] * 5, [10 * g for g in grow])) == 30
    assert labels.ratio_rule(recs([3 * g * g for g in grow], [9 * g for g in grow])) is None
    assert labels.grew(recs([10] * 5, [10 * g for g in grow])) == pytest.approx(2.6)

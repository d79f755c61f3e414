"""The claims on ‖H_K‖ over training, on synthetic predictions and measurements that must
pass or be refuted; and the sensitivity study and the prediction end to end at toy size."""

import json
import time

import pytest

from blindspot.checks import scale_growth as T
from blindspot.claims import Skip

EARLY, LATE = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"


def _pred(targets, floor=100.0):
    return {"fitted": {"floor": floor, "tolerated_logit": 1.5, "rate": 1e4},
            "run_card": {"created_utc": EARLY}, "targets": targets,
            "gpu": {"paper_scale_K": 39207.0}}


def _target(regime, scale, steps=(10, 20)):
    return {"regime": regime, "steps": list(steps), "scale_K": list(scale)}


def _meas(scale, final=None, when=LATE, steps=(10, 20)):
    return {"steps": list(steps), "scale_K": list(scale),
            "final": scale[-1] if final is None else final, "created_utc": when}


def test_prediction_claim_passes_and_refutes():
    pred = _pred({"a": _target("self_logit", [500, 900]), "b": _target("floor", [100, 100]),
                  "44m/paper_run": _target("self_logit", [1, 1])})
    ok = T.judge_predictions(pred, {"a": _meas([300, 1000]), "b": _meas([90, 190])})
    assert ok.passed and "x1.11" in ok.evidence  # 900 vs 1000
    # a final off by more than 2x in the self-logit regime
    out = T.judge_predictions(pred, {"a": _meas([300, 2000]), "b": _meas([90, 190])})
    assert not out.passed and "MISSED a" in out.evidence
    # a floor-regime run above 2f
    out = T.judge_predictions(pred, {"a": _meas([300, 1000]), "b": _meas([90, 201])})
    assert not out.passed and "MISSED b" in out.evidence
    # a run older than the prediction cannot confirm it
    out = T.judge_predictions(pred, {"a": _meas([300, 1000], when=EARLY), "b": _meas([9, 9])})
    assert not out.passed and "not newer than the prediction" in out.evidence
    with pytest.raises(Skip, match="not yet measured: b"):
        T.judge_predictions(pred, {"a": _meas([300, 1000])})


def test_paper_run_claim_passes_and_refutes():
    for got, ok in ((13070.0, True), (117000.0, True), (13000.0, False), (7500.0, False)):
        pred = _pred({"44m/paper_run": {**_target("self_logit", [got], steps=[100808]),
                                        "s0": 55.0, "embed_std": 1.0, "width": 512}})
        assert T.judge_paper_run(pred).passed is ok


def test_init_vs_recipe_claim_passes_and_refutes():
    def study(pp, pg, gp, gg):
        return {"arms": {"paper-paper-norm": {"scale_K": pp}, "paper-gpt2-norm": {"scale_K": pg},
                         "gpt2-paper-norm": {"scale_K": gp}, "gpt2-gpt2-norm": {"scale_K": gg}}}

    assert T.judge_init_vs_recipe(study(1000, 800, 100, 150)).passed
    assert not T.judge_init_vs_recipe(study(1000, 200, 100, 150)).passed  # recipe x5
    assert not T.judge_init_vs_recipe(study(1000, 800, 400, 150)).passed  # init only x2.5
    with pytest.raises(Skip, match="lacks"):
        T.judge_init_vs_recipe({"arms": {}})


def test_t3_claim_passes_and_refutes():
    steps = list(range(10, 210, 10))
    sqrt = {"table1-cpu/x": {"steps": steps, "scale_K": [5 * t**0.5 for t in steps]}}
    assert T.judge_t3(sqrt).passed and "x 0.50" in T.judge_t3(sqrt).evidence
    flat = {"table1-cpu/x": {"steps": steps, "scale_K": [900.0] * len(steps)}}
    out = T.judge_t3(flat)
    assert not out.passed and "x 0.00" in out.evidence.replace("-0.00", "0.00")
    with pytest.raises(Skip):
        T.judge_t3({})


@pytest.mark.slow
def test_study_and_prediction_end_to_end_at_toy_size(tmp_path, monkeypatch):
    """Four calibration arms and one target trained tiny, the prediction written before the
    target runs, and the claim reading both; then the target's run predates nothing."""
    from blindspot.experiments import scale_prediction as P
    from blindspot.experiments import sensitivity as S

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BLINDSPOT_CACHE", str(tmp_path / "cache"))
    tiny = ("data.source=generated", "steps=6", "model.d_model=16", "model.n_heads=2",
            "model.n_layers=1", "model.max_seq_len=16", "data.seq_len=16", "data.stride=8",
            "batch_size=4", "eval_windows=4", "log_every=2")
    study = tmp_path / "study"
    S.run("cpu", study, arms=P.CALIBRATION, overrides=tiny, log=lambda s: None)
    with pytest.raises(ValueError, match="lacks calibration arm"):
        P.run("cpu", tmp_path / "p0", study=_partial(study, tmp_path), overrides=tiny,
              gpu=False, log=lambda s: None)
    pred = P.run("cpu", tmp_path / "pred", study=study / "summary.json", overrides=tiny,
                 gpu=False, log=lambda s: None)
    assert set(pred["fitted"]) >= {"tolerated_logit", "floor", "rate"}
    t = pred["targets"]["sensitivity/untied-norm"]
    assert t["regime"] == "floor" and not t["tied"] and len(t["scale_K"]) == len(t["steps"]) == 3
    lr = pred["targets"]["sensitivity/lr3e-4-norm"]
    assert lr["tau"][-1] == pytest.approx(6 * 3e-4)  # τ follows the target's own recipe
    time.sleep(1.1)  # run cards record UTC to the second: the target run is strictly later
    summary = S.run("cpu", study, arms=("untied-norm",), overrides=tiny, log=lambda s: None)
    assert "untied-norm" in summary["arms"] and len(summary["arms"]) == 5
    measured = P.measured_curves(summary, study, tmp_path / "no-grid")
    assert measured["sensitivity/untied-norm"]["created_utc"] > pred["run_card"]["created_utc"]
    assert measured["sensitivity/untied-norm"]["steps"] == [2, 4, 6]


def _partial(study, tmp_path):
    data = json.loads((study / "summary.json").read_text())
    del data["arms"]["embed0.1-norm"]
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(data))
    return path


def test_jump_share_reads_the_curve_at_the_jump_step():
    from blindspot.checks.scale_growth import jump_share

    # at step 20 the curve stands at 80 of its largest 100; a t^1/2 curve would be far lower
    assert jump_share([5, 10, 20, 40, 200], [10, 50, 80, 100, 90]) == 0.8
    steps = list(range(10, 201, 10))
    assert jump_share(steps, [s ** 0.5 for s in steps]) == (20 / 200) ** 0.5

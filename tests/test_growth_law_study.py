"""The growth-law study's committed artefacts agree with the code: the law in the package is
the fit of the committed phase-1 runs, and every prediction file was written by the code that
predicts (its runs are the phase's planned runs)."""

import json
from pathlib import Path

import pytest

from blindspot.experiments import growth_law as g

ROOT = Path(__file__).resolve().parents[1] / "results" / "growth-law"


def test_the_committed_law_is_the_fit_of_the_committed_phase1_runs():
    fitted = g.fit_law(g.load_summary(ROOT / "summary.json"))
    for name, value in g.LAW.__dict__.items():
        if name == "domain":
            assert {k: pytest.approx(v) for k, v in fitted.domain.items()} == value
        else:
            # the same least squares on the same numbers: only summation order may differ
            assert getattr(fitted, name) == pytest.approx(value, rel=1e-9), name


@pytest.mark.parametrize("phase", [1, 2])
def test_each_prediction_file_covers_its_phase(phase):
    pred = json.loads((ROOT / f"predictions-phase{phase}.json").read_text())
    planned = {name for name, _, _ in g.planned(phase)}
    if phase == 2:
        planned |= set(g.FIT_EXCLUDES)
    assert set(pred["runs"]) == planned
    assert pred["run_card"]["created_utc"]


def test_the_fit_reads_only_runs_that_learned():
    summary = g.load_summary(ROOT / "summary.json")
    used = {n for n, _ in g.law_runs(summary, 1, g.FIT_EXCLUDES, names=True)}
    for name in used:
        r = summary["runs"][name]
        assert r["ce_K"] <= r["unigram_entropy"] - g.FIT_MARGIN
    assert not used & set(g.FIT_EXCLUDES)


REHEARSE = ("data.source=generated", "steps=4", "eval_windows=2", "log_every=1")


def test_the_study_refuses_to_train_before_its_predictions(tmp_path):
    with pytest.raises(ValueError, match="predict first"):
        g.run(out=tmp_path, phase=1, arms=("d64",), overrides=REHEARSE,
              scratch=tmp_path / "runs", log=lambda *_: None)


def test_rehearsal_predict_then_train_then_summarize(tmp_path):
    """The study's code path end to end on tiny runs: predict phase 1, train one arm, and
    the summary holds every loop's curve, the mechanism record and the learning flag."""
    pred = g.predict(1, tmp_path, REHEARSE, log=lambda *_: None)
    assert {"d64-seed0", "d64-seed1"} <= set(pred["runs"])
    summary = g.run(out=tmp_path, phase=1, arms=("d64",), overrides=REHEARSE,
                    scratch=tmp_path / "runs", log=lambda *_: None)
    assert set(summary["runs"]) == {"d64-seed0", "d64-seed1"}
    r = summary["runs"]["d64-seed0"]
    assert r["d_model"] == 64 and r["steps_total"] == 4 and len(r["curve_scale"]) == 4
    assert len(r["curve_scale"][0]) == r["num_loops"]
    m = r["evals"][-1]["mechanism"]
    assert len(m["alpha"]) == r["num_loops"]
    assert m["scale_K_tokens"]["max"] >= m["scale_K_tokens"]["median"] > 0
    assert r["learns"] == (r["ce_K"] < r["unigram_entropy"])
    assert summary["phase_wall_time_s"]["1"] > 0

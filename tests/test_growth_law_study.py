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

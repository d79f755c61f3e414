"""The diagnostics claims pass, and each check can fail: its contrast is tested."""

from dataclasses import replace

import torch

from blindspot.checks import diagnostics as checks
from blindspot.checks import load_all
from blindspot.checks.small import small_model, small_tokens
from blindspot.diagnostics import adapter_for, record


def test_quick_diagnostics_claims_pass():
    claims = load_all()
    for cid in ("diagnostics.recorder_matches_forward", "diagnostics.radial_share_blind_spot",
                "diagnostics.lemma2_identity_and_orders"):
        assert claims[cid].tier == "quick"
        out = claims[cid].check()
        assert out.passed, out.evidence


def test_recorder_check_sees_a_wrong_adapter():
    model = small_model(inter_loop_norm=True)
    tk = small_tokens()
    wrong = replace(adapter_for(model), carry=None)  # forgets the inter-loop norm
    with torch.no_grad():
        ours = record(wrong, tk[:, :-1])
        own = model(tk[:, :-1], return_trace=True).trace
    assert (ours.logits[-1] - own.logits[-1]).abs().max() > 1e-3


def test_radial_check_contrast_raw_readout_is_not_blind():
    raw = checks.radial_shares("raw", 0.0)
    assert raw["max_share"] > 100 * checks.F64_TOL  # the 'blind' criterion fails on raw
    leak = checks.radial_shares("norm", 1e-2)
    assert leak["min_share"] > 100 * checks.F64_TOL  # ε > 0 leaks, by its closed form
    assert leak["closed_form_error"] <= checks.F64_TOL


def test_lemma2_slopes_are_those_of_the_expansion():
    s = checks.expansion_slopes(log10_scales=(2.0, 4.0))
    assert abs(s["radial_expansion_error"] + 1) < 0.1
    assert abs(s["angular_expansion_error"] + 2) < 0.1
    # at scales comparable to the update (10^0 ‖Δ‖) the expansion is not yet asymptotic:
    # the slope measured from there is off, which is what the claim's ±0.1 band detects
    near = checks.expansion_slopes(log10_scales=(-1.0, 0.0))
    assert abs(near["radial_expansion_error_2nd"] + 2) > 0.1


def _grid(tmp_path, monkeypatch, tiny_checkpoint, conditions):
    """A results folder whose CPU grid holds tiny untrained checkpoints of ``conditions``,
    diagnosed by the one command that writes the committed tables."""
    from blindspot.cli import main as blindspot

    results = tmp_path / "results"
    checkpoints = results / "table1-cpu" / "checkpoints"
    monkeypatch.setenv("BLINDSPOT_RESULTS", str(results))
    for c in conditions:
        tiny_checkpoint(checkpoints / f"{c}.pt", condition=c)
    assert blindspot(["diagnose", str(checkpoints), "--out", str(results / "diagnostics-cpu"),
                      "--quiet", "--no-figure"]) == 0
    return results


def test_grid_claims_skip_naming_the_missing_table(tmp_path, monkeypatch, tiny_checkpoint):
    import pytest

    from blindspot.claims import Skip

    _grid(tmp_path, monkeypatch, tiny_checkpoint, ["per_loop-norm"])
    with pytest.raises(Skip, match=r"diagnostics-cpu/terminal-norm/radial_gradient\.json.*"
                                   r"blindspot diagnose results/table1-cpu/checkpoints"):
        checks.grid_radial_share()


def test_grid_claims_read_the_tables_the_diagnose_command_writes(tmp_path, monkeypatch,
                                                                 tiny_checkpoint):
    _grid(tmp_path, monkeypatch, tiny_checkpoint, ["per_loop-norm", "terminal-norm"])
    lemma2, clamp = checks.grid_lemma2(), checks.grid_clamp()
    # an untrained tiny model: the identity holds, but there is no blind-spot growth to
    # see, so the growth criterion of the claim must fail (the claim can fail)
    assert "identity residual" in lemma2.evidence and not lemma2.passed
    assert "loop-K scale" in clamp.evidence and not clamp.passed  # no growth to remove
    assert checks.grid_tables("per_loop-norm")["lemma2"].meta["trained_loops"] == 2


def test_committed_grid_tables_come_from_the_committed_checkpoints():
    """The claims read ``results/diagnostics-cpu/``; its run cards name the SHA-256 of the
    checkpoint each table was computed from, which must be the committed checkpoint's."""
    import json

    from blindspot.experiments.diagnose import sha256_file
    from blindspot.figures import results_root

    root = results_root()
    for c in checks.GRID_CONDITIONS:
        ckpt = root / "table1-cpu" / "checkpoints" / f"{c}.pt"
        for t in checks.GRID_TABLES:
            card = json.loads((root / "diagnostics-cpu" / c / f"{t}.json").read_text())
            assert card["run_card"]["config"]["checkpoint_sha256"] == sha256_file(ckpt), (c, t)


def test_lemma2_evidence_passes_lemma2_and_fails_without_growth(synthetic_trace):
    """Rows of a synthetic trace that follows the toy recurrence (a = 2, d⊥ = 0.5: Lemma 2
    exactly) pass; the same trace without radial increment (a = 0: √k growth, too slow) fails."""
    from blindspot.diagnostics.lemma2 import lemma2_table

    ok, evidence = checks.lemma2_evidence(lemma2_table(synthetic_trace([2.0] * 8)).rows)
    assert ok, evidence
    ok, evidence = checks.lemma2_evidence(lemma2_table(synthetic_trace([0.0] * 8)).rows)
    assert not ok and "s x1.1" in evidence  # √k growth: too slow, and a_k ≈ 0 ± round-off


def test_toy_claims_read_a_refused_protocol_as_off_by_name(monkeypatch, synthetic_trace):
    import json

    from blindspot.diagnostics.table import Table
    from blindspot.diagnostics.toy_fit import toy_prediction_table

    trace = synthetic_trace([2.0] * 8)
    fixed = toy_prediction_table(trace, 4, rho=1.0)  # both protocols within the target
    free = toy_prediction_table(trace, 4)  # ρ not fixed: the 2-loop early window is refused
    back = Table.from_json(json.loads(json.dumps(free.to_json())))  # as committed: NaN -> null
    assert back.meta["worst_rel_error"]["early"] is None
    monkeypatch.setattr(checks, "_all_grid", lambda conditions: {
        "fixed": {"toy_prediction": fixed}, "free": {"toy_prediction": back}})
    early = checks._toy_outcome("early", "the predicted loops")
    assert not early.passed and "free refused" in early.evidence
    assert "Off: free: early: fit on loops 1..2: refused" in early.evidence
    assert "Off: fixed" not in early.evidence and "depth:" not in early.evidence  # its own note
    assert checks._toy_outcome("depth", "the extrapolated loops").passed

"""The diagnostics claims pass, and each check can fail: its contrast is tested."""

from dataclasses import replace

import torch

from blindspot.checks import diagnostics as checks
from blindspot.claims import load_all
from blindspot.diagnostics import adapter_for, record


def test_quick_diagnostics_claims_pass():
    claims = load_all()
    for cid in ("diagnostics.recorder_matches_forward", "diagnostics.radial_share_blind_spot",
                "diagnostics.lemma2_identity_and_orders"):
        assert claims[cid].tier == "quick"
        out = claims[cid].check()
        assert out.passed, out.evidence


def test_recorder_check_sees_a_wrong_adapter():
    model = checks.small_model(inter_loop_norm=True)
    tk = checks.small_tokens()
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

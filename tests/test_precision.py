"""blindspot.symbolic.precision measures the round-off floors of the identities; these tests
pin the qualitative facts documented in proofs/precision.md (floors ordered by dtype,
breakdown outside the float32 exponent range, the ε-leak hidden under the float32 floor)."""

from __future__ import annotations

import math

import pytest

from blindspot.symbolic import precision

# float32 unit round-off 6e-8 and bf16 4e-3 (proofs/precision.md): a floor measured on n = 64
# sums lies within ~2 decades of its unit round-off on either side; the bands below are those
# decades.
BANDS = {"float64": (0.0, 1e-14), "float32": (1e-10, 1e-6), "bfloat16": (1e-5, 1e-1)}


@pytest.fixture(scope="module")
def res():
    return precision.measure(seeds=2)


def _inv(res, dtype, scale):
    return next(r for r in res["invariance"] if r["dtype"] == dtype and r["scale"] == scale)


def test_radial_share_floor_is_ordered_by_dtype(res):
    for dtype, (lo, hi) in BANDS.items():
        share = _inv(res, dtype, 1.0)["radial_share"]
        assert lo <= share <= hi, (dtype, share)


def test_float64_identities_hold_over_all_scales(res):
    for c in precision.SCALES:
        r = _inv(res, "float64", c)
        # a few ulps of the float64 unit round-off 1.1e-16
        assert r["invariance_error"] <= 1e-15 and r["radial_share"] <= 1e-15, r


def test_low_precision_breaks_outside_its_exponent_range(res):
    for dtype in ("float32", "bfloat16"):
        for c in (1e-30, 1e20, 1e30):
            r = _inv(res, dtype, c)
            broken = math.isnan(r["radial_share"]) or math.isnan(r["invariance_error"]) \
                or r["invariance_error"] > 0.5
            assert broken, r


def test_eps_leak_is_exact_in_float64_and_hidden_under_the_float32_floor(res):
    for r in res["leak"]:
        # float64 measures the closed form: agreement to its own floor (~1e-16 of the share scale)
        assert abs(r["measured_float64"] - r["exact_share"]) <= 1e-15 + 1e-6 * r["exact_share"]
    big = [r for r in res["leak"] if r["scale"] >= 100]
    # at ms(h) >= 1e4 the leak (<= 2.4e-11) is under float32's floor: the measurement is the floor
    assert all(r["measured_float32"] > 10 * r["exact_share"] for r in big)


def test_naive_angular_step_cancels_in_float32_the_stable_form_does_not(res):
    r = next(r for r in res["lemma2"] if r["dtype"] == "float32" and r["s_over_delta"] == 1e4)
    assert r["angular_naive_error"] > 1e-2
    # the stable form keeps float32's relative accuracy (~1e-7)
    assert r["angular_stable_error"] < 1e-6


def test_markdown_and_cli(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert precision.main(["--seeds", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| scale c |" in text and "bfloat16" in text
    assert "run_card" in out.read_text()
    with pytest.raises(SystemExit):
        precision.main(["--seeds", "0"])

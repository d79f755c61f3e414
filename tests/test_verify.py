"""The verdict machinery: PASS/FAIL/SKIPPED, exit codes, and clear errors on bad arguments."""

import json

import pytest

from blindspot import claims as registry
from blindspot import verify
from blindspot.claims import Claim, Outcome, Skip


def _claim(check, tier="quick"):
    return Claim("T.x", "a statement", "test", tier, check)


def test_run_claim_maps_outcomes_to_verdicts():
    assert verify.run_claim(_claim(lambda: Outcome(True, "ok"))).verdict == "PASS"
    assert verify.run_claim(_claim(lambda: Outcome(False, "bad"))).verdict == "FAIL"

    def skip():
        raise Skip("no GPU")

    v = verify.run_claim(_claim(skip))
    assert (v.verdict, v.evidence) == ("SKIPPED", "no GPU")


def test_a_crashing_or_malformed_check_is_a_failure_with_its_cause():
    def crash():
        raise ZeroDivisionError("boom")

    v = verify.run_claim(_claim(crash))
    assert v.verdict == "FAIL" and "ZeroDivisionError: boom" in v.evidence
    v = verify.run_claim(_claim(lambda: True))
    assert v.verdict == "FAIL" and "not Outcome" in v.evidence


def test_unknown_tier_and_unknown_id_are_errors_that_list_valid_choices(capsys):
    assert verify.main(["--tier", "fast"]) == 2
    assert "valid tiers: quick, full, gpu" in capsys.readouterr().err
    assert verify.main(["--only", "no.such.claim"]) == 2
    err = capsys.readouterr().err
    assert "unknown claim id(s): no.such.claim" in err and "Valid ids" in err


def test_exit_status_is_nonzero_on_any_fail(monkeypatch, tmp_path, capsys):
    fake = {
        "A.pass": Claim("A.pass", "passes", "t", "quick", lambda: Outcome(True, "e")),
        "B.fail": Claim("B.fail", "fails", "t", "quick", lambda: Outcome(False, "e")),
        "C.full": Claim("C.full", "full tier", "t", "full", lambda: Outcome(False, "e")),
    }
    monkeypatch.setattr(verify, "all_claims", lambda: fake)
    out = tmp_path / "v.json"
    assert verify.main(["--json", str(out)]) == 1
    table = capsys.readouterr().out
    assert "B.fail" in table and "1 passed, 1 failed, 1 skipped" in table
    data = json.loads(out.read_text())
    assert [v["verdict"] for v in data["verdicts"]] == ["PASS", "FAIL", "SKIPPED"]
    assert "git_revision" in data["run_card"]
    assert verify.main(["--only", "A.pass"]) == 0


def test_no_registered_claims_is_a_failure(monkeypatch):
    monkeypatch.setattr(verify, "all_claims", lambda: {})
    assert verify.main([]) == 1


def test_claim_registration_rejects_bad_tier():
    with pytest.raises(ValueError, match="valid tiers"):
        registry.claim("X.y", "s", paper_ref="p", tier="slow")


def test_update_readme_writes_the_table_between_the_markers(tmp_path, capsys):
    doc = tmp_path / "README.md"
    doc.write_text(f"# x\n\n{verify.BEGIN}\nSTALE-TABLE\n{verify.END}\n\nafter\n")
    assert verify.main(["--update-readme", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# x\n\n") and text.endswith(f"{verify.END}\n\nafter\n")
    assert "| `S2.euler` |" in text and "STALE-TABLE" not in text
    assert "updated" in capsys.readouterr().out
    assert verify.main(["--update-readme", str(doc)]) == 0
    assert "already current" in capsys.readouterr().out
    (tmp_path / "plain.md").write_text("no markers\n")
    assert verify.main(["--update-readme", str(tmp_path / "plain.md")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no <!-- claims:begin -->" in err

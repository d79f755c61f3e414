"""The verdict machinery: PASS/FAIL/SKIPPED, exit codes, and clear errors on bad arguments."""

import json

import pytest

from blindspot import claims as registry
from blindspot import verify
from blindspot.claims import Claim, Outcome, Skip


def _claim(check, tier="quick", source="package"):
    return Claim("T.x", "a statement", "test", tier, check, source=source)


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
        "A.pass": Claim("A.pass", "passes", "t", "quick", lambda: Outcome(True, "e"),
                        source="paper"),
        "B.fail": Claim("B.fail", "fails", "t", "quick", lambda: Outcome(False, "e"),
                        source="package"),
        "C.full": Claim("C.full", "full tier", "t", "full", lambda: Outcome(False, "e"),
                        source="paper"),
    }
    monkeypatch.setattr(verify, "all_claims", lambda: fake)
    out = tmp_path / "v.json"
    assert verify.main(["--json", str(out)]) == 1
    table = capsys.readouterr().out
    assert "B.fail" in table
    assert ("1 passed, 1 failed (0 paper claims refuted, 1 package prediction failed), "
            "1 skipped") in table
    data = json.loads(out.read_text())
    assert [v["verdict"] for v in data["verdicts"]] == ["PASS", "FAIL", "SKIPPED"]
    assert [v["source"] for v in data["verdicts"]] == ["paper", "package", "paper"]
    card = data["run_card"]
    assert card["wall_time_s"] >= card["checks_s"] >= 0 and card["cpus"] >= 1
    assert "load_1min" in card
    assert "git_revision" in data["run_card"]
    assert verify.main(["--only", "A.pass"]) == 0


def test_list_names_each_claims_tier_and_source(capsys):
    assert verify.main(["--list"]) == 0
    lines = {line.split()[0]: line.split()[1:3] for line in capsys.readouterr().out.splitlines()}
    assert lines["S2.euler"] == ["quick", "paper"]
    assert lines["growth.scale_prediction"] == ["full", "package"]


def test_no_registered_claims_is_a_failure(monkeypatch):
    monkeypatch.setattr(verify, "all_claims", lambda: {})
    assert verify.main([]) == 1


def test_claim_registration_rejects_bad_tier():
    with pytest.raises(ValueError, match="valid tiers"):
        registry.claim("X.y", "s", paper_ref="p", source="paper", tier="slow")


def test_source_is_required_and_only_paper_or_package():
    with pytest.raises(TypeError, match="source"):
        registry.claim("X.y", "s", paper_ref="p")
    with pytest.raises(TypeError, match="source"):
        Claim("X.y", "s", "p", "quick", lambda: Outcome(True, ""))
    for bad in ("Paper", "companion", None):
        with pytest.raises(ValueError, match="source must be one of paper, package"):
            registry.claim("X.y", "s", paper_ref="p", source=bad)
        with pytest.raises(ValueError, match="source must be one of paper, package"):
            Claim("X.y", "s", "p", "quick", lambda: Outcome(True, ""), source=bad)


def test_every_registered_claim_has_a_source_and_companion_theory_is_the_packages():
    from blindspot.checks import load_all
    from blindspot.claims import COMPANION

    claims = load_all()
    assert {c.source for c in claims.values()} == {"paper", "package"}
    # the companion theory is by definition not a statement of the paper
    assert all(c.source == "package" for c in claims.values() if c.paper_ref == COMPANION)
    # the paper's Table 1 effects are the paper's; the models' predictions are the package's
    assert claims["table1.cpu.scale_blowup"].source == "paper"
    assert claims["growth.paper_run_prediction"].source == "package"


def test_failures_are_counted_by_source():
    assert registry.failure_summary([]) == "0 paper claims refuted, 0 package predictions failed"
    assert registry.failure_summary(["paper", "package", "paper", "paper"] + ["package"] * 4) \
        == "3 paper claims refuted, 5 package predictions failed"
    assert registry.failure_summary(["paper", "package"]) == \
        "1 paper claim refuted, 1 package prediction failed"


def test_every_verdict_line_shows_its_whole_evidence():
    evidence = ("refuted: " + " ".join(f"condition_{i}: x{i}.{i} vs needed ≤ x3" for i in
                                       range(40)) + " THE-END")
    v = verify.Verdict("diagnostics.grid_toy_extrapolation", "a statement " * 30, "full",
                       "FAIL", evidence, 1.0, "package")
    for width in (80, 120):
        text = verify.format_table([v], width=width)
        lines = text.splitlines()
        assert all(len(line) <= width for line in lines), width
        start = next(i for i, line in enumerate(lines) if line.startswith("    evidence: "))
        end = next(i for i, line in enumerate(lines) if line.startswith("---") and i > start)
        body = " ".join(line.strip() for line in lines[start:end])
        assert body == "evidence: " + evidence  # every word, in order, nothing cut
        assert "package" in lines[2] and "FAIL" in lines[2]
        summary = " ".join(lines[end + 1:])
        assert "1 failed (0 paper claims refuted, 1 package prediction failed)" in summary


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


def test_the_readme_time_sentence_comes_from_the_committed_run_card(tmp_path, capsys):
    card = {"wall_time_s": 41.4, "checks_s": 11.2, "cpus": 2, "load_1min": 3.16}
    assert verify.time_sentence(card) == ("took 41 s on 2 CPUs at a 1-minute load of 3.2 (11 s "
                                          "of it in the checks, the rest importing them)")
    assert "load" not in verify.time_sentence({**card, "load_1min": None})
    with pytest.raises(ValueError, match="no wall_time_s"):
        verify.time_sentence({"created_utc": "then"})
    doc = tmp_path / "README.md"
    doc.write_text(f"x\n{verify.BEGIN}\n{verify.END}\nquick (its run {verify.TIME_BEGIN}old"
                   f"{verify.TIME_END}; more) y\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "verify-quick.json").write_text(
        json.dumps({"verdicts": [], "run_card": card}))
    assert verify.main(["--update-readme", str(doc)]) == 0
    assert f"{verify.TIME_BEGIN}{verify.time_sentence(card)}{verify.TIME_END}; more) y" in \
        doc.read_text()
    (tmp_path / "results" / "verify-quick.json").unlink()
    assert verify.main(["--update-readme", str(doc)]) == 2  # nothing to state the time from
    assert "no verdict file" in capsys.readouterr().err

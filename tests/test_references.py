"""Every reference in the repository resolves for a reader who has only the repository: no
pointer to a theory note, a shared folder or an issue tracker that is not part of it. A
statement the code relies on is cited by the page of proofs/ or of the book that carries it.

Scans every tracked text file except the committed results (``results/``) and the vendored
MathJax (``book/_static/``); this file is the one place that spells the forbidden patterns.
"""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = ("results/", "book/_static/", "tests/test_references.py")

FORBIDDEN = {
    "a theory note outside the repository (cite the proofs/ page instead)": r"\bTHEORY\b",
    "a folder outside the repository": r"\.\./shared\b|\.\./(\.\./)*[A-Z]+\.md\b",
    "an issue tracker users do not have": r"\b[Ii]ssues? #?\d+|#\d{1,4}\b(?![0-9a-fA-F])|"
                                           r"\bthe issue's\b",
}


def tracked_text_files() -> list[Path]:
    """The files git tracks (a source tree without git: every file but .git and builds)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode()
        names = [n for n in out.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if p.is_file()
                 and not {".git", "_build", ".venv"} & set(p.relative_to(ROOT).parts)]
    files = []
    for name in names:
        if name.startswith(SKIPPED) or not (ROOT / name).is_file():
            continue
        try:
            (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # a binary file (figure, checkpoint)
        files.append(ROOT / name)
    return files


def test_the_scan_reads_the_sources():
    names = {p.relative_to(ROOT).as_posix() for p in tracked_text_files()}
    assert {"README.md", "pyproject.toml", "blindspot/claims.py", "proofs/lemma2.md"} <= names


@pytest.mark.parametrize("why", sorted(FORBIDDEN))
def test_no_reference_leaves_the_repository(why):
    pattern = re.compile(FORBIDDEN[why])
    found = [f"{p.relative_to(ROOT)}:{i}: {line.strip()[:100]}"
             for p in tracked_text_files()
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if pattern.search(line)]
    assert not found, f"{why}:\n  " + "\n  ".join(found)


def test_the_patterns_catch_what_they_forbid():
    """Each pattern finds its target and leaves ordinary prose alone."""
    hits = {why: re.compile(p) for why, p in FORBIDDEN.items()}
    for text in ("see THEORY §5", "(../shared/ENVIRONMENT.md)", "../../THEORY.md",
                 "Issue 5 (diagnostics)", "issue 7's target", "fixed in #12", "the issue's"):
        assert any(p.search(text) for p in hits.values()), text
    for text in ("companion theory (not in the paper)", "proofs/lemma2.md", "#ff0000",
                 "git revision 4f400d9", "../index.html", "no issues were found"):
        assert not any(p.search(text) for p in hits.values()), text

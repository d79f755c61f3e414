"""Run cards: the git revision is dirty when code changed, not when results were written."""

import subprocess

from blindspot.provenance import git_revision


def test_revision_is_dirty_for_code_changes_not_for_result_files(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "results" / "summary.json").write_text("{}")
    (tmp_path / "pkg" / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    clean = git_revision(tmp_path / "pkg")
    assert len(clean) == 40 and not clean.endswith("-dirty")
    (tmp_path / "results" / "summary.json").write_text('{"rerun": true}')
    assert git_revision(tmp_path / "pkg") == clean  # an experiment rewrote its results
    (tmp_path / "pkg" / "code.py").write_text("x = 2\n")
    assert git_revision(tmp_path / "pkg") == clean + "-dirty"
    (tmp_path / "pkg" / "code.py").write_text("x = 1\n")
    (tmp_path / "README").write_text("top-level files count too\n")
    git("add", "README")
    assert git_revision(tmp_path / "pkg") == clean + "-dirty"
    assert git_revision(tmp_path.parent / "no-such-folder") == "unknown"

"""Defaults never write into the repository: every example and ``blindspot diagnose`` write
under ``runs/`` (git-ignored) unless ``--out`` names another folder, so running them with
their defaults from a checkout leaves ``git status`` clean."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
PATH_OPTIONS = ("out", "dir", "path", "json", "log")  # an option whose name holds one writes


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout


def _in_git() -> bool:
    return shutil.which("git") is not None and subprocess.run(
        ["git", "rev-parse", "--git-dir"], cwd=ROOT, capture_output=True).returncode == 0


needs_git = pytest.mark.skipif(not _in_git(), reason="not a git checkout")


def _assert_safe_default(where: str, default: str) -> None:
    path = Path(default)
    assert not path.is_absolute() and path.parts[0] == "runs", (where, default)
    if _in_git():
        # git-ignored, and no tracked file inside it could be overwritten
        assert _git("check-ignore", default).strip() == default, (where, default)
        assert _git("ls-files", "--", default) == "", (where, default)


def test_there_are_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_writes_under_runs_by_default(example, load):
    mod = load(example)
    assert hasattr(mod, "parser"), f"{example.name}: expose parser() so its defaults are checked"
    args = mod.parser().parse_args([])
    written = {k: v for k, v in vars(args).items()
               if any(w in k for w in PATH_OPTIONS) and v is not None}
    assert "out" in written, f"{example.name}: no --out default"
    for key, value in written.items():
        _assert_safe_default(f"{example.name} --{key}", str(value))


def test_figures_write_under_runs_by_default(monkeypatch, tmp_path):
    from blindspot.figures import cli

    seen = {}
    real = cli.argparse.ArgumentParser.parse_args

    def spy(self, args=None, namespace=None):
        ns = real(self, args, namespace)
        seen.update(vars(ns))
        return ns

    monkeypatch.setattr(cli.argparse.ArgumentParser, "parse_args", spy)
    assert cli.main(["--list"]) == 0
    _assert_safe_default("blindspot figures OUTDIR", seen["outdir"])


def test_diagnose_writes_under_runs_by_default():
    from blindspot.experiments.diagnose import default_out

    for ckpt in ("runs/tiny-seed0/checkpoint.pt", "results/table1-cpu/checkpoints/x.pt"):
        for device in ("cpu", "cuda:0"):
            _assert_safe_default(f"diagnose {ckpt}", default_out(ckpt, device).as_posix())


@pytest.mark.slow
@needs_git
def test_running_the_examples_and_diagnose_with_defaults_leaves_git_status_clean(
        tiny_checkpoint, tmp_path):
    status = ["status", "--porcelain", "--untracked-files=all"]
    before = _git(*status)
    made = [ROOT / "runs" / d for d in ("control-cpu", "diagnostics-foreign",
                                        "diagnostics-cpu/defaults-check")]
    # what this test creates and removes again: the outermost folder of each that is new
    fresh = {next(a for a in reversed([p, *p.parents]) if a.is_relative_to(ROOT / "runs")
                  and not a.exists()) for p in made if not p.exists()}
    env = {**os.environ, "BLINDSPOT_CACHE": str(tmp_path / "cache")}
    ckpt = tiny_checkpoint(tmp_path / "defaults-check.pt")
    # every path option at its default; only the amount of work is cut down
    commands = [[sys.executable, "examples/control_foreign_model.py", "--steps", "2",
                 "--every", "1"],
                [sys.executable, "examples/diagnose_foreign_model.py", "--steps", "1"],
                [sys.executable, "-m", "blindspot.cli", "diagnose", str(ckpt), "--quiet",
                 "--no-toy"]]
    try:
        for cmd in commands:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=600)
            assert proc.returncode == 0, (cmd, proc.stderr[-2000:])
        assert (ROOT / "runs/control-cpu/controls.json").is_file()
        assert (ROOT / "runs/diagnostics-foreign/scale.json").is_file()
        assert (ROOT / "runs/diagnostics-cpu/defaults-check/scale.json").is_file()
        assert _git(*status) == before  # no tracked file changed, nothing untracked appeared
    finally:
        for p in fresh:
            shutil.rmtree(p, ignore_errors=True)

"""The figure registry (blindspot.figures) and ``blindspot figures``: one source per figure,
missing results reported with the command that writes them, files written byte-for-byte
reproducibly."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import blindspot.figures as F  # noqa: E402
from blindspot.figures import cli  # noqa: E402


def _line(results: Path):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, float((results / "x.txt").read_text())])
    return fig


@pytest.fixture
def registered(monkeypatch):
    """A test figure that reads results/x.txt, registered for the test only."""
    monkeypatch.setattr(F, "FIGURES", dict(F.FIGURES))
    F.figure("test-line", caption="a line", needs=("x.txt",), command="echo 2 > x.txt")(_line)
    return "test-line"


def test_figure_rejects_bad_names_and_needs_without_command():
    with pytest.raises(ValueError, match="file name"):
        F.figure("a/b", caption="x")
    with pytest.raises(ValueError, match="command"):
        F.figure("ok", caption="x", needs=("r.json",))


def test_missing_results_name_the_command(registered, tmp_path):
    with pytest.raises(F.MissingResults, match="echo 2 > x.txt"):
        F.draw(registered, tmp_path)


def test_unknown_figure_lists_valid_names(registered, tmp_path):
    with pytest.raises(KeyError, match="test-line"):
        F.draw("no-such-figure", tmp_path)


def test_save_png_is_byte_reproducible(registered, tmp_path):
    (tmp_path / "x.txt").write_text("2")
    a = F.save_png(F.draw(registered, tmp_path), tmp_path / "a.png").read_bytes()
    b = F.save_png(F.draw(registered, tmp_path), tmp_path / "b.png").read_bytes()
    plt.close("all")
    assert a[:8] == b"\x89PNG\r\n\x1a\n" and a == b
    assert b"Matplotlib" not in a  # the version stamp would make bytes differ across installs


def test_cli_writes_skips_and_strict_fails(registered, tmp_path, capsys):
    out = tmp_path / "out"
    res = tmp_path / "res"
    res.mkdir()
    assert cli.main([str(out), "--results", str(res), "--only", registered]) == 0
    assert "SKIPPED test-line" in capsys.readouterr().out and not out.exists()
    assert cli.main([str(out), "--results", str(res), "--only", registered, "--strict"]) == 1
    (res / "x.txt").write_text("3")
    assert cli.main([str(out), "--results", str(res), "--only", registered]) == 0
    assert (out / "test-line.png").stat().st_size > 0


def test_cli_bad_arguments(registered, tmp_path, capsys):
    assert cli.main([str(tmp_path), "--only", "nope"]) == 2
    assert cli.main([str(tmp_path), "--results", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_results_root_env_and_search(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "results").mkdir()
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.delenv(F.RESULTS_ENV, raising=False)
    assert F.results_root(tmp_path / "a" / "b") == tmp_path / "results"
    monkeypatch.setenv(F.RESULTS_ENV, str(tmp_path / "a"))
    assert F.results_root() == tmp_path / "a"
    monkeypatch.setenv(F.RESULTS_ENV, str(tmp_path / "missing"))
    with pytest.raises(NotADirectoryError, match="BLINDSPOT_RESULTS"):
        F.results_root()

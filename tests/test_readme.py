"""The README's promises: exactly two commands, CI runs the same test command, and the claims
table is the one the registry generates."""

import re
from pathlib import Path

from blindspot.checks import load_all
from blindspot.claims import markdown_table
from blindspot.verify import (
    BEGIN,
    END,
    QUICK_RESULT,
    TIME_BEGIN,
    TIME_END,
    load_verdicts,
    time_sentence,
)

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _commands():
    return re.findall(r"^## Two commands$.*?```bash\n(.*?)\n```.*?```bash\n(.*?)\n```",
                      README, re.M | re.S)[0]


def test_readme_has_exactly_two_commands_install_and_verify_then_tests():
    install, tests = _commands()
    assert "\n" not in install and "\n" not in tests
    assert install.endswith("python -m blindspot.verify")
    assert tests.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command_verbatim():
    _, tests = _commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci


def test_claims_table_is_current():
    table = README.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert table == markdown_table(load_all()), "run: python -m blindspot.verify --update-readme"


def test_readme_states_the_quick_tier_time_of_the_committed_run():
    # the time a new user waits is the committed run's wall time, imports included, with the
    # load it ran under; `python -m blindspot.verify --update-readme` writes it
    stated = README.split(TIME_BEGIN, 1)[1].split(TIME_END, 1)[0]
    _, card = load_verdicts(ROOT / QUICK_RESULT)
    assert stated == time_sentence(card), "run: python -m blindspot.verify --update-readme"
    assert "10–20 s" not in README


def test_readme_adapter_example_is_the_tested_example():
    """The README's adapter call must stand verbatim in examples/diagnose_foreign_model.py,
    which tests/test_diagnostics_example.py runs, so the README cannot show an API that broke."""
    block = re.search(r"```python\n(.*?)\n```", README, re.S).group(1)
    example = " ".join((ROOT / "examples" / "diagnose_foreign_model.py").read_text().split())
    call = " ".join(block.split("adapter = ", 1)[1].split("tables =")[0].split())
    assert call in example, "README's LoopAdapter.from_modules call differs from the example"
    assert "from blindspot.diagnostics import LoopAdapter, diagnose" in example
    assert "diagnose(adapter, " in block and "diagnose(adapter, " in example


def _section(title):
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_readme_first_run_and_book_name_what_exists(capsys):
    """Every preset the README's first run names loads, ``--preset`` is accepted, and the
    book's install extra and link check are real."""
    import tomllib

    from book_site import main as book_main

    from blindspot.train.cli import main as train_main
    from blindspot.train.config import load_config

    first = _section("A first run")
    assert "`blindspot train tiny`" in first
    names = re.findall(r"`(?:blindspot train |--preset )?((?:tiny|cpu|44m|129m)[\w-]*)`", first)
    assert {"tiny", "cpu-per_loop-norm", "44m"} <= set(names)
    for name in names:
        load_config(name)
    assert train_main(["--preset", "tiny", "--print-config"]) == 0
    book = _section("The book")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert '`pip install -e ".[book]"`' in book and "jupyter-book" in " ".join(extras["book"])
    assert "python book/_ext/book_site.py check-links book/_build/html" in book
    assert book_main(["check-links", str(ROOT / "no-such-dir")]) == 2  # a real command
    tiers = _section("What `verify` checks")
    assert "`--tier full`" in tiers and "`--tier gpu`" in tiers and "FAIL" in tiers

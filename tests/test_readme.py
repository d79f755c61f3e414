"""The README's promises: exactly two commands, CI runs the same test command, and the claims
table is the one the registry generates."""

import re
from pathlib import Path

from blindspot.claims import BEGIN, END, markdown_table

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
    assert table == markdown_table(), "run: python -m blindspot.claims --update README.md"

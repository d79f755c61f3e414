"""``python -m blindspot.verify``: check every registered claim and print a verdict table.

Exit status: 0 when no claim FAILs (SKIPPED is not a failure), 1 on any FAIL, 2 on bad
arguments (unknown tier or claim id). ``--update-readme`` writes the claims table of the
registry into README.md instead (nothing is checked).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blindspot.claims import (
    TIERS,
    Claim,
    Outcome,
    Skip,
    failure_summary,
    markdown_table,
    tier_includes,
)

BEGIN, END = "<!-- claims:begin -->", "<!-- claims:end -->"
"""The markers between which README.md holds the claims table."""

TIME_BEGIN, TIME_END = "<!-- verify-time:begin -->", "<!-- verify-time:end -->"
"""The markers between which README.md states how long the quick tier took
(:func:`time_sentence` of ``results/verify-quick.json``)."""

QUICK_RESULT = Path("results") / "verify-quick.json"
"""The committed quick-tier verdicts, relative to the repository root."""


def all_claims() -> dict[str, Claim]:
    """Every claim of :mod:`blindspot.checks` (imported here, not at the top: the checks
    import torch, which ``--help`` should not pay for)."""
    from blindspot.checks import load_all

    return load_all()


def replace_table(text: str, table: str) -> str:
    """Put ``table`` between the claims markers of a markdown document."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"no {BEGIN} ... {END} markers in the document")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


def time_sentence(card: Mapping[str, Any]) -> str:
    """How long a ``verify --json`` run took, from its run card: ``took 41 s on 2 CPUs at a
    1-minute load of 3.2 (11 s of it in the checks, the rest importing them)``."""
    wall, checks = card.get("wall_time_s"), card.get("checks_s")
    if wall is None or checks is None:
        raise ValueError("the run card has no wall_time_s/checks_s; rewrite it with "
                         "`python -m blindspot.verify --json results/verify-quick.json`")
    load = card.get("load_1min")
    where = f"on {card.get('cpus', '?')} CPUs" + (
        "" if load is None else f" at a 1-minute load of {load:.1f}")
    return (f"took {wall:.0f} s {where} ({checks:.0f} s of it in the checks, the rest "
            f"importing them)")


def replace_between(text: str, begin: str, end: str, content: str) -> str:
    """``text`` with what stands between the markers ``begin`` and ``end`` (on one line or
    several) replaced by ``content``."""
    if begin not in text or end not in text:
        raise ValueError(f"no {begin} ... {end} markers in the document")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}{content}{end}{tail}"


def update_readme(path: str | os.PathLike) -> bool:
    """Write the registry's claims table into the markdown file ``path``, and, where the
    file has the :data:`TIME_BEGIN` markers, how long the committed quick tier took
    (:func:`time_sentence` of :data:`QUICK_RESULT` beside it); True when it changed."""
    from blindspot.provenance import atomic_write_text

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    new = replace_table(text, markdown_table(all_claims()))
    if TIME_BEGIN in new:
        _, card = load_verdicts(path.parent / QUICK_RESULT)
        new = replace_between(new, TIME_BEGIN, TIME_END, time_sentence(card))
    if new != text:
        atomic_write_text(path, new)
    return new != text


@dataclass
class Verdict:
    id: str
    statement: str
    tier: str
    verdict: str  # PASS | FAIL | SKIPPED
    evidence: str
    seconds: float
    source: str  # "paper" or "package" (blindspot.claims.SOURCES)


def run_claim(c: Claim) -> Verdict:
    t0 = time.perf_counter()
    try:
        out = c.check()
        if not isinstance(out, Outcome):
            raise TypeError(f"check of {c.id} returned {type(out).__name__}, not Outcome")
        verdict, evidence = ("PASS" if out.passed else "FAIL"), out.evidence
    except Skip as s:
        verdict, evidence = "SKIPPED", str(s)
    except Exception as e:  # a crashing check is a failure, reported with its cause
        tb = traceback.extract_tb(e.__traceback__)[-1]
        verdict = "FAIL"
        evidence = f"error: {type(e).__name__}: {e} ({tb.filename.split('/')[-1]}:{tb.lineno})"
    return Verdict(c.id, c.statement, c.tier, verdict, evidence, time.perf_counter() - t0,
                   c.source)


def select(claims: dict[str, Claim], only: list[str] | None) -> list[Claim]:
    if only:
        unknown = [i for i in only if i not in claims]
        if unknown:
            raise KeyError(
                f"unknown claim id(s): {', '.join(unknown)}. Valid ids:\n  "
                + "\n  ".join(sorted(claims))
            )
        return [claims[i] for i in only]
    return list(claims.values())


def format_table(verdicts: list[Verdict], width: int | None = None) -> str:
    """The verdict table: per claim one line with its id, verdict, seconds, source and
    statement (cut to fit; on a line of its own when the columns leave no room), then its
    whole evidence, wrapped to ``width`` columns (default:
    the terminal's, at least 80) and indented under the id; never cut. The last line counts
    the verdicts and the FAILs by source (``1 paper claim refuted, 2 package predictions
    failed``)."""
    if width is None:
        width = max(80, shutil.get_terminal_size((100, 24)).columns)
    idw = max([len(v.id) for v in verdicts] + [2])
    head = f"{'id':<{idw}}  {'verdict':<7}  {'s':>6}  {'source':<7}  "
    room = width - len(head)  # for the statement beside the verdict; below it when narrow

    def cut(s: str, n: int) -> str:
        s = " ".join(s.split())
        return s if len(s) <= n else s[: n - 1] + "…"

    wrap = textwrap.TextWrapper(width=width, initial_indent="    evidence: ",
                                subsequent_indent="      ", break_long_words=True,
                                break_on_hyphens=False)
    rule = "-" * width
    lines = [f"{head}claim", rule]
    for v in verdicts:
        row = f"{v.id:<{idw}}  {v.verdict:<7}  {v.seconds:6.2f}  {v.source:<7}"
        if room >= 20:
            lines.append(f"{row}  {cut(v.statement, room)}")
        else:
            lines += [row, "    claim: " + cut(v.statement, width - 11)]
        lines += wrap.wrap(" ".join(v.evidence.split()) or "—")
    counts = {k: sum(v.verdict == k for v in verdicts) for k in ("PASS", "FAIL", "SKIPPED")}
    failed = failure_summary(v.source for v in verdicts if v.verdict == "FAIL")
    lines.append(rule)
    lines += textwrap.wrap(f"{counts['PASS']} passed, {counts['FAIL']} failed ({failed}), "
                           f"{counts['SKIPPED']} skipped in "
                           f"{sum(v.seconds for v in verdicts):.1f} s", width=width)
    return "\n".join(lines)


def load_verdicts(path: str | os.PathLike) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Read a ``python -m blindspot.verify --json PATH`` file: (verdicts by claim id, run card)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no verdict file {path}; write it with "
                                f"`python -m blindspot.verify --json {path}`")
    try:
        data = json.loads(path.read_text())
        verdicts = {v["id"]: v for v in data["verdicts"]}
        card = data["run_card"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a `blindspot.verify --json` file ({type(e).__name__}: "
                         f"{e}); regenerate it with `python -m blindspot.verify --json {path}`"
                         ) from e
    return verdicts, card


def verdict_counts(claims: Iterable[str], verdicts: Mapping[str, Mapping[str, Any]]
                   ) -> dict[str, int]:
    """How many of ``claims`` PASS, FAIL, were SKIPPED, or are missing from ``verdicts``."""
    counts = {"PASS": 0, "FAIL": 0, "SKIPPED": 0, "not run": 0}
    for cid in claims:
        counts[verdicts[cid]["verdict"] if cid in verdicts else "not run"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m blindspot.verify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tier", default="quick",
                   help=f"which claims to run, cumulative: {' < '.join(TIERS)} (default quick)")
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these claim ids")
    p.add_argument("--json", metavar="PATH", help="also write the verdicts (with a run card)")
    p.add_argument("--list", action="store_true", help="list claim ids and exit")
    p.add_argument("--update-readme", nargs="?", const="README.md", metavar="PATH",
                   help="write the claims table into PATH (default README.md) and exit")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    from blindspot.train.threads import available_cpus, load_1min

    load = load_1min()  # before the checks run: what other processes were doing
    if args.tier not in TIERS:
        print(f"error: unknown tier {args.tier!r}; valid tiers: {', '.join(TIERS)}",
              file=sys.stderr)
        return 2
    if args.update_readme is not None:
        try:
            changed = update_readme(args.update_readme)
        except (OSError, ValueError) as e:  # FileNotFoundError: no committed verdicts
            print(f"error: {args.update_readme}: {e}", file=sys.stderr)
            return 2
        print(f"{args.update_readme}: claims table (and quick-tier time) "
              f"{'updated' if changed else 'already current'}")
        return 0
    claims = all_claims()
    if args.list:
        for c in claims.values():
            print(f"{c.id:<40} {c.tier:<6} {c.source:<8} {c.statement}")
        return 0
    try:
        chosen = select(claims, args.only)
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    if not chosen:
        print("error: no claims are registered; a verify that checks nothing must not pass",
              file=sys.stderr)
        return 1
    verdicts = []
    for c in chosen:
        if args.only or tier_includes(args.tier, c.tier):
            v = run_claim(c)
        else:
            v = Verdict(c.id, c.statement, c.tier, "SKIPPED",
                        f"tier {c.tier}: run with --tier {c.tier}", 0.0, c.source)
        verdicts.append(v)
        print(f"  {v.verdict:<7} {v.id} ({v.source}, {v.seconds:.2f} s)", file=sys.stderr,
              flush=True)
    print(format_table(verdicts))
    if args.json:
        from dataclasses import asdict

        from blindspot.provenance import atomic_write_json, run_card

        atomic_write_json(args.json, {
            "verdicts": [asdict(v) for v in verdicts],
            "run_card": run_card(config={"tier": args.tier, "only": args.only}, seed=None,
                                 wall_time_s=time.perf_counter() - t0,
                                 checks_s=sum(v.seconds for v in verdicts),
                                 cpus=available_cpus(), load_1min=load),
        })
    return 1 if any(v.verdict == "FAIL" for v in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())

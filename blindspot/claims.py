"""The claims registry: every claim of the paper (and of the companion theory in proofs/) that
the package checks.

This module holds the data types (:class:`Claim`, :class:`Outcome`, :class:`Skip`), the
registry (:func:`claim`, :func:`registered`) and its renderings (the README table, the book's
claims chapter); it imports no check. A claim is registered with :func:`claim` in a module of
:mod:`blindspot.checks`, whose ``__init__`` lists those modules and whose
:func:`blindspot.checks.load_all` returns every claim; its check returns an :class:`Outcome`
(passed, evidence text) or raises :class:`Skip` with a reason. :mod:`blindspot.verify` runs
the checks and prints the verdict table.

Each claim names where its support lives (``certificate``, ``test``, ``experiment``,
``page``); ``tests/test_claims.py`` fails when a named object no longer exists, so the
claims table in the README and the book cannot point at something deleted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COMPANION = "companion theory (not in the paper)"
"""The ``paper_ref`` of a result of the theory that the paper does not state; the claim's
``page`` names where it is proved or stated."""

SOURCES = ("paper", "package")
"""Whose statement a claim checks, so that a FAIL says who is refuted. ``"paper"``: a
statement the paper makes (its numbered claims, Lemma 2, the identities of its §3 and §5,
the effects its tables report), so a FAIL refutes the paper at the scale checked.
``"package"``: this package's own statement: the companion theory (:data:`COMPANION`), a
sharpening or qualification of a paper statement (explicit bounds, the premise of a lemma),
a prediction of its models (the toy, the self-logit model), or a property of its
implementation (kernels, recorder, controls, objective, experiment set-up), so a FAIL is a
package prediction or guarantee failing, not the paper."""

TIERS = ("quick", "full", "gpu")
"""Tiers are cumulative (``full`` runs the quick claims too, ``gpu`` runs everything)."""


class Skip(Exception):
    """Raised by a check that cannot run here (e.g. no GPU, no results); the message says why."""


@dataclass(frozen=True)
class Outcome:
    passed: bool
    evidence: str


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    paper_ref: str
    tier: str
    check: Callable[[], Outcome]
    certificate: str | None = None  # dotted name in blindspot.symbolic (or another module)
    test: str | None = None  # "tests/test_x.py::test_name"
    experiment: str | None = None  # e.g. "table1"
    page: str | None = None  # book page path relative to the repo root, e.g. "proofs/euler.md"
    source: str = field(kw_only=True)  # "paper" or "package" (:data:`SOURCES`), required

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"claim {self.id!r}: source must be one of {', '.join(SOURCES)} "
                             f"(see blindspot.claims.SOURCES), got {self.source!r}")


_REGISTRY: dict[str, Claim] = {}


def claim(id: str, statement: str, *, paper_ref: str, source: str, tier: str = "quick",
          certificate: str | None = None, test: str | None = None,
          experiment: str | None = None, page: str | None = None):
    """Register the decorated zero-argument function as the check of a claim; ``source`` is
    ``"paper"`` or ``"package"`` (:data:`SOURCES`)."""
    if tier not in TIERS:
        raise ValueError(f"claim {id!r}: unknown tier {tier!r}; valid tiers: {', '.join(TIERS)}")
    if source not in SOURCES:
        raise ValueError(f"claim {id!r}: source must be one of {', '.join(SOURCES)} (see "
                         f"blindspot.claims.SOURCES), got {source!r}")

    def decorate(fn: Callable[[], Outcome]) -> Callable[[], Outcome]:
        if id in _REGISTRY and _REGISTRY[id].check.__qualname__ != fn.__qualname__:
            raise ValueError(f"claim id {id!r} registered twice")
        _REGISTRY[id] = Claim(id, statement, paper_ref, tier, fn, certificate, test,
                              experiment, page, source=source)
        return fn

    return decorate


def registered() -> dict[str, Claim]:
    """Every claim registered so far, in registration order (importing
    :mod:`blindspot.checks` registers them all: :func:`blindspot.checks.load_all`)."""
    return dict(_REGISTRY)


def tier_includes(selected: str, claim_tier: str) -> bool:
    return TIERS.index(claim_tier) <= TIERS.index(selected)


def failure_summary(failed: Iterable[str]) -> str:
    """``"1 paper claim refuted, 2 package predictions failed"``: FAILs counted by
    :data:`SOURCES`, from the sources of the failed claims (``"paper"``/``"package"``)."""
    failed = list(failed)
    paper, package = failed.count("paper"), failed.count("package")
    return (f"{paper} paper claim{'' if paper == 1 else 's'} refuted, {package} package "
            f"prediction{'' if package == 1 else 's'} failed")


def markdown_table(claims: Mapping[str, Claim]) -> str:
    """The claims table of the README: claim -> source (paper or package), tier, paper
    reference and the certificate, test, experiment and page that support it.
    ``python -m blindspot.verify --update-readme`` writes it into README.md;
    ``tests/test_readme.py`` fails when the README's copy is stale."""
    rows = ["| id | claim | source | paper | tier | certificate | test | experiment | page |",
            "|---|---|---|---|---|---|---|---|---|"]
    for c in sorted(claims.values(), key=lambda c: c.id):  # not registration order, which
        # depends on which check module something imported first
        rows.append(f"| `{c.id}` | {_cell(c.statement, code=False)} | {c.source} | "
                    f"{_cell(c.paper_ref, code=False)} | {c.tier} | {_cell(c.certificate)} "
                    f"| {_cell(c.test)} | {_cell(c.experiment)} | {_cell(c.page)} |")
    return "\n".join(rows)


def glued_statements(claims: Mapping[str, Claim]) -> dict[str, str]:
    """Glue key ``statement-<id>`` -> the claim's statement as Markdown, for every claim: a
    chapter that states a claim glues the registry's own text
    (``{glue:md}`statement-S3.eps-leak```) instead of paraphrasing it, so the chapter and
    the claim cannot drift apart (``tests/test_book.py``)."""
    return {f"statement-{c.id}": f"*{_cell(c.statement, code=False)}* (claim `{c.id}`)"
            for c in claims.values()}


# ---------------------------------------------------------------------------------------------
# the book's claims chapter (notebooks/claims.md)


def _cell(text: str | None, code: bool = True) -> str:
    if not text:
        return "—"
    text = " ".join(str(text).split()).replace("|", "\\|")
    return f"`{text}`" if code else text


def _page_link(c: Claim, page_links: bool) -> str:
    if c.page and page_links:  # MyST: a root-relative document link, named by its file stem
        return f"[{Path(c.page).stem}](/{c.page})"
    return _cell(c.page)


def claims_markdown(claims: Mapping[str, Claim], verdicts: Mapping[str, Mapping[str, Any]],
                    page_links: bool = True) -> str:
    """The claims chapter's overview table: one row per claim with its source (paper or package),
    tier, verdict, paper reference and page; :func:`claims_details_markdown` gives the rest
    of each claim.

    ``verdicts`` maps claim ids to entries of a ``verify --json`` file; a claim registered
    after that file was written shows "not run". With ``page_links`` the page column is a
    MyST document link, so a page that is not in the book breaks the build.
    """
    rows = ["| id | source | tier | verdict | paper | page |", "|---|---|---|---|---|---|"]
    for c in claims.values():
        v = verdicts.get(c.id)
        verdict = f"**{v['verdict']}**" if v else "not run"
        rows.append(f"| [`{c.id}`](#claim-{_anchor(c.id)}) | {c.source} | {c.tier} | {verdict} "
                    f"| {_cell(c.paper_ref, False)} | {_page_link(c, page_links)} |")
    return "\n".join(rows)


def _anchor(cid: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", cid.lower()).strip("-")


def claims_details_markdown(claims: Mapping[str, Claim],
                            verdicts: Mapping[str, Mapping[str, Any]],
                            page_links: bool = True) -> str:
    """The claims chapter's detail of every claim: claim -> certificate -> test -> experiment ->
    page, with the statement, the verdict and the evidence ``verify`` printed. Each claim gets an
    anchor ``claim-<id>`` that the overview table links to."""
    blocks = []
    for c in claims.values():
        v = verdicts.get(c.id)
        verdict = f"**{v['verdict']}**" if v else "not run"
        evidence = _cell(v["evidence"], code=False) if v else "—"
        blocks.append("\n".join([
            f"(claim-{_anchor(c.id)})=",
            f"**`{c.id}`** ({c.source}, {c.tier}, {verdict}): "
            f"{_cell(c.statement, code=False)}",
            "",
            f"- certificate {_cell(c.certificate)} → test {_cell(c.test)} → experiment "
            f"{_cell(c.experiment)} → page {_page_link(c, page_links)}",
            f"- paper: {_cell(c.paper_ref, False)}",
            f"- evidence: {evidence}",
        ]))
    return "\n\n".join(blocks)

"""What the book (``book/``) computes about itself: its table of contents, the claims chapter
and the checks that keep the two in step.

Pure functions over plain data (the parsed ``_toc.yml``, the claims registry, a ``verify
--json`` file), so ``tests/test_book.py`` can test them without building the book; the local
Sphinx extension ``book/_ext/blindspot_book.py`` calls :func:`book_problems` at the end of
every build and turns each problem into a warning, which ``jupyter-book build -W`` makes an
error. Imports only point downward: this module sits beside :mod:`blindspot.verify`.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from blindspot.claims import Claim

SOURCE_SUFFIXES = (".md", ".ipynb", ".rst")
CLAIMS_PAGE = "notebooks/claims"
"""The docname of chapter 8, the claims table."""


def docname(path: str) -> str:
    """``proofs/euler.md`` -> ``proofs/euler``: a repository path as a Sphinx docname."""
    for suffix in SOURCE_SUFFIXES:
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def _source_docnames(book_dir: Path) -> list[str]:
    """Docnames of every source file under ``book_dir`` (following the notebooks/ and proofs/
    symlinks), excluding the build folder."""
    names = []
    for root, dirs, files in os.walk(book_dir, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        for f in sorted(files):
            if f.endswith(SOURCE_SUFFIXES):
                rel = (Path(root) / f).relative_to(book_dir).as_posix()
                names.append(docname(rel))
    return names


def toc_docnames(toc: Mapping[str, Any], book_dir: str | os.PathLike) -> list[str]:
    """Every docname a parsed jb-book ``_toc.yml`` includes, in reading order.

    ``file:`` entries are taken as written; ``glob:`` entries are matched against the source
    files under ``book_dir``, excluding the page that holds the glob (as Sphinx's toctree
    glob does) and pages listed explicitly elsewhere.
    """
    if "root" not in toc:
        raise ValueError("_toc.yml has no 'root:' entry; a jb-book toc starts with root: index")
    sources = _source_docnames(Path(book_dir))
    out: list[str] = [docname(str(toc["root"]))]
    explicit = set(out)

    def collect_explicit(node: Any) -> None:
        if isinstance(node, Mapping):
            if "file" in node:
                explicit.add(docname(str(node["file"])))
            for value in node.values():
                collect_explicit(value)
        elif isinstance(node, list):
            for item in node:
                collect_explicit(item)

    def walk(node: Any, parent: str) -> None:
        if isinstance(node, Mapping):
            if "file" in node:
                name = docname(str(node["file"]))
                out.append(name)
                parent = name
            elif "glob" in node:
                pattern = docname(str(node["glob"]))
                out.extend(n for n in sources if fnmatch.fnmatchcase(n, pattern)
                           and n != parent and n not in explicit)
            for key in ("parts", "chapters", "sections"):
                if key in node:
                    walk(node[key], parent)
        elif isinstance(node, list):
            for item in node:
                walk(item, parent)

    collect_explicit(toc)
    walk(toc, out[0])
    return out


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
    """Chapter 8's overview table: one row per claim with its tier, verdict, paper
    reference and page; :func:`claims_details_markdown` gives the rest of each claim.

    ``verdicts`` maps claim ids to entries of a ``verify --json`` file; a claim registered
    after that file was written shows "not run". With ``page_links`` the page column is a
    MyST document link, so a page that is not in the book breaks the build.
    """
    rows = ["| id | tier | verdict | paper | page |", "|---|---|---|---|---|"]
    for c in claims.values():
        v = verdicts.get(c.id)
        verdict = f"**{v['verdict']}**" if v else "not run"
        rows.append(f"| [`{c.id}`](#claim-{_anchor(c.id)}) | {c.tier} | {verdict} "
                    f"| {_cell(c.paper_ref, False)} | {_page_link(c, page_links)} |")
    return "\n".join(rows)


def _anchor(cid: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", cid.lower()).strip("-")


def claims_details_markdown(claims: Mapping[str, Claim],
                            verdicts: Mapping[str, Mapping[str, Any]],
                            page_links: bool = True) -> str:
    """Chapter 8's detail of every claim: claim -> certificate -> test -> experiment -> page,
    with the statement, the verdict and the evidence ``verify`` printed. Each claim gets an
    anchor ``claim-<id>`` that the overview table links to."""
    blocks = []
    for c in claims.values():
        v = verdicts.get(c.id)
        verdict = f"**{v['verdict']}**" if v else "not run"
        evidence = _cell(v["evidence"], code=False) if v else "—"
        blocks.append("\n".join([
            f"(claim-{_anchor(c.id)})=",
            f"**`{c.id}`** ({c.tier}, {verdict}): {_cell(c.statement, code=False)}",
            "",
            f"- certificate {_cell(c.certificate)} → test {_cell(c.test)} → experiment "
            f"{_cell(c.experiment)} → page {_page_link(c, page_links)}",
            f"- paper: {_cell(c.paper_ref, False)}",
            f"- evidence: {evidence}",
        ]))
    return "\n\n".join(blocks)


def verdict_counts(claims: Iterable[str], verdicts: Mapping[str, Mapping[str, Any]]
                   ) -> dict[str, int]:
    """How many of ``claims`` PASS, FAIL, were SKIPPED, or are missing from ``verdicts``."""
    counts = {"PASS": 0, "FAIL": 0, "SKIPPED": 0, "not run": 0}
    for cid in claims:
        counts[verdicts[cid]["verdict"] if cid in verdicts else "not run"] += 1
    return counts


def book_problems(claims: Mapping[str, Claim], toc_names: Iterable[str],
                  built: Iterable[str], claims_page_text: str | None) -> list[str]:
    """Everything the claims table promises that the book does not deliver.

    A problem is reported when a claim's ``page`` is not in the table of contents, was not
    built, or when the built claims chapter (its HTML, ``claims_page_text``) does not list
    every claim id as the whole text of an element (``>ID<`` in the HTML, so ``S2.euler``
    is not found inside ``S2.euler-leak``).
    """
    toc_set, built_set = set(toc_names), set(built)
    problems = []
    for c in claims.values():
        if not c.page:
            continue
        name = docname(c.page)
        if name not in toc_set:
            problems.append(f"claim {c.id}: page {c.page} is not in book/_toc.yml; add it")
        elif name not in built_set:
            problems.append(f"claim {c.id}: page {c.page} was not built")
    if claims_page_text is None:
        problems.append(f"the claims chapter {CLAIMS_PAGE} was not built")
    else:
        problems += [f"claim {cid} is missing from the claims chapter {CLAIMS_PAGE}"
                     for cid in claims if f">{cid}<" not in claims_page_text]
    return problems


def _fmt(v: Any, digits: int) -> str:
    if v is None:
        return "—"  # JSON null: a value that was NaN/inf or not measured
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{digits}g}" if math.isfinite(v) else "—"  # NaN: not applicable
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x, digits) for x in v)
    return " ".join(str(v).split()).replace("|", "\\|")


def rows_markdown(columns: list[str], rows: Iterable[Mapping[str, Any]], digits: int = 4,
                  headers: Mapping[str, str] | None = None) -> str:
    """A markdown table of ``rows`` (dicts) in the order of ``columns``; floats to ``digits``
    significant digits, ``None`` and NaN (not measured / not applicable) as a dash;
    ``headers`` renames columns for display."""
    headers = headers or {}
    rows = list(rows)
    for i, r in enumerate(rows):
        missing = [c for c in columns if c not in r]
        if missing:
            raise KeyError(f"row {i} has no column(s) {', '.join(missing)}; it has "
                           f"{', '.join(r)}")
    out = ["| " + " | ".join(headers.get(c, c) for c in columns) + " |",
           "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_fmt(r[c], digits) for c in columns) + " |" for r in rows]
    return "\n".join(out)


_BREAKS = (r",\quad ", r";\quad ", r",\quad", r";\quad", r",\ ")
_HEAD_ENDS = (r":\quad", r":\ ")
_DELIMS = tuple("()[]|.\\")


def _top_level(latex: str, seps: tuple[str, ...]) -> list[tuple[int, str]]:
    """Positions of ``seps`` outside braces and ``\\left...\\right`` pairs."""
    found, depth, i = [], 0, 0
    while i < len(latex):
        # \left( ... \right) nests like braces; \leftarrow and \rightarrow do not
        if latex.startswith(r"\left", i) and latex[i + 5:i + 6] in _DELIMS:
            depth, i = depth + 1, i + 5
            continue
        if latex.startswith(r"\right", i) and latex[i + 6:i + 7] in _DELIMS:
            depth, i = depth - 1, i + 6
            continue
        ch = latex[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            sep = next((x for x in seps if latex.startswith(x, i)), None)
            if sep:
                found.append((i, sep))
                i += len(sep)
                continue
        i += 1
    return found


def break_latex(latex: str, width: int = 80) -> str:
    """Display a long one-line statement on several lines: the hypotheses before the first
    top-level ``:\\quad`` (or ``:\\ ``) stay with the first clause, and the clauses after it,
    separated by ``,\\ ``, ``,\\quad`` or ``;\\quad`` outside braces, are stacked in a
    ``gathered`` environment. A statement shorter than ``width`` characters is unchanged
    (tests/test_book.py)."""
    if len(latex) <= width:
        return latex
    heads = _top_level(latex, _HEAD_ENDS)
    body_start = heads[0][0] + len(heads[0][1]) if heads else 0
    parts, start = [], body_start
    for i, sep in _top_level(latex[body_start:], _BREAKS):
        parts.append(latex[start:body_start + i + 1])  # keep the comma or semicolon
        start = body_start + i + len(sep)
    parts.append(latex[start:])
    parts = [x.strip() for x in parts if x.strip()]
    if len(parts) == 1:
        return latex
    # the space keeps a control word such as \quad from fusing with the next letter
    parts[0] = (latex[:body_start] + " " + parts[0]).strip()
    return r"\begin{gathered}" + r"\\ ".join(parts) + r"\end{gathered}"


_SKIP_SPANS = re.compile(r"``.*?``|:[\w:.-]+:`[^`]*`|`[^`]*`_?|\$[^$]*\$")
_BULLET = re.compile(r"^(\s*)[-*+] \S")


def _escape_bars(line: str) -> str:
    """Escape ``|`` outside inline literals, roles, interpreted text and ``$...$``; turn
    ``$x$`` into ``:math:`x```."""
    out, pos = [], 0
    for m in _SKIP_SPANS.finditer(line):
        out.append(re.sub(r"(?<!\\)\|", r"\\|", line[pos:m.start()]))
        span = m.group(0)
        if span.startswith("$") and len(span) > 2 and "`" not in span:
            span = f":math:`{span[1:-1]}`"
        out.append(span)
        pos = m.end()
    out.append(re.sub(r"(?<!\\)\|", r"\\|", line[pos:]))
    return "".join(out)


def rst_docstring(lines: list[str]) -> list[str]:
    """Make a plainly written docstring valid reStructuredText, without changing its text.

    - ``$x$`` (TeX math, as in a notebook) becomes ``:math:`x```, so it is typeset.
    - ``|x|`` (an absolute value or norm) is escaped to ``\\|x\\|``: docutils reads an
      unescaped pair of bars as a substitution reference and fails. Inline literals, roles,
      interpreted text, ``$...$`` and every literal or directive block (after a line ending
      in ``::`` or starting with ``..``) are left alone.
    - A bullet list that starts right after a line of text at the same indentation gets the
      blank line reStructuredText requires before it.

    Used by the book's Sphinx extension on every docstring (tests/test_book.py).
    """
    out: list[str] = []
    block_indent: int | None = None  # indentation of the line that opened a literal block
    prev = ""
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if block_indent is not None and line.strip() and indent <= block_indent:
            block_indent = None  # the literal or directive block ended
        if block_indent is None:
            bullet = _BULLET.match(line)
            if (bullet and prev.strip() and not _BULLET.match(prev)
                    and len(prev) - len(prev.lstrip()) == indent):
                out.append("")
            stripped = line.strip()
            if stripped.startswith(".. ") or stripped.endswith("::"):
                block_indent = indent
                out.append(line)  # a directive's arguments (e.g. math) stay as written
            else:
                out.append(_escape_bars(line))
        else:
            out.append(line)
        prev = line
    return out


def unique_suffix_match(target: str, names: Iterable[str]) -> str | None:
    """The one documented name equal to ``target`` or ending in ``.target``, else None
    (none or several: the reference stays unresolved and Sphinx warns)."""
    found = [n for n in names if n == target or n.endswith("." + target)]
    return found[0] if len(found) == 1 else None


def canonical_name(target: str, module: str | None = None) -> str | None:
    """Where a public name is defined: ``blindspot.nn.LoopedLM`` ->
    ``blindspot.nn.model.LoopedLM`` (a package re-exports it; the API page documents it once,
    in its module). ``target`` is tried inside ``module`` first, as Python would resolve a
    bare name written in that module's docstring. None when it does not import."""
    import importlib

    for name in ([f"{module}.{target}"] if module else []) + [target]:
        parts = name.split(".")
        for i in range(len(parts) - 1, 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            try:
                for attr in parts[i:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                break
            mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
            if isinstance(mod, str) and isinstance(qual, str):
                return f"{mod}.{qual}"
            break
    return None


_REMOTE = re.compile(r"<(script|link|img|iframe)\b[^>]*?\b(src|href)=[\"']((?:https?:)?//[^\"']+)",
                     re.I)


def remote_assets(html: str) -> list[str]:
    """URLs of scripts, stylesheets, images or frames a page would fetch from another host
    when it loads (``<a href>`` links are not fetched and are allowed). The book must work
    offline, so its build fails on any (book/_ext/blindspot_book.py; tests/test_book.py)."""
    return [m.group(3) for m in _REMOTE.finditer(html)
            if not (m.group(1).lower() == "link" and _is_plain_link(m.group(0)))]


def _is_plain_link(tag: str) -> bool:
    """A ``<link>`` that is not loaded: rel=canonical/alternate/author and the like."""
    rel = re.search(r"\brel=[\"']([^\"']+)", tag, re.I)
    return bool(rel) and not re.search(r"stylesheet|preload|icon|modulepreload", rel.group(1),
                                       re.I)


# ---------------------------------------------------------------------------------------------
# internal links of the built HTML

_EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|//)", re.I)  # http:, mailto:, data:, //host


class _LinkParser(HTMLParser):
    """The link targets (href/src of a, link, img, script, iframe) and the ids of one page."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        if tag in ("a", "link", "img", "script", "iframe", "source"):
            target = a.get("src" if tag in ("img", "script", "iframe", "source") else "href")
            if target:
                self.links.append(target)


def _parse_page(path: Path) -> _LinkParser:
    parser = _LinkParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def source_link_target(uri: str, fromdoc: str) -> tuple[str, str] | None:
    """``(docname, fragment)`` of a link written to a source file of the book, e.g.
    ``/proofs/euler.md#the-claim`` (root-relative) or ``euler.md`` (relative to the folder of
    ``fromdoc``); None for any other link. Markdown that a notebook glues into a page keeps
    such links as written, and the built site has no ``.md`` files: the book's extension
    rewrites them to the page they name."""
    if not uri or _EXTERNAL.match(uri):
        return None
    path, _, fragment = uri.partition("#")
    if not path.endswith(SOURCE_SUFFIXES):
        return None
    if path.startswith("/"):
        full = path.lstrip("/")
    else:
        full = os.path.normpath(os.path.join(os.path.dirname(fromdoc), path)).replace(os.sep, "/")
    return docname(full), fragment


def broken_links(html_root: str | os.PathLike) -> tuple[list[str], int]:
    """Every internal link of the built site under ``html_root`` that does not resolve, as
    ``"page: target (why)"``, and the number of internal links checked.

    A link resolves when its file exists (relative to the page, or to ``html_root`` when it
    starts with ``/``; a folder means its ``index.html``) and, for ``#fragment`` into an
    HTML page, when that page has an element with that id. Pages under ``_static/`` (theme
    templates) are not read. Links to other hosts (``http:``,
    ``mailto:``, ``//host``) are not followed; ``tests/test_book.py`` checks this on a small
    synthetic site, and ``.ci/run`` runs it on the built book.
    """
    root = Path(html_root).resolve()
    # _static holds the themes' assets, among them Jinja macro files named *.html that are
    # never served as pages
    pages = {p: _parse_page(p) for p in sorted(root.rglob("*.html"))
             if p.relative_to(root).parts[0] != "_static"}
    broken, checked = [], 0
    for page, parsed in pages.items():
        for link in parsed.links:
            if _EXTERNAL.match(link):
                continue
            checked += 1
            path, _, fragment = link.partition("#")
            path = unquote(path.partition("?")[0])
            if not path:
                target = page
            else:
                target = (root / path.lstrip("/")) if path.startswith("/") else page.parent / path
                target = Path(os.path.normpath(target))
                if target.is_dir():
                    target = target / "index.html"
            where = f"{page.relative_to(root).as_posix()}: {link}"
            if not target.is_file():
                broken.append(f"{where} (no file {_shown(target, root)})")
            elif fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse_page(target).ids
                if unquote(fragment) not in ids:
                    broken.append(f"{where} (no id {fragment!r} in {_shown(target, root)})")
    return broken, checked


def _shown(target: Path, root: Path) -> str:
    try:
        return target.relative_to(root).as_posix()
    except ValueError:
        return f"{target} (outside the site)"


def main(argv: list[str] | None = None) -> int:
    """``python -m blindspot.book check-links DIR``: exit 1 when an internal link of the built
    site in DIR does not resolve (each is printed), 2 when DIR holds no built site."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m blindspot.book",
                                description="checks on the built book")
    p.add_argument("command", choices=["check-links"])
    p.add_argument("html_dir", help="the built site, e.g. book/_build/html")
    args = p.parse_args(argv)
    if not (Path(args.html_dir) / "index.html").is_file():
        print(f"error: {args.html_dir} holds no built site (no index.html); build the book "
              f"with `jupyter-book build -W -n --keep-going book/`", file=sys.stderr)
        return 2
    broken, checked = broken_links(args.html_dir)
    for b in broken:
        print(f"broken link: {b}")
    print(f"{checked} internal links checked: {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())

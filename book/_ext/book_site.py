"""What the built book must deliver, checked on plain data: its table of contents, the pages
the claims registry names, links that resolve, and nothing fetched from the internet.

Pure functions over the parsed ``_toc.yml``, the claims registry and the built HTML, so
``tests/test_book.py`` tests them without building the book. The book's Sphinx extension
(``blindspot_book.py``, beside this file) calls them at the end of every build and turns each
problem into a warning, which ``jupyter-book build -W`` makes an error. CI lists the broken
internal links of a built site with

    python book/_ext/book_site.py check-links book/_build/html
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

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


def book_problems(claims: Mapping[str, Any], toc_names: Iterable[str],
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
    """``python book/_ext/book_site.py check-links DIR``: exit 1 when an internal link of the
    built site in DIR does not resolve (each is printed), 2 when DIR holds no built site."""
    import argparse

    p = argparse.ArgumentParser(prog="python book/_ext/book_site.py",
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
    sys.exit(main())

"""Local Sphinx extension of the blindspot book.

The pure functions it calls live beside it (Sphinx puts this folder on the path):
``book_site.py`` checks the site, ``book_docstrings.py`` reads docstrings.

1. At the end of a build, check that every page the claims registry names is in the table
   of contents and was built, and that the claims chapter lists every claim
   (``book_site.book_problems``). Each problem is a warning, which ``jupyter-book build -W``
   turns into a failed build. Every built page is also searched for scripts, styles or images
   it would fetch from the internet (``book_site.remote_assets``): the book must read
   offline.
2. Read the package's docstrings as they are written, in plain reStructuredText with
   mathematical bars: ``book_docstrings.rst_docstring`` escapes a ``|x|`` that docutils
   would take for a substitution and opens a bullet list that follows a line directly.
3. Turn a link to a source file (``[euler](/proofs/euler.md)`` in Markdown that a notebook
   glues into a page) into a link to the page it names (``book_site.source_link_target``); a
   link to a file that is not a page of the book warns. At the end of the build, every
   internal link of the built HTML must resolve (``book_site.broken_links``; ``.ci/run``
   runs the same check on the site with ``python book/_ext/book_site.py check-links``).
4. Resolve a Python cross-reference to where the object is defined and documented: a name a
   package re-exports (``:class:`blindspot.nn.LoopedLM```,
   ``book_docstrings.canonical_name``) or a bare name that exactly one documented object has
   (``:class:`LoopTrace```); an ambiguous or unknown name still warns.
"""

from pathlib import Path

import yaml
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _check(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    from book_site import CLAIMS_PAGE, book_problems, broken_links, remote_assets, toc_docnames

    from blindspot.checks import load_all

    book = Path(app.srcdir)
    toc = toc_docnames(yaml.safe_load((book / "_toc.yml").read_text()), book)
    html = Path(app.outdir) / f"{CLAIMS_PAGE}.html"
    text = html.read_text(encoding="utf-8") if html.is_file() else None
    for problem in book_problems(load_all(), toc, app.env.found_docs, text):
        logger.warning(problem, type="blindspot", subtype="claims")
    broken, _ = broken_links(app.outdir)
    for link in broken:
        logger.warning(f"broken link: {link}", type="blindspot", subtype="links")
    for page in sorted(Path(app.outdir).rglob("*.html")):
        for url in remote_assets(page.read_text(encoding="utf-8")):
            logger.warning(f"{page.relative_to(app.outdir)} loads {url} from the internet; the "
                           "book must build and read offline (serve it from book/_static)",
                           type="blindspot", subtype="offline")


def _source_links(app, doctree, docname):
    from book_site import source_link_target
    from docutils import nodes

    for node in doctree.findall(nodes.reference):
        target = source_link_target(node.get("refuri", ""), docname)
        if target is None:
            continue
        doc, fragment = target
        if doc not in app.env.found_docs:
            logger.warning(f"link to {node['refuri']}, which is not a page of the book",
                           location=node, type="blindspot", subtype="links")
            continue
        node["refuri"] = app.builder.get_relative_uri(docname, doc) + (
            f"#{fragment}" if fragment else "")
        node["internal"] = True  # rendered as an internal link


def _docstring(app, what, name, obj, options, lines):
    from book_docstrings import rst_docstring

    lines[:] = rst_docstring(lines)


def _bare_name(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    if not target or target.startswith("."):
        return None
    from book_docstrings import canonical_name, unique_suffix_match

    domain = env.get_domain("py")
    full = canonical_name(target, node.get("py:module"))
    if full not in domain.objects:
        full = unique_suffix_match(target, domain.objects)
    if full is None:
        return None
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], full, node,
                               contnode)


def setup(app):
    app.connect("build-finished", _check)
    app.connect("doctree-resolved", _source_links)
    app.connect("autodoc-process-docstring", _docstring)
    app.connect("missing-reference", _bare_name)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

"""Local Sphinx extension: at the end of a build, check that every page the claims registry
names is in the table of contents and was built, and that the claims chapter lists every
claim. Each problem is a warning, which ``jupyter-book build -W`` turns into a failed build.
The checks themselves are :func:`blindspot.book.book_problems` (tested in tests/test_book.py).
"""

from pathlib import Path

import yaml
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _check(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    from blindspot.book import CLAIMS_PAGE, book_problems, toc_docnames
    from blindspot.claims import load_all

    book = Path(app.srcdir)
    toc = toc_docnames(yaml.safe_load((book / "_toc.yml").read_text()), book)
    html = Path(app.outdir) / f"{CLAIMS_PAGE}.html"
    text = html.read_text(encoding="utf-8") if html.is_file() else None
    for problem in book_problems(load_all(), toc, app.env.found_docs, text):
        logger.warning(problem, type="blindspot", subtype="claims")


def setup(app):
    app.connect("build-finished", _check)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

"""The book's side of the claims table: every page a claim names is in book/_toc.yml, the
claims chapter lists every claim, and the book is configured to build offline.

These tests read the book's sources only (no build: that is .ci/run's job, a few minutes);
the same checks run at the end of every build through book/_ext/blindspot_book.py, where a
problem is a warning and ``-W`` makes it an error. The book's plumbing lives in book/_ext
(``book_site``, ``book_docstrings``), which pytest puts on the path (pyproject.toml).
"""

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from book_site import CLAIMS_PAGE, book_problems, docname, toc_docnames

from blindspot.checks import load_all
from blindspot.claims import Claim, Outcome, claims_markdown, glued_statements
from blindspot.verify import load_verdicts, verdict_counts

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
TOC = yaml.safe_load((BOOK / "_toc.yml").read_text())
CONFIG = yaml.safe_load((BOOK / "_config.yml").read_text())


def _claim(cid: str, page: str | None = None, statement: str = "s") -> Claim:
    return Claim(cid, statement, "§1", "quick", lambda: Outcome(True, ""), page=page,
                 test="tests/test_book.py::test_x", source="paper")


def test_every_toc_entry_is_a_source_file():
    names = toc_docnames(TOC, BOOK)
    assert CLAIMS_PAGE in names and "api" in names
    for name in names:
        assert any((BOOK / f"{name}{s}").is_file() for s in (".md", ".ipynb", ".rst")), name
    assert len(names) == len(set(names)), "a page is listed twice in _toc.yml"


def test_every_claim_page_is_in_the_toc():
    names = set(toc_docnames(TOC, BOOK))
    missing = {c.id: c.page for c in load_all().values()
               if c.page and docname(c.page) not in names}
    assert not missing, f"claims name pages that are not in book/_toc.yml: {missing}"


def test_claims_chapter_calls_the_generator_and_reads_committed_verdicts():
    text = (ROOT / f"{CLAIMS_PAGE}.md").read_text()
    assert "claims_markdown(" in text and "load_all()" in text
    assert "verify-quick.json" in text


def test_claims_markdown_lists_every_claim_with_its_verdict():
    from blindspot.claims import claims_details_markdown

    claims = {c.id: c for c in [_claim("A.one", "proofs/a.md", "x | y"), _claim("B.two")]}
    verdicts = {"A.one": {"verdict": "PASS", "evidence": "max residual 0"}}
    rows = claims_markdown(claims, verdicts).splitlines()
    assert len(rows) == 2 + len(claims)
    assert "[`A.one`](#claim-a-one)" in rows[2] and "**PASS**" in rows[2]
    assert rows[0].split("|")[2].strip() == "source" and rows[2].split("|")[2].strip() == "paper"
    assert "[a](/proofs/a.md)" in rows[2]
    assert "`B.two`" in rows[3] and "not run" in rows[3]
    assert all(r.count("|") - r.count("\\|") == rows[0].count("|") for r in rows)
    details = claims_details_markdown(claims, verdicts)
    a, b = details.split("\n\n(claim-b-two)=")
    assert a.startswith("(claim-a-one)=") and "x \\| y" in a and "max residual 0" in a
    assert "**`A.one`** (paper, quick, **PASS**)" in a
    assert "test `tests/test_book.py::test_x`" in a and "page [a](/proofs/a.md)" in a
    assert "not run" in b and "page —" in b


def test_verdict_counts():
    v = {"a": {"verdict": "PASS"}, "b": {"verdict": "SKIPPED"}}
    assert verdict_counts(["a", "b", "c"], v) == {"PASS": 1, "FAIL": 0, "SKIPPED": 1,
                                                  "not run": 1}


def test_load_verdicts_errors_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="blindspot.verify --json"):
        load_verdicts(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="regenerate"):
        load_verdicts(bad)
    bad.write_text(json.dumps({"verdicts": [{"no_id": 1}], "run_card": {}}))
    with pytest.raises(ValueError, match="KeyError"):
        load_verdicts(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"verdicts": [{"id": "a", "verdict": "PASS"}],
                                "run_card": {"git_revision": "abc"}}))
    verdicts, card = load_verdicts(good)
    assert verdicts["a"]["verdict"] == "PASS" and card["git_revision"] == "abc"


def test_book_problems_finds_each_kind_of_gap():
    claims = {"S2.euler": _claim("S2.euler", "proofs/euler.md"),
              "S2.euler-leak": _claim("S2.euler-leak", "notebooks/missing.md"),
              "T1.x": _claim("T1.x", "notebooks/toy.md")}
    html = "<span>S2.euler-leak</span><span>T1.x</span>"
    problems = book_problems(claims, ["index", "proofs/euler", "notebooks/toy"],
                             ["index", "proofs/euler"], html)
    assert any("notebooks/missing.md is not in book/_toc.yml" in p for p in problems)
    assert any("notebooks/toy.md was not built" in p for p in problems)
    # S2.euler only occurs inside S2.euler-leak: it must still count as missing
    assert any("claim S2.euler is missing" in p for p in problems)
    assert len(problems) == 3
    assert book_problems(claims, [], [], None)[-1].endswith("was not built")
    whole = "".join(f">{c}<" for c in claims)
    ok = {k: replace(c, page=None) if c.page == "notebooks/missing.md" else c
          for k, c in claims.items()}
    assert book_problems(ok, ["proofs/euler", "notebooks/toy"],
                         ["proofs/euler", "notebooks/toy"], whole) == []


def test_toc_glob_excludes_its_own_page_and_explicit_pages(tmp_path):
    for name in ("index", "p/index", "p/a", "p/b", "p/c"):
        (tmp_path / f"{name}.md").parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f"{name}.md").write_text("# x\n")
    toc = {"root": "index", "chapters": [
        {"file": "p/index", "sections": [{"glob": "p/*"}]}, {"file": "p/c"}]}
    assert toc_docnames(toc, tmp_path) == ["index", "p/index", "p/a", "p/b", "p/c"]
    with pytest.raises(ValueError, match="root"):
        toc_docnames({"chapters": []}, tmp_path)


def test_math_is_served_locally_not_from_a_cdn():
    path = CONFIG["sphinx"]["config"]["mathjax_path"]
    assert "://" not in path and not path.startswith("//")
    assert (BOOK / "_static" / path).is_file()
    fonts = BOOK / "_static" / Path(path).parent / "output" / "chtml" / "fonts" / "woff-v2"
    assert len(list(fonts.glob("*.woff"))) >= 20  # MathJax 3's CHTML output fetches these lazily


def test_build_fails_on_errors_and_executes_with_cache():
    ex = CONFIG["execute"]
    assert ex["execute_notebooks"] == "cache" and ex["allow_errors"] is False
    assert CONFIG["sphinx"]["config"]["nb_execution_raise_on_error"] is True
    assert (BOOK / "notebooks").resolve() == ROOT / "notebooks"
    assert (BOOK / "proofs").resolve() == ROOT / "proofs"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "jupyter-book build -W -n --keep-going book/" in ci


def test_table_markdown_formats_and_rejects_unknown_columns():
    from blindspot.diagnostics import Table

    table = Table.from_rows([{"loop": 1, "scale": 12345.678, "note": "a|b", "k": True},
                             {"loop": 2, "scale": None, "note": "x", "k": False},
                             {"loop": 3, "scale": float("nan"), "note": "y", "k": True}])
    lines = table.markdown(["loop", "scale", "note"], digits=3,
                           headers={"scale": "‖H_k‖"}).splitlines()
    assert lines[0] == "| loop | ‖H_k‖ | note |"
    assert lines[2] == "| 1 | 1.23e+04 | a\\|b |"
    assert lines[3] == "| 2 | — | x |" and lines[4] == "| 3 | — | y |"
    assert table.markdown().splitlines()[0] == "| loop | scale | note | k |"
    with pytest.raises(KeyError, match="no column"):
        table.markdown(["scale", "ppl"])


def test_break_latex_stacks_top_level_clauses_only():
    from blindspot.symbolic.display import break_latex

    short = r"a = b,\ c = d"
    assert break_latex(short) == short
    long = (r"\varepsilon = 0,\ c > 0:\quad N(c\,h) = N(h),\ "
            r"f\left(x,\ y\right) = \frac{1}{2},\quad g \rightarrow 0;\quad k = 1")
    out = break_latex(long, width=20)
    assert out.startswith(r"\begin{gathered}") and out.endswith(r"\end{gathered}")
    lines = out[len(r"\begin{gathered}"):-len(r"\end{gathered}")].split(r"\\ ")
    # hypotheses stay on the first line; the comma inside \left(...\right) does not split
    assert lines == [r"\varepsilon = 0,\ c > 0:\quad N(c\,h) = N(h),",
                     r"f\left(x,\ y\right) = \frac{1}{2},", r"g \rightarrow 0;", "k = 1"]
    assert r"\quadN" not in out
    one = r"x:\quad " + "a" * 100
    assert break_latex(one, width=20) == one  # a single clause is not wrapped


def test_api_page_documents_every_public_module():
    import pkgutil
    import re

    import blindspot

    api = (BOOK / "api.md").read_text()
    documented = set(re.findall(r"^\.\. automodule:: (\S+)$", api, re.M))
    public = {m.name for m in pkgutil.walk_packages(blindspot.__path__, "blindspot.")
              if not any(p.startswith("_") for p in m.name.split("."))}
    missing = sorted(public - documented)
    assert not missing, f"add to book/api.md (the API chapter): {missing}"
    assert not documented - public - {"blindspot"}, "book/api.md names a module that is gone"


def test_rst_docstring_escapes_bars_and_opens_lists():
    from book_docstrings import rst_docstring

    lines = ["Radial share |cos| of ``a|b`` and :math:`|x|`, `|y|` and $|z|$.",
             "Conventions:",
             "- first item",
             "  continued",
             "- second item",
             "",
             ".. math:: |h| = 1",
             "   |u| = 1",
             "after |v|"]
    out = rst_docstring(lines)
    assert out[0] == r"Radial share \|cos\| of ``a|b`` and :math:`|x|`, `|y|` and :math:`|z|`."
    assert out[1:4] == ["Conventions:", "", "- first item"]
    assert out[5] == "- second item"  # inside the list: no blank line inserted
    assert out[7:9] == [".. math:: |h| = 1", "   |u| = 1"]  # directive block untouched
    assert out[9] == r"after \|v\|"
    assert rst_docstring([r"already \|a\|"]) == [r"already \|a\|"]


def test_unique_suffix_match():
    from book_docstrings import unique_suffix_match

    names = ["blindspot.nn.trace.LoopTrace", "blindspot.nn.config.ModelConfig",
             "blindspot.train.config.ModelConfig", "blindspot.diagnostics.run.diagnose"]
    assert unique_suffix_match("LoopTrace", names) == "blindspot.nn.trace.LoopTrace"
    assert unique_suffix_match("run.diagnose", names) == "blindspot.diagnostics.run.diagnose"
    assert unique_suffix_match("ModelConfig", names) is None  # ambiguous: Sphinx still warns
    assert unique_suffix_match("Trace", names) is None  # a suffix of a name is not a match


def test_canonical_name_follows_re_exports():
    from book_docstrings import canonical_name

    assert canonical_name("blindspot.nn.LoopedLM") == "blindspot.nn.model.LoopedLM"
    assert canonical_name("rms_norm", "blindspot.nn") == "blindspot.nn.functional.rms_norm"
    assert canonical_name("blindspot.claims.Claim") == "blindspot.claims.Claim"
    assert canonical_name("blindspot.nn.NoSuchThing") is None
    assert canonical_name("no_such_module.x") is None


def test_every_figure_the_book_draws_is_registered():
    import re

    from blindspot.figures import load_all as load_figures

    registered = load_figures()
    named = set()
    for page in (ROOT / "notebooks").glob("*.md"):
        named |= {(page.name, n) for n in re.findall(r"""draw\(\s*["']([\w-]+)["']""",
                                                        page.read_text())}
        named |= {(page.name, n) for n in re.findall(r"""FIGURES\[\s*["']([\w-]+)["']\]""",
                                                        page.read_text())}
    assert len(named) >= 4  # the pattern still finds the book's figures
    missing = sorted((p, n) for p, n in named if n not in registered)
    assert not missing, f"pages draw figures that blindspot.figures does not register: {missing}"


def test_remote_assets_finds_what_a_page_would_fetch():
    from book_site import remote_assets

    page = """<script src="https://cdn.example.org/mathjax.js"></script>
    <script src="_static/mathjax/tex-chtml-full.js"></script>
    <link rel="stylesheet" href="//fonts.example.org/x.css">
    <link rel="canonical" href="https://example.org/book/">
    <img src="http://example.org/a.png"> <a href="https://arxiv.org/abs/2606.24898">paper</a>
    <script>const THEBE_JS_URL = "https://unpkg.com/thebe"</script>"""
    assert remote_assets(page) == ["https://cdn.example.org/mathjax.js",
                                   "//fonts.example.org/x.css", "http://example.org/a.png"]


def test_every_proof_and_notebook_page_is_in_the_toc():
    names = set(toc_docnames(TOC, BOOK))
    pages = {f"{d}/{p.stem}" for d in ("proofs", "notebooks") for p in (ROOT / d).glob("*.md")}
    assert not pages - names, f"pages left out of book/_toc.yml: {sorted(pages - names)}"


def _site(root: Path, pages: dict[str, str]) -> Path:
    for name, body in pages.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"<html><body>{body}</body></html>")
    return root


def test_broken_links_finds_every_internal_link_that_does_not_resolve(tmp_path):
    from book_site import broken_links

    site = _site(tmp_path, {
        "index.html": '<a href="notes/a.html#eq-1">ok</a> <a href="notes/">a folder</a> '
                      '<a href="#top" id="top">self</a> <img src="_static/x.png"> '
                      '<a href="https://example.org/missing">external, not followed</a> '
                      '<a href="mailto:a@b.c">mail</a> <a href="/notes/a.html">root-relative</a>',
        "notes/a.html": '<p id="eq-1"></p><a href="../index.html">up</a> '
                        '<a href="/proofs/euler.md">a source file</a> '
                        '<a href="a.html#no-such-id">bad fragment</a> '
                        '<a href="../gone.html">gone</a> <a href="../../outside.html">out</a> '
                        '<script src="../_static/app.js"></script>',
        "notes/index.html": '<a name="legacy" href="a.html">named anchor</a>',
        "_static/macros.html": '<link href="{{ pathto(\'x.css\', 1) }}">',  # theme template
    })
    (site / "_static" / "x.png").write_bytes(b"")  # app.js is missing
    broken, checked = broken_links(site)
    assert checked == 12  # every link but the two to other hosts; _static/*.html is not a page
    assert sorted(broken) == sorted([
        "notes/a.html: /proofs/euler.md (no file proofs/euler.md)",
        "notes/a.html: a.html#no-such-id (no id 'no-such-id' in notes/a.html)",
        "notes/a.html: ../gone.html (no file gone.html)",
        f"notes/a.html: ../../outside.html (no file {tmp_path.parent / 'outside.html'} "
        "(outside the site))",
        "notes/a.html: ../_static/app.js (no file _static/app.js)",
    ])


def test_check_links_command_exits_by_what_it_found(tmp_path, capsys):
    from book_site import main

    assert main(["check-links", str(tmp_path)]) == 2  # no site built
    assert "no index.html" in capsys.readouterr().err
    _site(tmp_path, {"index.html": '<a href="b.html">b</a>'})
    assert main(["check-links", str(tmp_path)]) == 1
    assert "broken link: index.html: b.html (no file b.html)" in capsys.readouterr().out
    _site(tmp_path, {"b.html": ""})
    assert main(["check-links", str(tmp_path)]) == 0
    assert "1 internal links checked: 0 broken" in capsys.readouterr().out


def test_ci_checks_the_links_of_the_built_book():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    build = next(i for i, line in enumerate(ci) if line.startswith("jupyter-book build"))
    assert "python book/_ext/book_site.py check-links book/_build/html" in ci[build + 1:]


@pytest.mark.parametrize("uri, fromdoc, want", [
    ("/proofs/euler.md", "notebooks/scale_invariance", ("proofs/euler", "")),
    ("/proofs/euler.md#the-claim", "index", ("proofs/euler", "the-claim")),
    ("euler.md", "proofs/index", ("proofs/euler", "")),
    ("../proofs/gd.ipynb", "notebooks/toy", ("proofs/gd", "")),
    ("https://example.org/a.md", "index", None),
    ("euler.html", "proofs/index", None),
    ("#anchor", "index", None),
])
def test_links_to_source_files_name_their_page(uri, fromdoc, want):
    from book_site import source_link_target

    assert source_link_target(uri, fromdoc) == want


def test_the_proofs_are_a_part_of_their_own():
    parts = {p["caption"]: p for p in TOC["parts"]}
    proofs = parts["Proofs"]
    assert [c["file"] for c in proofs["chapters"]] == ["proofs/index"]
    assert proofs.get("numbered") is False  # the chapters after it keep their numbers

    def files(entries):
        for e in entries:
            yield e["file"]
            yield from files(e.get("sections", []))

    for caption, part in parts.items():
        if caption != "Proofs":  # no proof page is a section of another chapter
            assert not [f for f in files(part["chapters"]) if f.startswith("proofs/")]


# chapters that state claims the proofs qualify: each must state them in the registry's words
CHAPTER_CLAIMS = {"notebooks/blind_spot.md": {"S2.total-radial", "S6.param-invariance"},
                  "notebooks/table1.md": {"S6.param-invariance"},
                  "notebooks/scale_invariance.md": {"S3.eps-leak"}}


def _words(text: str) -> str:
    return " ".join(text.split())


def test_chapters_state_claims_in_the_registrys_own_words():
    """A chapter states a claim only by gluing the registry's statement
    ({glue:md}`statement-<id>`, filled by glued_statements in one of its cells); no chapter
    carries a hand copy of a statement (which could drift from what verify checks); and the
    chapters whose passages the proofs qualify state those claims."""
    claims = load_all()
    used = {}
    for path in sorted((ROOT / "notebooks").glob("*.md")):
        text = path.read_text()
        ids = set(re.findall(r"\{glue:md\}`statement-([^`]+)`", text))
        used[f"notebooks/{path.name}"] = ids
        assert ids <= set(claims), (path.name, ids - set(claims))
        if ids:
            assert "glued_statements(" in text, f"{path.name} refers to statements it never glues"
        prose = _words(text)
        for c in claims.values():
            # 60 characters of a statement, copied by hand, would be a second source of truth
            head = _words(c.statement)[:60]
            assert len(head) < 60 or head not in prose, (path.name, c.id)
    for page, ids in CHAPTER_CLAIMS.items():
        assert ids <= used[page], (page, ids - used[page])


def test_glued_statements_are_the_registrys_text():
    claims = {c.id: c for c in [_claim("A.one", statement="x | y  z"), _claim("B.two")]}
    glued = glued_statements(claims)
    assert set(glued) == {"statement-A.one", "statement-B.two"}
    assert glued["statement-A.one"] == "*x \\| y z* (claim `A.one`)"
    real = load_all()
    assert glued_statements(real)["statement-S3.eps-leak"].startswith(
        "*" + _words(real["S3.eps-leak"].statement).replace("|", "\\|")[:40])

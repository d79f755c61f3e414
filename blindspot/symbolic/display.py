"""Displaying a statement: a long one-line LaTeX statement (a certificate's
``statement_latex``, a toy prediction's formula) broken into lines for the book's display
math. ``tests/test_book.py`` tests it.
"""

from __future__ import annotations

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

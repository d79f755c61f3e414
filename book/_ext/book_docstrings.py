"""How the book's API chapter reads the package's docstrings: as they are written.

:func:`rst_docstring` makes a plainly written docstring (``|x|`` norms, ``$x$`` math, a list
right after a line) valid reStructuredText; :func:`canonical_name` and
:func:`unique_suffix_match` resolve a cross-reference to where the object is defined and
documented. The book's Sphinx extension (``blindspot_book.py``, beside this file) calls them;
``tests/test_book.py`` tests them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable

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

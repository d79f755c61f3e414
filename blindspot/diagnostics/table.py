"""``Table``: what every diagnostic returns: named columns, one dict per row, and notes.

A table is written as JSON with a run card (:func:`write_tables`) and read back
(:func:`read_table`, :func:`read_tables`); ``blindspot diagnose`` writes the committed
tables, and the claims, the figures and the book read them, so no reader recomputes a number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Table:
    name: str
    columns: list[str]
    rows: list[dict[str, Any]]
    notes: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for i, row in enumerate(self.rows):
            if set(row) != set(self.columns):
                raise ValueError(f"table {self.name!r}: row {i} has keys {list(row)}, expected "
                                 f"the columns {self.columns}")

    def column(self, name: str) -> list[Any]:
        if name not in self.columns:
            raise KeyError(f"table {self.name!r} has no column {name!r}; columns: "
                           f"{', '.join(self.columns)}")
        return [r[name] for r in self.rows]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "columns": self.columns,
                "rows": [{k: _plain(v) for k, v in r.items()} for r in self.rows],
                "notes": self.notes, "meta": {k: _plain(v) for k, v in self.meta.items()}}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Table:
        missing = {"name", "columns", "rows"} - set(obj)
        if missing:
            raise ValueError(f"not a diagnostics table: missing {', '.join(sorted(missing))}")
        columns = list(obj["columns"])  # JSON files are written with sorted keys: reorder
        rows = [{c: r[c] for c in columns} if set(r) == set(columns) else dict(r)
                for r in obj["rows"]]
        return cls(obj["name"], columns, rows,
                   obj.get("notes", ""), dict(obj.get("meta", {})))

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]], name: str = "") -> Table:
        """A table of plain dict rows, its columns those of the first row (in order)."""
        return cls(name, list(rows[0]) if rows else [], list(rows))

    def markdown(self, columns: list[str] | None = None, digits: int = 4,
                 headers: dict[str, str] | None = None) -> str:
        """A markdown table of ``columns`` (default: all) for the book: floats to ``digits``
        significant digits, ``None`` and NaN (not measured / not applicable) as a dash, a
        bar in a cell escaped; ``headers`` renames columns for display."""
        columns = self.columns if columns is None else list(columns)
        unknown = [c for c in columns if c not in self.columns]
        if unknown:
            raise KeyError(f"table {self.name!r} has no column(s) {', '.join(unknown)}; "
                           f"columns: {', '.join(self.columns)}")
        headers = headers or {}
        out = ["| " + " | ".join(headers.get(c, c) for c in columns) + " |",
               "|" + "---|" * len(columns)]
        out += ["| " + " | ".join(_markdown_cell(r[c], digits) for c in columns) + " |"
                for r in self.rows]
        return "\n".join(out)

    def format(self, digits: int = 4) -> str:
        """A plain-text rendering for the terminal."""
        def cell(v: Any) -> str:
            if isinstance(v, float):
                return f"{v:.{digits}g}"
            return str(v)

        cells = [[cell(r[c]) for c in self.columns] for r in self.rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in
                  enumerate(self.columns)]
        header = "  ".join(c.rjust(w) for c, w in zip(self.columns, widths, strict=True))
        lines = [self.name, header]
        lines += ["  ".join(x.rjust(w) for x, w in zip(row, widths, strict=True)) for row in cells]
        if self.notes:
            lines.append("notes: " + self.notes)
        return "\n".join(lines)


def _markdown_cell(v: Any, digits: int) -> str:
    if v is None:
        return "—"  # JSON null: a value that was NaN/inf or not measured
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{digits}g}" if math.isfinite(v) else "—"  # NaN: not applicable
    if isinstance(v, (list, tuple)):
        return ", ".join(_markdown_cell(x, digits) for x in v)
    return " ".join(str(v).split()).replace("|", "\\|")


def write_tables(tables: dict[str, Table], out: str | Path, *, config: dict,
                 seed: int | None, wall_time_s: float | None = None) -> list[Path]:
    """Write each table as ``OUT/<name>.json`` (atomically, with a run card)."""
    from blindspot.provenance import atomic_write_json, run_card

    card = run_card(config=config, seed=seed, wall_time_s=wall_time_s)
    out = Path(out)
    return [atomic_write_json(out / f"{name}.json", {**t.to_json(), "run_card": card})
            for name, t in tables.items()]


def read_table(path: str | Path) -> Table:
    """Read a table written by :func:`write_tables`; clear errors for missing/corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no diagnostics table at {path}; write it with "
                                "`blindspot diagnose CHECKPOINT --out DIR`")
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); rerun `blindspot diagnose`") from None
    return Table.from_json(obj)


def read_tables(folder: str | Path, names: Iterable[str]) -> dict[str, Table]:
    """``{name: Table}`` of ``folder/<name>.json`` for each name (one diagnosis)."""
    return {n: read_table(Path(folder) / f"{n}.json") for n in names}


def _plain(v: Any) -> Any:
    """JSON-safe scalar: tensors/numpy scalars to Python numbers; NaN/inf to None (JSON has no
    NaN; a missing value is spelled null)."""
    if hasattr(v, "item") and not isinstance(v, (list, tuple, dict)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v

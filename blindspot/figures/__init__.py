"""blindspot.figures: one function per figure; the book and ``blindspot figures`` call them.

Layer modules hold the drawing functions (``theory``: chapters 1-3 from the symbolic layer;
``toy``, ``table1``, ``diagnostics``: one per layer). A drawing function takes data or
parameters and returns a :class:`matplotlib.figure.Figure` (Agg backend, never ``plt.show()``).

A *registered* figure is a zero-configuration recipe ``draw(results) -> Figure`` that reads
only committed result files under ``results`` (the repository's ``results/`` folder) or
computes from package functions; it is registered with :func:`figure`, which records the
caption, the result files it needs and the command that produces them. The book shows
registered figures with :func:`draw`; ``blindspot figures OUTDIR`` saves every one of them
(:mod:`blindspot.figures.cli`). A recipe whose result files are missing raises
:class:`MissingResults` naming the command that writes them, so a page never shows a
figure made from numbers that are not committed.

Layer modules are imported by :func:`load_all` (every public module of this package, like
:func:`blindspot.claims.load_all`), so adding a module is enough to add its figures.
"""

from __future__ import annotations

import importlib
import io
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib is imported lazily: `blindspot --help` should not pay for it
    from matplotlib.figure import Figure

RESULTS_ENV = "BLINDSPOT_RESULTS"
"""Environment variable naming the results folder; overrides the search in :func:`results_root`."""


class MissingResults(FileNotFoundError):
    """A registered figure's result files are absent; the message names the command that
    writes them."""


@dataclass(frozen=True)
class FigureSpec:
    name: str
    draw: Callable[[Path], Figure]
    caption: str
    needs: tuple[str, ...] = ()  # paths relative to the results folder
    command: str | None = None  # the command that writes ``needs``


FIGURES: dict[str, FigureSpec] = {}


def figure(name: str, *, caption: str, needs: tuple[str, ...] | list[str] = (),
           command: str | None = None):
    """Register ``draw(results: Path) -> Figure`` as the figure ``name``.

    ``needs`` lists the result files (relative to the results folder) the recipe reads;
    :func:`draw` checks them first and raises :class:`MissingResults` naming ``command``.
    """
    if not name or any(ch in name for ch in "/\\ "):
        raise ValueError(f"figure name {name!r} must be non-empty without '/', '\\' or spaces "
                         "(it becomes a file name)")
    if needs and not command:
        raise ValueError(f"figure {name!r} needs result files {list(needs)}: also give the "
                         "command that writes them (command=...)")

    def decorate(fn: Callable[[Path], Figure]) -> Callable[[Path], Figure]:
        if name in FIGURES and FIGURES[name].draw.__qualname__ != fn.__qualname__:
            raise ValueError(f"figure {name!r} registered twice")
        FIGURES[name] = FigureSpec(name, fn, " ".join(caption.split()), tuple(needs), command)
        return fn

    return decorate


def load_all() -> dict[str, FigureSpec]:
    """Import every public module of :mod:`blindspot.figures` (which registers its figures)."""
    import blindspot.figures as pkg

    for mod in sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)):
        if not mod.startswith("_") and mod != "cli":
            importlib.import_module(f"blindspot.figures.{mod}")
    return dict(FIGURES)


def results_root(start: str | os.PathLike | None = None) -> Path:
    """The results folder: ``$BLINDSPOT_RESULTS`` if set, else ``results/`` in the nearest
    folder at or above ``start`` (default: the current directory) that holds a
    ``pyproject.toml``, else ``results/`` beside the installed package's source tree."""
    env = os.environ.get(RESULTS_ENV)
    if env:
        path = Path(env)
        if not path.is_dir():
            raise NotADirectoryError(f"${RESULTS_ENV}={env!r} is not a folder; point it at the "
                                     "repository's results/ folder or unset it")
        return path
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "results").is_dir():
            return folder / "results"
    return Path(__file__).resolve().parents[2] / "results"


def draw(name: str, results: str | os.PathLike | None = None) -> Figure:
    """Draw the registered figure ``name`` from ``results`` (default: :func:`results_root`)."""
    figures = load_all()
    if name not in figures:
        raise KeyError(f"unknown figure {name!r}; registered figures: {', '.join(sorted(figures))}")
    spec = figures[name]
    root = Path(results) if results is not None else results_root()
    missing = [p for p in spec.needs if not (root / p).exists()]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3
                                          else "")
        raise MissingResults(f"figure {name!r} needs {shown} under {root}; "
                             f"produce them with `{spec.command}`")
    return spec.draw(root)


def save_png(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save ``fig`` as PNG atomically, without the matplotlib version stamp, so the same
    figure gives the same bytes on every run."""
    from blindspot.provenance import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


__all__ = ["FIGURES", "FigureSpec", "MissingResults", "RESULTS_ENV", "draw", "figure",
           "load_all", "results_root", "save_png"]

# Layer modules re-export their drawing functions below (one import line per layer).
from blindspot.figures.diagnostics import draw_diagnostics, draw_grid  # noqa: E402,F401
from blindspot.figures.table1 import draw_table1  # noqa: E402,F401
from blindspot.figures.toy import (  # noqa: E402,F401
    draw_loop_trajectories,
    draw_regime_diagram,
    draw_training_trajectories,
)

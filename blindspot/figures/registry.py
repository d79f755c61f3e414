"""The figure registry: :func:`figure` registers a recipe ``draw(results) -> Figure`` with its
caption, the result files it reads and the command that writes them; :func:`results_root`
finds the results folder; :func:`save_png` writes a figure byte-reproducibly.

Each layer module of :mod:`blindspot.figures` imports this module to register its figures;
this module imports none of them (``blindspot.figures`` lists them and draws a figure by
name, :func:`blindspot.figures.draw`).
"""

from __future__ import annotations

import io
import os
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
    :func:`blindspot.figures.draw` checks them first and raises :class:`MissingResults`
    naming ``command``.
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


def save_png(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save ``fig`` as PNG atomically, without the matplotlib version stamp, so the same
    figure gives the same bytes on every run."""
    from blindspot.provenance import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())

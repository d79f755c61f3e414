"""blindspot.figures: one function per figure; the book and ``blindspot figures`` call them.

Layer modules hold the drawing functions (``theory``: chapters 1-3 from the symbolic layer;
``toy``, ``table1``, ``diagnostics``, ``early_exit``, ``scale_growth``, ``growth_law``,
``control``: one per
layer or experiment). A drawing function takes data or parameters and returns a
:class:`matplotlib.figure.Figure` (Agg backend, never ``plt.show()``).

A *registered* figure is a zero-configuration recipe ``draw(results) -> Figure`` that reads
only committed result files under ``results`` (the repository's ``results/`` folder) or
computes from package functions; each layer module registers its recipes with
:func:`~blindspot.figures.registry.figure` (:mod:`blindspot.figures.registry`, which imports
no layer module back), recording the caption, the result files it needs and the command that
produces them. This package imports every layer module below, so :func:`load_all` holds every
figure; the book shows one with :func:`draw`, and ``blindspot figures OUTDIR`` saves every
one of them (:mod:`blindspot.figures.cli`). A recipe whose result files are missing raises
:class:`MissingResults` naming the command that writes them, so a page never shows a figure
made from numbers that are not committed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from blindspot.figures import (  # every layer module: importing one registers its figures
    control,
    diagnostics,
    early_exit,
    growth_law,
    registry,
    scale_growth,
    table1,
    theory,
    toy,
)
from blindspot.figures.diagnostics import draw_diagnostics, draw_grid
from blindspot.figures.registry import (
    FIGURES,
    RESULTS_ENV,
    FigureSpec,
    MissingResults,
    figure,
    results_root,
    save_png,
)
from blindspot.figures.table1 import draw_table1
from blindspot.figures.toy import (
    draw_loop_trajectories,
    draw_regime_diagram,
    draw_training_trajectories,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LAYERS = (control, diagnostics, early_exit, growth_law, scale_growth, table1, theory, toy)
"""The modules whose figures are registered (all of them are imported above)."""


def load_all() -> dict[str, FigureSpec]:
    """Every registered figure by name (a copy of the registry's ``FIGURES``, which this
    package re-exports)."""
    return dict(registry.FIGURES)


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


__all__ = ["FIGURES", "LAYERS", "RESULTS_ENV", "FigureSpec", "MissingResults", "draw",
           "draw_diagnostics", "draw_grid", "draw_loop_trajectories", "draw_regime_diagram",
           "draw_table1", "draw_training_trajectories", "figure", "load_all", "results_root",
           "save_png"]

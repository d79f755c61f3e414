"""Toy figures are produced by package functions and registered for `blindspot figures`."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from blindspot.figures import draw, load_all  # noqa: E402
from blindspot.figures.toy import (  # noqa: E402
    draw_loop_trajectories,
    draw_regime_diagram,
    draw_training_trajectories,
)


def test_toy_figures_are_registered_and_draw(tmp_path):
    figures = load_all()
    for name in ("toy-regimes", "toy-loops", "toy-training"):
        assert name in figures
    fig = draw("toy-regimes", tmp_path)  # computed from package functions: no result files
    mesh = fig.axes[0].collections[0]
    values = np.asarray(mesh.get_array())
    # exponential corner grows, bounded corner does not: the colors carry the regimes
    assert values.max() > 1.0 and values.min() < 0.5
    plt.close(fig)


@pytest.mark.parametrize("fn, kwargs", [
    (draw_regime_diagram, dict(rho=np.linspace(0.9, 1.1, 11), a=np.linspace(-1, 1, 11), K=10)),
    (draw_loop_trajectories, dict(K=10, n_paths=20)),
    (draw_training_trajectories, dict(steps=50, n=8, n_runs=2)),
])
def test_drawing_functions_return_figures(fn, kwargs):
    fig = fn(**kwargs)
    assert isinstance(fig, matplotlib.figure.Figure) and fig.axes
    plt.close(fig)

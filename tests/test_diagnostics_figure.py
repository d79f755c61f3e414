"""The diagnostics figure reads as a figure: titled by the run, every axis labelled, panel (d)
draws coinciding curves once, log axes carry plain numbers, and panel (b) says when its
closed form lies below what the measurement can resolve."""

import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from blindspot.figures.diagnostics import draw_diagnostics, loops_label, same_curves  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("scale", "radial_gradient", "lemma2", "scale_sensitivity", "radial_clamp",
          "early_exit", "halting")
PLAIN = re.compile(r"^(−|-)?\d+(\.\d+)?(e[−+-]\d+)?$")  # 20, 0.95, 1000, 1e-08


@pytest.fixture(scope="module")
def committed():
    from blindspot.diagnostics.table import read_tables

    root = ROOT / "results" / "diagnostics-cpu" / "per_loop-norm"
    if not (root / "scale.json").is_file():
        pytest.skip("results/diagnostics-cpu/per_loop-norm is not committed here")
    return read_tables(root, TABLES)


def test_every_panel_is_labelled_and_ticks_are_plain_numbers(committed):
    fig = draw_diagnostics(committed, title="per_loop-norm")
    try:
        fig.canvas.draw()
        assert fig._suptitle.get_text() == "per_loop-norm"
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()
            for axis in (ax.xaxis, ax.yaxis):
                for label in axis.get_ticklabels() + axis.get_ticklabels(minor=True):
                    text = label.get_text()
                    assert text == "" or PLAIN.match(text), (ax.get_title(), text)
    finally:
        plt.close(fig)


def test_panel_d_draws_coinciding_curves_once(committed):
    fig = draw_diagnostics(committed)
    try:
        d = fig.axes[3]
        labels = [t.get_text() for t in d.get_legend().get_texts()]
        # per-loop RMSNorm readout: rescaling any loop's state at the readout changes nothing,
        # and neither does rescaling the carried state of loops 1-3; loop 4's carry does
        assert labels == ["readout, loops 1–4: flat", "carry, loops 1–3: flat", "carry, loop 4"]
        assert len(d.lines) == 3
    finally:
        plt.close(fig)


def test_panel_b_says_when_the_closed_form_is_below_round_off(committed):
    from blindspot.diagnostics.table import read_tables

    raw = read_tables(ROOT / "results" / "diagnostics-cpu" / "per_loop-raw", TABLES)
    fig = draw_diagnostics(raw)  # a raw readout: closed form and measurement agree, no note
    try:
        assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == \
            ["measured", "closed form", "dtype round-off"]
    finally:
        plt.close(fig)
    fig = draw_diagnostics(committed)
    try:
        labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
        assert "closed form" in labels
        assert any(x.startswith("closed form (the ε-leak) ≥ ") and
                   x.endswith("x below: the\nmeasured share is round-off, not a leak")
                   for x in labels), labels
    finally:
        plt.close(fig)


def test_same_curves_groups_only_curves_that_agree_at_every_alpha():
    flat = [(0.1, 0.0), (1.0, 0.0), (10.0, 0.0)]
    near = [(0.1, 5e-5), (1.0, 0.0), (10.0, -5e-5)]  # within 1e-4 nats of flat
    bent = [(0.1, 0.2), (1.0, 0.0), (10.0, -0.04)]
    assert same_curves({1: flat, 2: near, 3: bent, 4: flat}) == [[1, 2, 4], [3]]
    assert same_curves({1: flat, 2: [(0.1, 0.0), (1.0, 0.0)]}) == [[1], [2]]  # other αs
    assert loops_label([1, 2, 3, 5]) == "loops 1–3, 5" and loops_label([4]) == "loop 4"


def test_diagnose_titles_the_figure_with_the_run_name(tiny_checkpoint, tmp_path):
    from blindspot.experiments.diagnose import diagnose_checkpoint

    ckpt = tiny_checkpoint(tmp_path / "runs" / "tiny-seed3" / "checkpoint.pt", num_loops=1)
    titles = []
    diagnose_checkpoint(ckpt, tmp_path / "out", toy=False, progress=False,
                        figure=lambda tables, title, path: titles.append(title))
    assert titles == ["tiny-seed3"]  # not the file's stem, "checkpoint"

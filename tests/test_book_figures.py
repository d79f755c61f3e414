"""The figure registry (blindspot.figures) and ``blindspot figures``: one source per figure,
missing results reported with the command that writes them, files written byte-for-byte
reproducibly."""

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import blindspot.figures as F  # noqa: E402
from blindspot.figures import cli  # noqa: E402


def _line(results: Path):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, float((results / "x.txt").read_text())])
    return fig


@pytest.fixture
def registered(monkeypatch):
    """A test figure that reads results/x.txt, registered for the test only (after the
    package's own figures are loaded, so they land in the real registry)."""
    monkeypatch.setattr(F.registry, "FIGURES", F.load_all())
    F.figure("test-line", caption="a line", needs=("x.txt",), command="echo 2 > x.txt")(_line)
    return "test-line"


def test_figure_rejects_bad_names_and_needs_without_command():
    with pytest.raises(ValueError, match="file name"):
        F.figure("a/b", caption="x")
    with pytest.raises(ValueError, match="command"):
        F.figure("ok", caption="x", needs=("r.json",))


def test_missing_results_name_the_command(registered, tmp_path):
    with pytest.raises(F.MissingResults, match="echo 2 > x.txt"):
        F.draw(registered, tmp_path)
    F.figure("many", caption="c", needs=[f"r{i}.json" for i in range(5)], command="make")(_line)
    with pytest.raises(F.MissingResults, match=r"r0.json, r1.json, r2.json and 2 more"):
        F.draw("many", tmp_path)


def test_unknown_figure_lists_valid_names(registered, tmp_path):
    with pytest.raises(KeyError, match="test-line"):
        F.draw("no-such-figure", tmp_path)


def test_save_png_is_byte_reproducible(registered, tmp_path):
    (tmp_path / "x.txt").write_text("2")
    a = F.save_png(F.draw(registered, tmp_path), tmp_path / "a.png").read_bytes()
    b = F.save_png(F.draw(registered, tmp_path), tmp_path / "b.png").read_bytes()
    plt.close("all")
    assert a[:8] == b"\x89PNG\r\n\x1a\n" and a == b
    assert b"Matplotlib" not in a  # the version stamp would make bytes differ across installs


def test_cli_writes_skips_and_strict_fails(registered, tmp_path, capsys):
    out = tmp_path / "out"
    res = tmp_path / "res"
    res.mkdir()
    assert cli.main([str(out), "--results", str(res), "--only", registered]) == 0
    assert "SKIPPED test-line" in capsys.readouterr().out and not out.exists()
    assert cli.main([str(out), "--results", str(res), "--only", registered, "--strict"]) == 1
    (res / "x.txt").write_text("3")
    assert cli.main([str(out), "--results", str(res), "--only", registered]) == 0
    assert (out / "test-line.png").stat().st_size > 0


def test_cli_bad_arguments(registered, tmp_path, capsys):
    assert cli.main([str(tmp_path), "--only", "nope"]) == 2
    assert cli.main([str(tmp_path), "--results", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_results_root_env_and_search(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "results").mkdir()
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.delenv(F.RESULTS_ENV, raising=False)
    assert F.results_root(tmp_path / "a" / "b") == tmp_path / "results"
    monkeypatch.setenv(F.RESULTS_ENV, str(tmp_path / "a"))
    assert F.results_root() == tmp_path / "a"
    monkeypatch.setenv(F.RESULTS_ENV, str(tmp_path / "missing"))
    with pytest.raises(NotADirectoryError, match="BLINDSPOT_RESULTS"):
        F.results_root()


def test_normalized_readout_landscape_has_no_radial_gradient():
    from blindspot.figures.theory import readout_landscape

    W = np.random.default_rng(1).normal(size=(4, 2))
    norm = readout_landscape(W, 2, "norm", grid=8, rings=(0.01, 1.0, 1e3))
    raw = readout_landscape(W, 2, "raw", grid=8)
    # ε = 0: <h, ∇L> is exactly 0; float64 round-off in the cosine is ~1e-16, 1e-12 leaves room
    assert norm.radial_share.max() < 1e-12
    assert np.median(raw.radial_share) > 0.1  # a raw readout's gradient is not tangent
    # invariance along rays: L(c h) = L(h) on the grid (pairs of points on one ray)
    leak = readout_landscape(W, 2, "norm", eps=1e-2, grid=8, rings=(0.1, 10.0))
    small, large = np.split(leak.radial_share, 2)
    assert large.max() < small.min()  # with ε > 0 the share shrinks as the scale grows
    with pytest.raises(ValueError, match="readout"):
        readout_landscape(W, 0, "layer")
    with pytest.raises(ValueError, match=r"\(V, 2\)"):
        readout_landscape(W, 4, "norm")


def test_prenorm_recurrence_obeys_the_exact_lemma2_identity():
    from blindspot.figures.theory import prenorm_recurrence

    rng = np.random.default_rng(2)
    A, b = rng.normal(size=(5, 5)), rng.normal(size=5)
    rec = prenorm_recurrence(A, b, rng.normal(size=5), loops=30)
    s, a = rec.scale, rec.radial
    delta_sq = a**2 + rec.tangential**2
    # s_{k+1}^2 = s_k^2 + 2 s_k a_k + ‖Δ‖^2 holds exactly; 1e-12 relative is float64 round-off
    np.testing.assert_allclose(s[1:] ** 2, s[:-1] ** 2 + 2 * s[:-1] * a + delta_sq, rtol=1e-12)
    with pytest.raises(ValueError, match="loops"):
        prenorm_recurrence(A, b, b, loops=0)


def test_blind_spot_figure_is_registered_and_draws(tmp_path):
    fig = F.draw("blind-spot", tmp_path)  # needs no result files
    assert len(fig.axes) == 5  # three panels and two colour bars
    plt.close(fig)


def test_gd_on_sphere_norm_identity_and_weight_decay_equilibrium():
    from blindspot.figures.theory import equilibrium_sq_norm, gd_on_sphere

    free = gd_on_sphere(lr=0.5, steps=60, dim=6)
    # ‖w_{t+1}‖² = ‖w_t‖² + η²‖∇L‖² exactly (Euler: <w, ∇L> = 0); float64 round-off, 1e-12 rel
    np.testing.assert_allclose(free.sq_norm, free.predicted_sq_norm, rtol=1e-12)
    assert np.all(np.diff(free.sq_norm) > 0)  # monotone growth without weight decay
    decayed = gd_on_sphere(lr=0.5, weight_decay=0.02, steps=400, dim=6)
    tail = decayed.sq_norm[200:]
    # equilibrium ‖w*‖⁴ ≈ ηG²/(2λ) to first order in ηλ = 0.01; minibatch noise makes ‖w‖²
    # fluctuate by a few percent around it, so 10 % on the tail mean
    assert abs(tail.mean() / equilibrium_sq_norm(decayed) - 1) < 0.10
    # angular step √(2ηλ) = 0.2 on average, same first-order and noise argument
    assert abs(decayed.angular_step[200:].mean() / np.sqrt(2 * 0.5 * 0.02) - 1) < 0.10
    with pytest.raises(ValueError, match="weight_decay"):
        equilibrium_sq_norm(free)
    with pytest.raises(ValueError, match="lr > 0"):
        gd_on_sphere(lr=-1.0)


def test_eps_leak_closed_form_from_the_symbolic_layer_matches_autograd():
    from blindspot.figures.theory import EPS_LEAK_DIM, eps_leak, symbolic_ce_radial_inner

    leak = eps_leak(symbolic_ce_radial_inner(EPS_LEAK_DIM), eps=(1e-6, 1e-3),
                    scales=np.logspace(-3, 2, 11), dim=EPS_LEAK_DIM)
    visible = leak.closed > 1e-9  # below that, float64 round-off in autograd dominates
    assert visible.sum() >= 10
    # the same number computed two ways in float64; 1e-6 relative covers cancellation in
    # the autograd inner product <h, ∇L> when it is ~1e-9 of ‖h‖‖∇L‖
    np.testing.assert_allclose(leak.measured[visible], leak.closed[visible], rtol=1e-6)
    large = leak.scales > 10  # ms(h) >> ε: share = const · ε/ms(h), the constant set by W, u
    ratio = leak.measured[:, large] / (np.array(leak.eps)[:, None] / (leak.scales[large] ** 2
                                                                    / EPS_LEAK_DIM))
    # corrections are O(ε/ms) <= 1e-3 · 3/100 here; 1e-4 relative bounds them
    np.testing.assert_allclose(ratio, ratio[0, 0], rtol=1e-4)


def test_early_exit_figure_draws_from_diagnostics_tables(tmp_path):
    import torch

    from blindspot.diagnostics.early_exit import early_exit_table, halting_table
    from blindspot.figures.early_exit import draw_early_exit

    g = torch.Generator().manual_seed(0)
    logits = [torch.randn(4, 6, 5, generator=g, dtype=torch.float64) * k for k in (1, 2, 3)]
    targets = torch.randint(0, 5, (4, 6), generator=g)
    ce = torch.stack([torch.nn.functional.cross_entropy(z.flatten(0, 1), targets.flatten(),
                                                        reduction="none") for z in logits])
    tabs = {"early_exit": early_exit_table(ce, trained_loops=2),
            "halting": halting_table(logits, targets)}
    fig = draw_early_exit({"a": tabs, "b": {"early_exit": tabs["early_exit"]}})
    assert len(fig.axes[0].lines) == 3  # two conditions and the trained-depth marker
    plt.close(fig)
    with pytest.raises(ValueError, match="at least one"):
        draw_early_exit({})
    with pytest.raises(F.MissingResults, match="blindspot diagnose"):
        F.draw("early-exit-cpu-grid", tmp_path)

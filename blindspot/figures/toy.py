"""Figures of the toy-model chapter: computed from :mod:`blindspot.toy`, no result files.

Drawing functions take data or parameters and return a Figure (Agg; never ``plt.show()``);
the registered recipes at the bottom call them with fixed parameters and seeds, so the
figures are the same on every run. Test: ``tests/test_toy_figures.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from blindspot.figures.registry import figure
from blindspot.toy import (
    direction_block,
    predict_norm_trajectory,
    prenorm_scale,
    radial_moments,
    regime,
    simulate_prenorm_loop,
    simulate_radial,
    simulate_training,
)


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window
    import matplotlib.pyplot as plt

    return plt


def draw_regime_diagram(rho=None, a=None, dperp: float = 1.0, K: int = 50, s0: float = 1.0):
    """Regime diagram over (ρ, a): color = log10(s_K/s_0) of the pre-norm map
    :math:`s_{k+1} = \\sqrt{(\\rho s_k + a)^2 + d^2}` after K loops
    (:func:`blindspot.toy.prenorm_scale`), with the ρ = 1 line where the regimes of
    :func:`blindspot.toy.regime` meet (bounded | √k at a = 0 | linear | exponential)."""
    plt = _plt()
    rho = np.linspace(0.8, 1.2, 161) if rho is None else np.asarray(rho, dtype=float)
    a = np.linspace(-1.0, 1.0, 161) if a is None else np.asarray(a, dtype=float)
    R, A = np.meshgrid(rho, a)  # (len(a), len(rho))
    s = prenorm_scale(K, s0, A, dperp, R)["s"][-1]  # (len(a), len(rho))
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    mesh = ax.pcolormesh(R, A, np.log10(s / s0), shading="auto", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label=f"log10(s_K / s_0), K = {K}")
    ax.axvline(1.0, color="w", lw=1.2)
    ax.plot([1.0], [0.0], "o", color="w")
    labels = {"bounded": (0.88, 0.0), "exponential": (1.12, 0.0), "linear": (1.0, 0.6),
              "sqrt": (1.0, 0.0)}
    for name, (x, y) in labels.items():
        ax.annotate(name if name != "sqrt" else "√k (a = 0)", (x, y), color="w", ha="center",
                    xytext=(0, 8 if name == "sqrt" else 0), textcoords="offset points")
    ax.set_xlabel("ρ (radial retention per loop)")
    ax.set_ylabel("a (mean radial increment)")
    ax.set_title(f"Regimes of the loop scale (tangential norm d = {dperp:g})")
    return fig


def draw_loop_trajectories(settings: Sequence[tuple[float, float, float]] = (
        (0.8, 0.5, 0.3), (1.0, 0.3, 0.3), (1.05, 0.1, 0.3)),
        prenorm: Sequence[tuple[float, float, float]] = (
        (1.0, 0.0, 1.0), (1.0, 0.3, 1.0), (0.95, 0.3, 1.0)),
        K: int = 40, s0: float = 1.0, n_paths: int = 400, n: int = 32, seed: int = 0):
    r"""Predicted against simulated scale trajectories across loops.

    (a) scalar recurrence, one curve per ``(ρ, a, σ)`` in ``settings``: closed-form mean ±
    sd (:func:`blindspot.toy.radial_moments`) against ``n_paths`` simulated paths;
    (b) pre-norm vector loop :math:`h_{k+1} = \rho h_k + B(u_k)` with a block that
    sees only the direction (:func:`blindspot.toy.direction_block`), one curve per
    ``(ρ, a, d)`` in ``prenorm``: :func:`blindspot.toy.prenorm_scale` against the simulated
    ‖h_k‖ (:func:`blindspot.toy.simulate_prenorm_loop`)."""
    plt = _plt()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    k = np.arange(K + 1)
    for i, (rho, a, sigma) in enumerate(settings):
        pred = radial_moments(k, rho, a, sigma, s0)
        sim = simulate_radial(K, rho, a, sigma, s0, n_paths=n_paths, seed=seed + i)
        name = str(regime(rho, a, sigma, model="scalar"))
        line, = ax.plot(k, pred["mean"], lw=2, label=f"ρ={rho}, a={a}, σ={sigma} ({name})")
        ax.fill_between(k, pred["mean"] - pred["std"], pred["mean"] + pred["std"],
                        color=line.get_color(), alpha=0.15)
        ax.errorbar(k[::4], sim.mean(0)[::4], yerr=sim.std(0)[::4], fmt="o", ms=3,
                    color=line.get_color(), capsize=2)
    ax.set_xlabel("loop k")
    ax.set_ylabel("scale s_k")
    ax.set_title("(a) s' = ρs + a + σξ: closed form ± sd vs simulation", fontsize=10)
    ax.legend(fontsize=8)
    rng = np.random.default_rng(seed)
    h0 = rng.standard_normal(n)
    h0 *= s0 / np.linalg.norm(h0)
    for i, (rho, a, d) in enumerate(prenorm):
        pred = prenorm_scale(K, s0, a, d, rho)["s"]
        sim = simulate_prenorm_loop(direction_block(n, a=a, d=d, seed=seed + i), h0, K,
                                    restoring=1 - rho)["s"]
        name = str(regime(rho, a, d, model="prenorm"))
        line, = bx.plot(k, pred, lw=2, label=f"ρ={rho}, a={a}, d={d} ({name})")
        bx.plot(k[::2], sim[::2], "o", ms=3, color=line.get_color())
    bx.set_xlabel("loop k")
    bx.set_ylabel("‖H_k‖")
    bx.set_title("(b) pre-norm loop H + B(H/‖H‖): prediction vs simulated ‖H_k‖",
                 fontsize=10)
    bx.legend(fontsize=8)
    fig.tight_layout()
    return fig


def draw_training_trajectories(cases: Sequence[tuple[str, dict]] = (
        ("gd", dict(lr=0.1)), ("momentum", dict(lr=0.02, beta=0.9, signal=0.2)),
        ("adam", dict(lr=0.01, beta=0.9, beta2=0.95, signal=0.0)),
        ("adamw", dict(lr=0.02, beta=0.9, beta2=0.95, weight_decay=0.05, signal=0.0))),
        steps: int = 2000, n: int = 32, n_runs: int = 8, seed: int = 0):
    """Norm of a parameter the loss sees only through its direction, across training:
    prediction (:func:`blindspot.toy.predict_norm_trajectory`) against simulation
    (:func:`blindspot.toy.simulate_training`), one panel per optimizer."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(cases), figsize=(3.2 * len(cases), 3.4), squeeze=False)
    t = np.arange(steps + 1)
    for ax, (opt, kw) in zip(axes[0], cases, strict=True):
        sim = simulate_training(opt, steps, n=n, n_runs=n_runs, seed=seed, **kw)
        pred = predict_norm_trajectory(opt, steps, norm0=1.0, grad_sq=sim["grad_sq"].mean(),
                                       n=n, lr=kw["lr"], beta=kw.get("beta", 0.9),
                                       weight_decay=kw.get("weight_decay", 0.0))
        ax.plot(t, sim["norm"], color="0.7", lw=0.6)
        ax.plot(t, pred["norm"], "k--", lw=1.5, label="prediction")
        eq = float(pred["equilibrium_norm"])
        if np.isfinite(eq):
            ax.axhline(eq, color="C3", lw=1, label="equilibrium")
        ax.set_title(f"{opt} ({', '.join(f'{k}={v}' for k, v in kw.items() if k != 'signal')})",
                     fontsize=8)
        ax.set_xlabel("step t")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("‖w_t‖ (grey: simulated runs)")
    fig.tight_layout()
    return fig


@figure("toy-regimes", caption="""Regime diagram of the loop scale in the toy: log growth of
s_K over (rho, a) for the pre-norm map s' = sqrt((rho s + a)^2 + d^2); bounded for rho < 1,
sqrt(k) on the point rho = 1, a = 0, linear for rho = 1, a > 0, exponential for rho > 1.""")
def regime_figure(results: Path):
    return draw_regime_diagram()


@figure("toy-loops", caption="""Across loops: (a) closed-form mean and spread of the scale s_k
(lines and bands) against simulated paths of the scalar radial recurrence (dots); (b) the
pre-norm map sqrt((rho s + a)^2 + d^2) against the simulated norm of a vector loop whose block
sees only the direction: sqrt(k) growth at a = 0, linear at a > 0, bounded with rho < 1.""")
def loop_figure(results: Path):
    return draw_loop_trajectories()


@figure("toy-training", caption="""Across training: predicted norm of a scale-invariant
parameter (dashed) against simulated runs (grey) under GD, momentum, Adam and AdamW; GD grows
like t^(1/4), Adam like t^(1/2), weight decay settles at the closed-form equilibrium.""")
def training_figure(results: Path):
    return draw_training_trajectories()

"""Figures of chapters 1-3 (theory): computed from package functions, no result files.

Each registered recipe evaluates the package's own kernels (``blindspot.nn.functional``) in
float64 with ``torch.func`` autograd, or the symbolic layer's exports; nothing is typed in
twice. Drawing functions take their data as arguments; the registered recipes at the bottom
produce that data with fixed seeds, so the figures are the same on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blindspot.figures import figure


@dataclass(frozen=True)
class Landscape:
    """A 2-d slice of a readout loss: L on a grid and -∇L at probe points."""

    x: np.ndarray  # (G,) grid coordinates
    loss: np.ndarray  # (G, G) L(h) at h = (x_j, x_i)
    points: np.ndarray  # (P, 2) probe states h
    descent: np.ndarray  # (P, 2) -∇L(h) at the probes
    radial_share: np.ndarray  # (P,) |<h, ∇L>| / (‖h‖ ‖∇L‖)


def readout_landscape(W: np.ndarray, y: int, readout: str, eps: float = 0.0,
                      extent: float = 3.0, grid: int = 160, rings: tuple[float, ...] = (1.0, 2.2),
                      per_ring: int = 12) -> Landscape:
    """Cross-entropy of a readout over the plane, :math:`L(h) = \\mathrm{CE}(W\\,N(h), y)`
    with :math:`N` = RMSNorm (``readout="norm"``, the package kernel
    :func:`blindspot.nn.rms_norm` with ``eps``) or the identity (``readout="raw"``), and its
    autograd descent direction at ``per_ring`` points on circles of radius ``rings``.
    ``W`` is (V, 2). For ``"norm"`` with ε = 0, :math:`L(c h) = L(h)`: level sets are rays and
    the descent direction is tangent to every circle (checked in tests/test_book_figures.py).
    """
    import torch
    from torch.func import grad, vmap

    from blindspot.nn import rms_norm

    if readout not in ("norm", "raw"):
        raise ValueError(f"readout must be 'norm' or 'raw', got {readout!r}")
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[1] != 2 or not 0 <= y < W.shape[0]:
        raise ValueError(f"W must be (V, 2) and 0 <= y < V; got W {W.shape}, y={y}")
    Wt = torch.as_tensor(W)  # (V, 2)

    def loss(h):  # h: (2,)
        z = Wt @ (rms_norm(h, eps=eps) if readout == "norm" else h)  # (V,)
        return torch.logsumexp(z, 0) - z[y]

    x = np.linspace(-extent, extent, grid)
    X, Y = np.meshgrid(x, x)  # (G, G)
    H = torch.as_tensor(np.stack([X.ravel(), Y.ravel()], axis=1))  # (G*G, 2)
    L = vmap(loss)(H).reshape(grid, grid).numpy()
    angles = np.linspace(0, 2 * np.pi, per_ring, endpoint=False)
    pts = np.concatenate([r * np.stack([np.cos(angles), np.sin(angles)], 1) for r in rings])
    g = vmap(grad(loss))(torch.as_tensor(pts)).numpy()  # (P, 2)
    share = np.abs((pts * g).sum(1)) / (np.linalg.norm(pts, axis=1) * np.linalg.norm(g, axis=1))
    return Landscape(x, L, pts, -g, share)


@dataclass(frozen=True)
class Recurrence:
    """A pre-norm residual recurrence h_{k+1} = h_k + B(N(h_k)) and its Lemma 2 quantities."""

    states: np.ndarray  # (K+1, n) h_0..h_K
    scale: np.ndarray  # (K+1,) s_k = ‖h_k‖
    radial: np.ndarray  # (K,) a_k = <u_k, Δ_k>
    tangential: np.ndarray  # (K,) ‖Δ⊥_k‖
    angular_step: np.ndarray  # (K,) ‖u_{k+1} - u_k‖


def prenorm_recurrence(A: np.ndarray, b: np.ndarray, h0: np.ndarray, loops: int) -> Recurrence:
    """Iterate :math:`h_{k+1} = h_k + \\Delta_k`, :math:`\\Delta_k = A\\,N(h_k) + b` with
    :math:`N` = RMSNorm (ε = 0, :func:`blindspot.nn.rms_norm`), so each update depends only on
    the direction :math:`u_k = h_k/s_k` and the scale :math:`s_k` is carried, never seen.
    Returns the scale, the radial increment :math:`a_k = \\langle u_k, \\Delta_k\\rangle`,
    :math:`\\|\\Delta_\\perp\\|` and the angular step (Lemma 2: about
    :math:`\\|\\Delta_\\perp\\|/s_k` for large :math:`s_k`).
    """
    import torch

    from blindspot.nn import radial_split, rms_norm

    if loops < 1:
        raise ValueError(f"loops must be >= 1, got {loops}")
    A_t = torch.as_tensor(np.asarray(A, np.float64))  # (n, n)
    b_t = torch.as_tensor(np.asarray(b, np.float64))  # (n,)
    h = torch.as_tensor(np.asarray(h0, np.float64))  # (n,)
    states, radial, tang = [h], [], []
    for _ in range(loops):
        delta = A_t @ rms_norm(h, eps=0.0) + b_t  # (n,) depends on h/‖h‖ only
        a, perp = radial_split(h, delta)
        radial.append(float(a))
        tang.append(float(perp.norm()))
        h = h + delta
        states.append(h)
    S = torch.stack(states).numpy()  # (K+1, n)
    s = np.linalg.norm(S, axis=1)
    U = S / s[:, None]
    return Recurrence(S, s, np.array(radial), np.array(tang),
                      np.linalg.norm(np.diff(U, axis=0), axis=1))


def draw_blind_spot(norm: Landscape, raw: Landscape, rec: Recurrence):
    """Chapter 1's picture: (a) a normalized readout's loss is constant along rays and its
    gradient is tangent; (b) a raw readout's is not; (c) the recurrence grows the scale the
    readout cannot see while its angular step shrinks like 1/s."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.2))
    for ax, land, title in ((axes[0], norm, "(a) RMSNorm readout: $L(c\\,h)=L(h)$"),
                            (axes[1], raw, "(b) raw readout: $L$ sees the scale")):
        cs = ax.contourf(land.x, land.x, land.loss, levels=20, cmap="viridis")
        fig.colorbar(cs, ax=ax, fraction=0.046, pad=0.04, label="cross-entropy")
        for r in np.unique(np.round(np.linalg.norm(land.points, axis=1), 6)):
            ax.add_patch(plt.Circle((0, 0), r, fill=False, ls=":", color="w", lw=0.8))
        d = land.descent / np.linalg.norm(land.descent, axis=1, keepdims=True)
        ax.quiver(land.points[:, 0], land.points[:, 1], d[:, 0], d[:, 1], color="w",
                  angles="xy", scale_units="xy", scale=2.2, width=0.008)
        ax.set_title(title + f"\nmax radial share of $\\nabla L$: {land.radial_share.max():.1e}",
                     fontsize=10)
        ax.set_xlabel("$h_1$")
        ax.set_ylabel("$h_2$")
        ax.set_aspect("equal")
    ax = axes[2]
    k = np.arange(len(rec.scale))
    ax.plot(k, rec.scale, "o-", ms=3, label="scale $s_k=\\|h_k\\|$")
    ax.plot(k[:-1], rec.angular_step, "s-", ms=3, label="angular step $\\|u_{k+1}-u_k\\|$")
    ax.plot(k[:-1], rec.tangential / rec.scale[:-1], "k--", lw=1,
            label="Lemma 2: $\\|\\Delta_\\perp\\|/s_k$")
    ax.set_yscale("log")
    ax.set_xlabel("loop $k$")
    ax.set_title("(c) pre-norm recurrence $h_{k+1}=h_k+B(N(h_k))$", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def blind_spot_inputs(seed: int = 0) -> tuple[Landscape, Landscape, Recurrence]:
    """The data of chapter 1's picture: a random 3-class readout W (2-d states, target 0)
    and a random direction-only update with a positive mean radial part, 40 loops."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(3, 2)) * 1.5
    norm = readout_landscape(W, 0, "norm")
    raw = readout_landscape(W, 0, "raw")
    n = 2
    A = 0.3 * np.eye(n) + 0.6 * np.array([[0.0, -1.0], [1.0, 0.0]])  # outward + rotation
    rec = prenorm_recurrence(A, np.zeros(n), np.array([1.0, 0.0]), loops=40)
    return norm, raw, rec


@figure("blind-spot", caption="""The blind spot in one picture. (a) Through an RMSNorm readout
the cross-entropy is constant along rays and its gradient is tangent to every circle; (b)
through a raw readout it is not; (c) a pre-norm residual recurrence grows the scale s_k that
(a) cannot see, while its angular step shrinks like 1/s_k (Lemma 2).""")
def blind_spot_figure(results: Path):
    return draw_blind_spot(*blind_spot_inputs())

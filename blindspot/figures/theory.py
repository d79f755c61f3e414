"""Figures of chapters 1-3 (theory): computed from package functions, no result files.

Each registered recipe evaluates the package's own kernels (``blindspot.nn.functional``) in
float64 with torch autograd, or the symbolic layer's exports; nothing is typed in
twice. Drawing functions take their data as arguments; the registered recipes at the bottom
produce that data with fixed seeds, so the figures are the same on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blindspot.figures.registry import figure


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

    from blindspot.nn import rms_norm

    if readout not in ("norm", "raw"):
        raise ValueError(f"readout must be 'norm' or 'raw', got {readout!r}")
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[1] != 2 or not 0 <= y < W.shape[0]:
        raise ValueError(f"W must be (V, 2) and 0 <= y < V; got W {W.shape}, y={y}")
    Wt = torch.as_tensor(W)  # (V, 2)

    def losses(h):  # h: (P, 2) -> (P,), one loss per state
        z = (rms_norm(h, eps=eps) if readout == "norm" else h) @ Wt.T  # (P, V)
        return torch.logsumexp(z, 1) - z[:, y]

    x = np.linspace(-extent, extent, grid)
    X, Y = np.meshgrid(x, x)  # (G, G)
    H = torch.as_tensor(np.stack([X.ravel(), Y.ravel()], axis=1))  # (G*G, 2)
    L = losses(H).reshape(grid, grid).numpy()
    angles = np.linspace(0, 2 * np.pi, per_ring, endpoint=False)
    pts = np.concatenate([r * np.stack([np.cos(angles), np.sin(angles)], 1) for r in rings])
    P = torch.as_tensor(pts).requires_grad_(True)  # (P, 2)
    # the losses are independent per row, so the gradient of their sum is row-wise ∇L
    g = torch.autograd.grad(losses(P).sum(), P)[0].numpy()  # (P, 2)
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


@dataclass(frozen=True)
class EpsLeak:
    """Radial share of a normalized readout's gradient against the scale, per ε."""

    scales: np.ndarray  # (S,) s = ‖h‖
    eps: tuple[float, ...]
    measured: np.ndarray  # (E, S) |<h, ∇L>| / (‖h‖ ‖∇L‖) from float64 autograd
    closed: np.ndarray  # (E, S) the same share with <h, ∇L> from the closed form
    dim: int


def eps_leak(closed_inner, eps: tuple[float, ...] = (1e-8, 1e-6, 1e-5, 1e-3),
             scales: np.ndarray | None = None, dim: int = 8, vocab: int = 5,
             seed: int = 0) -> EpsLeak:
    """The ε-leak of an RMSNorm readout along one ray h = s·u.

    ``measured`` differentiates :math:`L(h) = \\mathrm{CE}(W\\,N_\\varepsilon(h), y)` (the
    package kernel :func:`blindspot.nn.rms_norm`) with torch autograd in float64;
    ``closed`` uses ``closed_inner(h, W, y, eps) -> <h, ∇L>``, the symbolic layer's closed
    form :math:`\\frac{\\varepsilon}{r^3}\\langle h, W^\\top(p - e_y)\\rangle`,
    :math:`r^2 = \\mathrm{ms}(h) + \\varepsilon` (unit gain). The share decays like
    :math:`\\varepsilon/\\mathrm{ms}(h)` once :math:`\\mathrm{ms}(h) \\gg \\varepsilon`.
    """
    import torch

    from blindspot.nn import rms_norm

    rng = np.random.default_rng(seed)
    W = torch.as_tensor(rng.normal(size=(vocab, dim)))  # (V, n)
    u = rng.normal(size=dim)
    u /= np.linalg.norm(u)
    y = int(rng.integers(vocab))
    scales = np.logspace(-4, 3, 57) if scales is None else np.asarray(scales, np.float64)
    measured = np.empty((len(eps), len(scales)))
    closed = np.empty_like(measured)
    for i, e in enumerate(eps):
        def loss(h, e=e):
            z = W @ rms_norm(h, eps=e)  # (V,)
            return torch.logsumexp(z, 0) - z[y]

        for j, s in enumerate(scales):
            h = torch.as_tensor(s * u).requires_grad_(True)  # (n,)
            g = torch.autograd.grad(loss(h), h)[0]  # (n,)
            h = h.detach()
            norm = float(h.norm() * g.norm())
            measured[i, j] = abs(float(h @ g)) / norm
            closed[i, j] = abs(float(closed_inner(h.numpy(), W.numpy(), y, e))) / norm
    return EpsLeak(scales, tuple(eps), measured, closed, dim)


def draw_eps_leak(leak: EpsLeak):
    """Radial share against scale, measured (markers) and closed form (lines), with the
    :math:`\\varepsilon/\\mathrm{ms}(h)` asymptote and the float64 round-off floor."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ms = leak.scales**2 / leak.dim
    for i, e in enumerate(leak.eps):
        (line,) = ax.loglog(leak.scales, leak.closed[i], lw=1.5, label=f"$\\varepsilon$={e:g}")
        ax.loglog(leak.scales[::3], leak.measured[i, ::3], "o", ms=3.5, color=line.get_color(),
                  mfc="none")
        ax.loglog(leak.scales, e / ms, ":", lw=0.8, color=line.get_color())
    ax.axhline(np.finfo(np.float64).eps, color="gray", lw=0.8, ls="--")
    ax.text(leak.scales[-1], np.finfo(np.float64).eps * 2, "float64 round-off", fontsize=8,
            color="gray", ha="right")
    ax.set_ylim(1e-18, 2)
    ax.set_xlabel("scale $s=\\|h\\|$")
    ax.set_ylabel("radial share $|\\langle h,\\nabla L\\rangle|/(\\|h\\|\\,\\|\\nabla L\\|)$")
    ax.set_title(f"RMSNorm readout, n={leak.dim}: closed form (lines), autograd (circles),\n"
                 "asymptote $\\varepsilon/\\mathrm{ms}(h)$ (dotted)", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class NormTrajectory:
    """Gradient descent on a parameter that the loss sees only through its direction."""

    steps: np.ndarray  # (T+1,)
    sq_norm: np.ndarray  # (T+1,) ‖w_t‖²
    predicted_sq_norm: np.ndarray  # (T+1,) ‖w_0‖² + η² Σ_{s<t} ‖∇L(w_s)‖² (weight decay 0)
    angular_step: np.ndarray  # (T,) ‖u_{t+1} - u_t‖
    unit_grad_sq: np.ndarray  # (T,) ‖∇L(u_t)‖², the gradient at unit norm
    lr: float
    weight_decay: float


def gd_on_sphere(lr: float, weight_decay: float = 0.0, steps: int = 400, dim: int = 16,
                 vocab: int = 6, batch: int = 64, minibatch: int = 4, w0_norm: float = 1.0,
                 seed: int = 0) -> NormTrajectory:
    """Stochastic gradient descent :math:`w_{t+1} = w_t - \\eta(\\nabla L_t(w_t) + \\lambda w_t)`
    on :math:`L_t(w) = \\frac1m\\sum_{i \\in B_t} \\mathrm{CE}(W_i\\,N(w), y_i)`, a fresh
    minibatch :math:`B_t` of ``minibatch`` of ``batch`` examples each step, with :math:`N` =
    RMSNorm (ε = 0), so :math:`L_t(c\\,w) = L_t(w)`. Minibatch noise keeps the gradient from
    vanishing, as in training.
    With λ = 0, :math:`\\|w_{t+1}\\|^2 = \\|w_t\\|^2 + \\eta^2\\|\\nabla L(w_t)\\|^2` exactly
    (``predicted_sq_norm``); with λ > 0 the norm settles where
    :math:`\\|w\\|^4 \\approx \\eta G^2/(2\\lambda)`, :math:`G = \\|\\nabla L(u)\\|`, and the
    angular step at :math:`\\sqrt{2\\eta\\lambda}` (tests/test_book_figures.py).
    """
    import torch

    from blindspot.nn import rms_norm

    if lr <= 0 or weight_decay < 0 or steps < 1:
        raise ValueError(f"need lr > 0, weight_decay >= 0, steps >= 1; got lr={lr}, "
                         f"weight_decay={weight_decay}, steps={steps}")
    rng = np.random.default_rng(seed)
    W = torch.as_tensor(rng.normal(size=(batch, vocab, dim)))  # (B, V, n): one readout per example
    y = torch.as_tensor(rng.integers(vocab, size=batch))  # (B,)

    def loss(w, rows):
        z = W[rows] @ rms_norm(w, eps=0.0)  # (m, V)
        return (torch.logsumexp(z, 1) - z[torch.arange(len(rows)), y[rows]]).mean()

    def g_loss(w, rows):  # plain autograd: ~20x cheaper per call than torch.func.grad here
        w = w.detach().requires_grad_(True)
        return torch.autograd.grad(loss(w, rows), w)[0]

    w = torch.as_tensor(rng.normal(size=dim))
    w = w * (w0_norm / w.norm())  # (n,)
    sq, pred, turn, unit = [float(w @ w)], [float(w @ w)], [], []
    for _ in range(steps):
        rows = torch.as_tensor(rng.choice(batch, size=minibatch, replace=False))
        g = g_loss(w, rows)  # (n,)
        unit.append(float(g.norm() ** 2 * (w @ w)))  # ∇L(u) = ‖w‖ ∇L(w)
        w_next = w - lr * (g + weight_decay * w)
        turn.append(float((w_next / w_next.norm() - w / w.norm()).norm()))
        pred.append(pred[-1] + lr**2 * float(g @ g))
        w = w_next
        sq.append(float(w @ w))
    return NormTrajectory(np.arange(steps + 1), np.array(sq), np.array(pred), np.array(turn),
                          np.array(unit), lr, weight_decay)


def equilibrium_sq_norm(traj: NormTrajectory, tail: float = 0.5) -> float:
    """:math:`\\|w^*\\|^2 = \\sqrt{\\eta\\,\\overline{G^2}/(2\\lambda)}` with
    :math:`\\overline{G^2}` the mean unit-norm squared gradient over the last ``tail`` of
    the run (the balance of weight decay's shrinkage against the gradient's growth)."""
    if traj.weight_decay <= 0:
        raise ValueError("the equilibrium needs weight_decay > 0; without it the norm grows")
    g2 = traj.unit_grad_sq[int(len(traj.unit_grad_sq) * (1 - tail)):].mean()
    return float(np.sqrt(traj.lr * g2 / (2 * traj.weight_decay)))


def draw_gd_norm(free: NormTrajectory, decayed: NormTrajectory):
    """(a) ‖w_t‖² under GD without weight decay against the exact identity; (b) with weight
    decay against the equilibrium; (c) the angular step (effective learning rate)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.9))
    ax = axes[0]
    ax.plot(free.steps, free.sq_norm, lw=2, label="measured $\\|w_t\\|^2$")
    ax.plot(free.steps, free.predicted_sq_norm, "k--", lw=1,
            label="$\\|w_0\\|^2+\\eta^2\\sum_s\\|\\nabla L(w_s)\\|^2$")
    ax.set_title(f"(a) SGD, no weight decay ($\\eta$={free.lr:g})", fontsize=10)
    ax.set_xlabel("step $t$")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(decayed.steps, decayed.sq_norm, lw=2, color="C1", label="measured $\\|w_t\\|^2$")
    ax.axhline(equilibrium_sq_norm(decayed), color="k", ls="--", lw=1,
               label="$\\sqrt{\\eta G^2/(2\\lambda)}$")
    ax.set_title(f"(b) SGD + weight decay $\\lambda$={decayed.weight_decay:g}", fontsize=10)
    ax.set_xlabel("step $t$")
    ax.legend(fontsize=8)
    ax = axes[2]
    ax.semilogy(free.steps[1:], free.angular_step, label="no weight decay")
    ax.semilogy(decayed.steps[1:], decayed.angular_step, color="C1", label="weight decay")
    ax.axhline(np.sqrt(2 * decayed.lr * decayed.weight_decay), color="k", ls="--", lw=1,
               label="$\\sqrt{2\\eta\\lambda}$")
    ax.set_title("(c) angular step $\\|u_{t+1}-u_t\\|$", fontsize=10)
    ax.set_xlabel("step $t$")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def gd_norm_inputs() -> tuple[NormTrajectory, NormTrajectory]:
    """The two runs of chapter 3's figure (fixed seed)."""
    return gd_on_sphere(lr=0.5, steps=600), gd_on_sphere(lr=0.5, weight_decay=0.01, steps=600)


@figure("gd-norm-growth", caption="""Gradient descent on a parameter the loss sees only through
its direction: without weight decay the squared norm grows by exactly eta^2 ||grad||^2 per step
and the angular step (effective learning rate) decays; with weight decay it settles where
||w||^4 = eta G^2 / (2 lambda) and the angular step at sqrt(2 eta lambda).""")
def gd_norm_figure(results: Path):
    return draw_gd_norm(*gd_norm_inputs())


def symbolic_ce_radial_inner(n: int):
    """:math:`\\langle h, \\nabla L\\rangle` of :math:`L(h) = \\mathrm{CE}(W N_\\varepsilon(h), y)`
    (unit gain) assembled from the symbolic layer's exports only: ``rms_norm`` of
    ``RMSNORM_INVARIANCE`` and ``radial_derivative`` of ``EPS_LEAK``
    (:math:`\\frac{\\varepsilon}{r^3}\\langle \\gamma\\odot h, \\nabla\\ell(N(h))\\rangle` with the
    cross-entropy's outer gradient :math:`\\nabla\\ell = W^\\top(p - e_y)`) at dimension ``n``."""
    from blindspot.symbolic.identities import EPS_LEAK, RMSNORM_INVARIANCE

    norm = RMSNORM_INVARIANCE.lambdify("rms_norm", n)
    radial = EPS_LEAK.lambdify("radial_derivative", n)
    gain = np.ones(n)

    def inner(h: np.ndarray, W: np.ndarray, y: int, eps: float) -> float:
        z = W @ np.asarray(norm(h, gain, eps), np.float64).reshape(n)  # (V,)
        p = np.exp(z - z.max())
        p /= p.sum()
        p[y] -= 1.0
        return float(np.asarray(radial(h, gain, eps, W.T @ p)).reshape(()))

    return inner


EPS_LEAK_DIM = 3  # the symbolic certificate is derived at n <= 3 (fast sympy)


@figure("eps-leak", caption="""The epsilon leak of an RMSNorm readout: the radial share of the
loss gradient along one ray, from float64 autograd of the package kernel (circles) and from
the symbolic layer's closed form (lines), against the asymptote eps/ms(h) (dotted).""")
def eps_leak_figure(results: Path):
    return draw_eps_leak(eps_leak(symbolic_ce_radial_inner(EPS_LEAK_DIM), dim=EPS_LEAK_DIM))

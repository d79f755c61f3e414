"""Numpy reference normalizers (float64 by default), the same formulas as the sympy
expressions in :mod:`blindspot.symbolic.expressions` and the torch ones in
:mod:`blindspot.symbolic.numeric`; ``tests/test_symbolic.py`` checks all three agree and
that they satisfy the metamorphic relation $N(c\\,h; \\varepsilon) = N(h; \\varepsilon/c^2)$."""

from __future__ import annotations

import numpy as np


def _validate(h: np.ndarray, eps: float) -> np.ndarray:
    h = np.asarray(h)
    if h.ndim == 0 or h.shape[-1] == 0:
        raise ValueError(f"state must have a non-empty last axis, got shape {h.shape}")
    if not np.all(np.isfinite(h)):
        raise ValueError("state contains NaN or inf; normalizers are defined for finite states")
    if not (np.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be finite and >= 0, got {eps!r}")
    return h


def rms_norm(h: np.ndarray, gain: np.ndarray | float = 1.0, eps: float = 0.0) -> np.ndarray:
    """$N(h) = \\gamma \\odot h / \\sqrt{\\mathrm{ms}(h) + \\varepsilon}$ over the last axis."""
    h = _validate(h, eps)
    return gain * h / np.sqrt(np.mean(h * h, axis=-1, keepdims=True) + eps)


def layer_norm(h: np.ndarray, gain: np.ndarray | float = 1.0, bias: np.ndarray | float = 0.0,
               eps: float = 0.0) -> np.ndarray:
    """$\\mathrm{LN}(h) = \\gamma \\odot Ph / \\sqrt{\\lVert Ph\\rVert^2/n + \\varepsilon}
    + \\beta$."""
    h = _validate(h, eps)
    p = h - np.mean(h, axis=-1, keepdims=True)
    return gain * p / np.sqrt(np.mean(p * p, axis=-1, keepdims=True) + eps) + bias

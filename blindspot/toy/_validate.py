"""Input checks shared by the toy modules: every bad input raises a ValueError that names
the argument, what was wrong with it, and what to pass instead."""

from __future__ import annotations

import numpy as np


def as_float(name: str, x, *, ndim: int | tuple[int, ...] | None = None,
             nonneg: bool = False, positive: bool = False) -> np.ndarray:
    """``x`` as a float64 array, checked finite (and non-negative / positive when asked)."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a real number or array of real numbers, got "
                         f"{type(x).__name__}: {e}") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimension(s), "
                             f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; pass finite values (first bad index "
                         f"{np.argwhere(~np.isfinite(arr))[0].tolist()})")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got min {arr.min():g}")
    if nonneg and np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 (a scale, a variance or a rate cannot be "
                         f"negative), got min {arr.min():g}")
    return arr


def as_loops(name: str, k) -> np.ndarray:
    """Loop (or step) indices: non-negative integers."""
    arr = np.asarray(k)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must hold whole loop indices, got {arr!r}")
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integer loop indices, got dtype {arr.dtype}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 (loop 0 is the input state), got min {arr.min()}")
    return arr.astype(np.int64)


def as_count(name: str, n, *, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {n!r}")
    return int(n)

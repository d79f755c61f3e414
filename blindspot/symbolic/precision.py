"""Where float32 and bf16 break the identities: measured, not assumed (proofs/precision.md).

Three measurements, each in float64 / float32 / bfloat16, on random points (n = 64, V = 32):

1. **Invariance and the blind spot over scales.** For $c \\in \\{10^{-30}, \\dots, 10^{30}\\}$:
   the error of $N(c\\,h)$ against the float64 $N(h)$, and the measured radial share
   $|\\langle h, \\nabla L\\rangle| / (\\lVert h\\rVert\\lVert\\nabla L\\rVert)$ of
   $L = \\mathrm{CE}(W N(h), y)$ at $\\varepsilon = 0$, which is exactly 0 in exact arithmetic
   (proofs/euler.md): whatever is measured is the dtype's round-off floor, or a breakdown
   (NaN/inf) where $\\mathrm{ms}(c\\,h)$ over- or underflows.
2. **The ε-leak against the floor.** At $\\varepsilon = 10^{-6}$ the exact radial share
   (float64 closed form, proofs/eps_leak.md) against the share each dtype measures: once the
   leak falls under the floor, a low-precision measurement reports the floor, not the leak.
3. **Lemma 2 in low precision.** Relative error of the exact identity
   $s'^2 = s^2 + 2sa + \\lVert\\Delta\\rVert^2$ and of the angular step computed naively as
   $\\sqrt{2 - 2(s+a)/s'}$ versus the cancellation-free $\\sqrt{2\\beta^2/(s'(s'+s+a))}$.

Regenerate the tables of ``proofs/precision.md`` with ``python -m blindspot.symbolic.precision``
(add ``--json PATH`` to also write the numbers with a run card). Deterministic for a seed.
Tested in ``tests/test_precision.py``.
"""

from __future__ import annotations

import argparse
import math
import sys

import torch
from torch.func import grad

from blindspot.symbolic.numeric import cross_entropy, rms_norm

DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}
SCALES = (1e-30, 1e-20, 1e-10, 1.0, 1e10, 1e20, 1e30)
LEAK_SCALES = (0.1, 1.0, 10.0, 100.0, 1e3)
LEMMA_SCALES = (1.0, 1e2, 1e4, 1e6)


def _point(n: int, V: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, generator=g, dtype=torch.float64)
    gain = 1.0 + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)
    W = torch.randn(V, n, generator=g, dtype=torch.float64) / math.sqrt(n)
    y = int(torch.randint(V, (1,), generator=g))
    D = torch.randn(n, generator=g, dtype=torch.float64)
    return h, gain, W, y, D


def _share(h: torch.Tensor, g: torch.Tensor) -> float:
    """Radial share, evaluated in float64 from the low-precision tensors (so it measures the
    gradient's round-off, not the dot product's)."""
    h, g = h.double(), g.double()
    den = h.norm() * g.norm()
    return float((h @ g).abs() / den) if den > 0 else float("nan")


def _radial_share(h, gain, W, y, eps, dtype) -> float:
    hd, gd, Wd = h.to(dtype), gain.to(dtype), W.to(dtype)
    g = grad(lambda x: cross_entropy(Wd @ rms_norm(x, gd, eps), y))(hd)
    return _share(hd, g)


def invariance_table(n: int = 64, V: int = 32, seeds: int = 3) -> list[dict]:
    """Rows (dtype, scale): max over seeds of the invariance error and of the radial share."""
    rows = []
    for name, dtype in DTYPES.items():
        for c in SCALES:
            errs, shares = [], []
            for seed in range(seeds):
                h, gain, W, y, _ = _point(n, V, seed)
                ref = rms_norm(h, gain)
                with torch.no_grad():
                    got = rms_norm((c * h).to(dtype), gain.to(dtype)).double()
                errs.append(float((got - ref).abs().max() / ref.abs().max()))
                shares.append(_radial_share(c * h, gain, W, y, 0.0, dtype))
            rows.append({"dtype": name, "scale": c, "invariance_error": _worst(errs),
                         "radial_share": _worst(shares)})
    return rows


def _worst(xs: list[float]) -> float:
    """Max, but NaN wins: a breakdown on any seed is a breakdown."""
    return float("nan") if any(math.isnan(x) for x in xs) else max(xs)


def leak_table(n: int = 64, V: int = 32, seeds: int = 3, eps: float = 1e-6) -> list[dict]:
    """Rows (scale): the exact ε-leak share (float64 closed form) and what each dtype measures."""
    rows = []
    for c in LEAK_SCALES:
        row = {"scale": c, "eps": eps}
        exact = []
        for seed in range(seeds):
            h, gain, W, y, _ = _point(n, V, seed)
            x = c * h
            r = torch.sqrt(x.pow(2).mean() + eps)
            z = W @ rms_norm(x, gain, eps)
            outer = W.T @ (torch.softmax(z, -1) - torch.nn.functional.one_hot(
                torch.tensor(y), V).double())
            radial = eps / r**3 * ((gain * x) @ outer)  # proofs/eps_leak.md, eq. proof-leak
            g = grad(lambda v, W=W, gain=gain, y=y: cross_entropy(W @ rms_norm(v, gain, eps), y))(x)
            exact.append(float(radial.abs() / (x.norm() * g.norm())))
        row["exact_share"] = max(exact)
        for name, dtype in DTYPES.items():
            row[f"measured_{name}"] = _worst([
                _radial_share(c * _point(n, V, s)[0], *_point(n, V, s)[1:4], eps, dtype)
                for s in range(seeds)])
        rows.append(row)
    return rows


def lemma2_table(n: int = 64, seeds: int = 3) -> list[dict]:
    """Rows (dtype, s/|Δ|): relative error of the exact identity, and of the naive vs the
    cancellation-free angular step, against float64."""
    rows = []
    for name, dtype in DTYPES.items():
        for c in LEMMA_SCALES:
            ident, naive, stable = [], [], []
            for seed in range(seeds):
                h, _, _, _, D = _point(n, 2, seed)
                h = c * h / h.norm() * D.norm()  # s / |Δ| = c
                ref = _lemma2(h, D)
                got = _lemma2(h.to(dtype), D.to(dtype))
                ident.append(float(((got["lhs"] - got["rhs"]) / ref["lhs"]).abs()))
                naive.append(float(((got["naive"] - ref["stable"]) / ref["stable"]).abs()))
                stable.append(float(((got["stable"] - ref["stable"]) / ref["stable"]).abs()))
            rows.append({"dtype": name, "s_over_delta": c, "identity_error": _worst(ident),
                         "angular_naive_error": _worst(naive),
                         "angular_stable_error": _worst(stable)})
    return rows


def _lemma2(h: torch.Tensor, D: torch.Tensor) -> dict[str, torch.Tensor]:
    s = h.norm()
    u = h / s
    a = u @ D
    beta = (D - a * u).norm()
    s1 = (h + D).norm()
    out = {"lhs": (h + D).pow(2).sum(), "rhs": s**2 + 2 * s * a + D.pow(2).sum(),
           "naive": torch.sqrt((2 - 2 * (s + a) / s1).clamp_min(0)),
           "stable": torch.sqrt(2 * beta**2 / (s1 * (s1 + s + a)))}
    return {k: v.double() for k, v in out.items()}


def measure(n: int = 64, V: int = 32, seeds: int = 3) -> dict[str, list[dict]]:
    """All three tables (deterministic: seeds 0..seeds-1)."""
    return {"invariance": invariance_table(n, V, seeds), "leak": leak_table(n, V, seeds),
            "lemma2": lemma2_table(n, seeds)}


def _f(x: float) -> str:
    return "NaN/inf" if not math.isfinite(x) else f"{x:.1e}"


def to_markdown(res: dict[str, list[dict]]) -> str:
    lines = ["**Invariance error / radial share at ε = 0** (exact value of both: 0)", "",
             "| scale c | " + " | ".join(f"{d} N(ch) err | {d} share" for d in DTYPES) + " |",
             "|---" * (1 + 2 * len(DTYPES)) + "|"]
    for c in SCALES:
        cells = []
        for d in DTYPES:
            r = next(r for r in res["invariance"] if r["dtype"] == d and r["scale"] == c)
            cells += [_f(r["invariance_error"]), _f(r["radial_share"])]
        lines.append(f"| {c:.0e} | " + " | ".join(cells) + " |")
    lines += ["", "**ε-leak (ε = 1e-6) against the floor**: exact radial share vs measured", "",
              "| scale c | exact (float64 closed form) | " + " | ".join(DTYPES) + " |",
              "|---" * (2 + len(DTYPES)) + "|"]
    for r in res["leak"]:
        lines.append(f"| {r['scale']:g} | {_f(r['exact_share'])} | "
                     + " | ".join(_f(r[f"measured_{d}"]) for d in DTYPES) + " |")
    lines += ["", "**Lemma 2 in low precision** (relative errors against float64)", "",
              "| dtype | s/‖Δ‖ | identity | angular step, naive | angular step, stable |",
              "|---|---|---|---|---|"]
    for r in res["lemma2"]:
        lines.append(f"| {r['dtype']} | {r['s_over_delta']:.0e} | {_f(r['identity_error'])} | "
                     f"{_f(r['angular_naive_error'])} | {_f(r['angular_stable_error'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m blindspot.symbolic.precision",
                                description="Measure where float32/bf16 break the identities.")
    p.add_argument("--seeds", type=int, default=3, help="random points per cell (default 3)")
    p.add_argument("--json", metavar="PATH", help="also write the numbers with a run card")
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error(f"--seeds must be >= 1, got {args.seeds}")
    res = measure(seeds=args.seeds)
    print(to_markdown(res))
    if args.json:
        from blindspot.provenance import atomic_write_json, run_card

        atomic_write_json(args.json, {"results": res, "run_card": run_card(
            config={"n": 64, "V": 32, "seeds": args.seeds}, seed=0)})
    return 0


if __name__ == "__main__":
    sys.exit(main())

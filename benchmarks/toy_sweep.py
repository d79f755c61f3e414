"""Speed of the toy's vectorized predictions on a sweep of 10^5 parameter settings.

Target: the closed-form moments of s_K, the regime, and the K-loop pre-norm scale
trajectory for 10^5 settings of (ρ, a, σ, d) in under a second on this machine. A plain
Python loop computing the same numbers setting by setting (``math`` only) is timed in the
same run, and the ratio of the two is printed (absolute times swing with the machine's
load, the ratio much less). The two results are compared, so a fast wrong answer fails.

    python benchmarks/toy_sweep.py [--settings 100000] [--loops 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from blindspot.toy import prenorm_scale, radial_moments, regime


def sweep(rho, a, sigma, d, K):
    """Vectorized: (mean, var) of s_K, regime, and the pre-norm s_K for every setting."""
    m = radial_moments(K, rho, a, sigma, s0=1.0)
    names = regime(rho, a, sigma, model="scalar", tol=1e-9)
    s = prenorm_scale(K, 1.0, a, d, rho, asymptotic=False)["s"][-1]
    return m["mean"], m["var"], names, s


def reference(rho, a, sigma, d, K):
    """The same numbers with a Python loop over settings and loops."""
    mean, var, names, s_out = [], [], [], []
    for r, aa, sg, dd in zip(rho.tolist(), a.tolist(), sigma.tolist(), d.tolist(), strict=True):
        mu, v, s = 1.0, 0.0, 1.0
        for _ in range(K):
            mu = r * mu + aa
            v = r * r * v + sg * sg
            s = math.hypot(r * s + aa, dd)
        mean.append(mu)
        var.append(v)
        s_out.append(s)
        if abs(r - 1) <= 1e-9:
            names.append("linear" if aa > 1e-9 else "decreasing" if aa < -1e-9 else
                         "sqrt" if sg > 0 else "constant")
        else:
            names.append("bounded" if r < 1 else "exponential")
    return np.array(mean), np.array(var), np.array(names), np.array(s_out)


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settings", type=int, default=100_000)
    p.add_argument("--loops", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    if args.settings < 1 or args.loops < 1 or args.repeats < 1:
        p.error("--settings, --loops and --repeats must be >= 1")
    rng = np.random.default_rng(0)
    n = args.settings
    rho = rng.choice([0.5, 0.9, 1.0, 1.02], n) * rng.uniform(0.98, 1.0, n) ** rng.integers(0, 2, n)
    a = rng.uniform(-0.5, 1.0, n) * rng.integers(0, 2, n)
    sigma, d = rng.uniform(0, 1, n), rng.uniform(0, 2, n)
    fast, slow = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        t0 = time.perf_counter()
        got = sweep(rho, a, sigma, d, args.loops)
        fast.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        want = reference(rho, a, sigma, d, args.loops)
        slow.append(time.perf_counter() - t0)
    # closed form vs iteration: agree to round-off of K multiply-adds (relative 1e-9 is
    # loose for K = 30 and still catches any formula error)
    for name, x, y in zip(("mean", "var", "s_K"), (got[0], got[1], got[3]),
                          (want[0], want[1], want[3]), strict=True):
        if not np.allclose(x, y, rtol=1e-9, atol=1e-12):
            raise SystemExit(f"vectorized {name} disagrees with the loop reference")
    if not np.array_equal(got[2], want[2]):
        raise SystemExit("vectorized regime disagrees with the loop reference")
    tf, ts = statistics.median(fast), statistics.median(slow)
    print(f"{n} settings, K = {args.loops}: vectorized {tf:.3f} s, Python loop {ts:.3f} s "
          f"(medians of {args.repeats}); speed-up {ts / tf:.1f}x; target < 1 s: "
          f"{'met' if tf < 1 else 'NOT met'}")
    return ts / tf


if __name__ == "__main__":
    main()

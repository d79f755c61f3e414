"""Claim checks, one module per layer; each registers its claims with
:func:`blindspot.claims.claim` when imported. The modules, in the order
``python -m blindspot.verify`` prints their claims (:data:`MODULES`):

- :mod:`~blindspot.checks.diagnostics`, :mod:`~blindspot.checks.control`: the diagnostics
  and the training-time controls (quick), and the diagnostics of the CPU grid (full);
- :mod:`~blindspot.checks.nn`: LoopedLM's norms, readouts and recurrence;
- :mod:`~blindspot.checks.scale_growth`: the size of the blow-up and its prediction (full);
- :mod:`~blindspot.checks.growth_law`: the growth-law study's registered predictions, axis by
  axis, and its mechanism record (full);
- :mod:`~blindspot.checks.symbolic`: the certificates of proofs/ with their float64 twins,
  and their measurements on LoopedLM (from :mod:`~blindspot.checks.theory_lm`, which
  registers nothing);
- :mod:`~blindspot.checks.table1`: the paper's Table 1 on the committed grids (full, gpu);
- :mod:`~blindspot.checks.converged`: Table 1, the inter-loop-norm fix and the diagnostics'
  grid claims on the converged CPU grid (full);
- :mod:`~blindspot.checks.toy`: the toy models' closed forms;
- :mod:`~blindspot.checks.train`: the training objective.

:mod:`~blindspot.checks.small` holds the small float64 ``LoopedLM`` the quick checks share.
"""

from blindspot.checks import (
    control,
    converged,
    diagnostics,
    growth_law,
    nn,
    scale_growth,
    small,  # noqa: F401  (the shared small model; registers nothing)
    symbolic,
    table1,
    theory_lm,  # noqa: F401  (helpers of symbolic; listed so that every module is named here)
    toy,
    train,
)
from blindspot.claims import Claim, registered

MODULES = (diagnostics, control, nn, scale_growth, growth_law, symbolic, table1, converged, toy,
           train)
"""The modules that register claims, in the order verify runs and prints them."""


def load_all() -> dict[str, Claim]:
    """Every registered claim by id: module by module in the order of :data:`MODULES`, and
    within a module in the order it registers them."""
    rank = {m.__name__: i for i, m in enumerate(MODULES)}
    claims = registered()
    strays = sorted(c.id for c in claims.values() if c.check.__module__ not in rank)
    if strays:
        raise RuntimeError(f"claims {', '.join(strays)} are registered outside "
                           f"blindspot.checks.MODULES; add their module there")
    return dict(sorted(claims.items(), key=lambda kv: rank[kv[1].check.__module__]))

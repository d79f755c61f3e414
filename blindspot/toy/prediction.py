"""``Prediction``: what every toy prediction returns: the numbers, the formula that produced
them (LaTeX), and the parameters it was evaluated at."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Prediction:
    """A predicted quantity.

    ``values`` maps names to arrays (e.g. ``{"k": ..., "mean": ..., "std": ...}``);
    ``formula`` is the LaTeX of the closed form (the book prints it next to the plot);
    ``params`` records the inputs. ``pred["mean"]`` reads a value.
    """

    quantity: str
    values: Mapping[str, Any]
    formula: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str):
        if key not in self.values:
            raise KeyError(f"{self.quantity}: no value {key!r}; available: "
                           f"{', '.join(self.values)}")
        return self.values[key]

    def summary(self) -> str:
        """One line per value (small arrays printed in full, big ones by their range)."""
        lines = [f"{self.quantity}: {self.formula}"]
        for k, v in self.values.items():
            a = np.asarray(v)
            if a.dtype.kind in "fiu" and a.size > 6:
                lines.append(f"  {k}: shape {a.shape}, range [{a.min():.4g}, {a.max():.4g}]")
            else:
                lines.append(f"  {k}: {v}")
        return "\n".join(lines)

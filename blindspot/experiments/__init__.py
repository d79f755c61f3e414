"""blindspot.experiments: named experiments, each writing ``results/<name>-<tier>/``.

``EXPERIMENTS`` maps a name to its module's ``run(tier, out, ...)``; ``blindspot experiment
NAME --tier cpu|gpu`` (:mod:`blindspot.experiments.cli`) runs one.
"""

from blindspot.experiments import table1

EXPERIMENTS = {"table1": table1.run}

__all__ = ["EXPERIMENTS", "table1"]

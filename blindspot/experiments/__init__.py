"""blindspot.experiments: named experiments, each writing ``results/<name>-<tier>/``.

``EXPERIMENTS`` maps a name to its module's ``run(tier, out, ...)``; ``blindspot experiment
NAME --tier cpu|gpu`` (:mod:`blindspot.experiments.cli`) runs one. The diagnosis of trained
checkpoints, ``blindspot diagnose`` (:mod:`blindspot.experiments.diagnose`), is the path from
a checkpoint to the committed diagnostics tables.
"""

from blindspot.experiments import (
    converged_long,
    gpu_validation,
    growth_law,
    scale_prediction,
    sensitivity,
    table1,
)

EXPERIMENTS = {"table1": table1.run, "gpu-validation": gpu_validation.run,
               "sensitivity": sensitivity.run, "scale-prediction": scale_prediction.run,
               "growth-law": growth_law.run, "growth-law-predict": growth_law.predict_cli,
               "table1-long-predict": converged_long.predict_cli}

__all__ = ["EXPERIMENTS", "converged_long", "gpu_validation", "growth_law", "scale_prediction",
           "sensitivity", "table1"]

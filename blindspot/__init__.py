"""blindspot: the readout blind spot in looped language models.

Companion package to Sharma & Vu (2026), "Dense Supervision Is Not Enough: The Readout
Blind Spot in Looped Language Models", arXiv 2606.24898.

The package is a stack of layers; a module imports only from its own layer and the layers
below it, never from a layer above (``tests/test_architecture.py`` parses every import,
function-level ones included, and fails on an upward one)::

    cli           blindspot train | diagnose | experiment | verify | figures
     |
    verify        runs the claims, prints the verdicts, writes the README's claims table
     |
    checks        one module per layer, each registering the claims it checks
     |
    claims        the claim types, the registry and its tables (README, book)
     |
    figures       one recipe per figure, reading committed results only
     |
    experiments   named experiments writing results/ (Table 1, sensitivity, prediction,
     |            GPU validation, and diagnose: checkpoint -> tables)
    control       the monitor and the scale controls for a user's own training loop
     |
    diagnostics   a library for ANY looped torch model: adapter, recorder, tables
     |            (torch and numpy; below it only nn's LoopTrace and kernels, toy's fit)
    train         configs and presets, data, losses, the trainer
     |
    nn            LoopedLM, LoopTrace, the functional kernels (torch)
     |
    toy           the toy models' closed forms (numpy, scipy)
     |
    symbolic      the sympy certificates of proofs/ (and their float64 torch twins)
     |
    provenance    atomic writes and run cards

:data:`LAYERS` lists the same layers from the bottom up. Outside the package, the book's
Sphinx plumbing (``book/_ext``), the tests, the examples and the benchmarks import it.
"""

__version__ = "0.2.0"

LAYERS = ("provenance", "symbolic", "toy", "nn", "train", "diagnostics", "control",
          "experiments", "figures", "claims", "checks", "verify", "cli")
"""The layers of the package, bottom first (each ``blindspot.<layer>`` module or package
imports only from layers at or before its own position)."""

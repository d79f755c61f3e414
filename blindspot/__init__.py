"""blindspot: the readout blind spot in looped language models.

Companion package to Sharma & Vu (2026), "Dense Supervision Is Not Enough: The Readout
Blind Spot in Looped Language Models", arXiv 2606.24898.

Layers (imports only point downward): ``symbolic`` (sympy) -> ``toy`` (numpy/scipy) ->
``nn`` -> ``train`` -> ``diagnostics`` -> ``experiments`` -> ``figures`` -> ``claims`` /
``verify`` -> ``cli``.
"""

__version__ = "0.2.0"

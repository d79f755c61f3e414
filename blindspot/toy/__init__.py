"""blindspot.toy: small models (numpy/scipy only) that *predict* how loop scales grow.

Across loops (:mod:`~blindspot.toy.radial`, :mod:`~blindspot.toy.linear`), across training
(:mod:`~blindspot.toy.training`), and a fit of the toy to a measured per-loop trace
(:mod:`~blindspot.toy.fit`). Every prediction returns a :class:`Prediction` carrying its
numbers and the formula behind them. No torch import here: the toy runs anywhere.
"""

from blindspot.toy.fit import FitResult, ToyRefusal, WindowFit, fit_radial_trace, fit_window
from blindspot.toy.linear import (
    continuous_depth,
    linear_prediction,
    prenorm_twin_continuous,
    prenorm_twin_growth,
    simulate_linear,
    simulate_prenorm_twin,
    spectral_radius,
)
from blindspot.toy.prediction import Prediction
from blindspot.toy.radial import (
    REGIMES,
    angular_step,
    decompose_update,
    direction_block,
    geometric_sum,
    inter_loop_norm_scale,
    next_scale,
    penalty_equilibrium_scale,
    prenorm_fixed_point,
    prenorm_scale,
    radial_moments,
    raw_readout_scale,
    regime,
    simulate_prenorm_loop,
    simulate_radial,
    stationary_scale,
)
from blindspot.toy.training import (
    OPTIMIZERS,
    adam_update_rms,
    compare_growth,
    effective_learning_rate,
    growth_exponent,
    predict_norm_growth_over_training,
    predict_norm_trajectory,
    simulate_training,
)

__all__ = [
    "OPTIMIZERS", "REGIMES", "FitResult", "Prediction", "ToyRefusal", "WindowFit",
    "adam_update_rms", "angular_step",
    "compare_growth",
    "continuous_depth", "decompose_update", "direction_block", "simulate_prenorm_loop",
    "effective_learning_rate", "fit_radial_trace", "fit_window",
    "geometric_sum", "growth_exponent", "inter_loop_norm_scale", "linear_prediction",
    "next_scale", "penalty_equilibrium_scale", "predict_norm_growth_over_training",
    "predict_norm_trajectory", "prenorm_fixed_point", "prenorm_scale",
    "prenorm_twin_continuous", "prenorm_twin_growth", "radial_moments", "raw_readout_scale",
    "regime", "simulate_linear", "simulate_prenorm_twin", "simulate_radial",
    "simulate_training", "spectral_radius", "stationary_scale",
]

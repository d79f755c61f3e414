"""blindspot.nn: the looped language model in torch and its functional kernels.

Public names (others code against these): :class:`LoopedLM`, :class:`ModelConfig`,
:class:`LoopTrace`, :class:`LoopedOutput`, the kernels :func:`rms_norm`,
:func:`layer_norm`, :func:`radial_split`, and the per-loop readout cross-entropy
:func:`readout_cross_entropy`.
"""

from blindspot.nn.config import ModelConfig
from blindspot.nn.functional import causal_attention, layer_norm, radial_split, rms_norm
from blindspot.nn.model import LoopedLM, LoopedOutput, validate_config
from blindspot.nn.readout_ce import readout_cross_entropy
from blindspot.nn.trace import LoopTrace

__all__ = [
    "LoopTrace",
    "LoopedLM",
    "LoopedOutput",
    "ModelConfig",
    "causal_attention",
    "layer_norm",
    "radial_split",
    "readout_cross_entropy",
    "rms_norm",
    "validate_config",
]

"""Diagnostics for any looped torch model: does it have the readout blind spot?

An adapter (:class:`LoopAdapter`) names a model's loop body, state and readout; the recorder
(:func:`record`) produces a :class:`blindspot.nn.trace.LoopTrace`; each diagnostic turns a
trace (and, for interventions, the adapter) into a :class:`Table`; :func:`diagnose` runs
them all and :func:`write_tables` saves them with a run card. ``blindspot diagnose CKPT``
(:func:`diagnose_checkpoint`) is the command-line front end for our own checkpoints.
"""

from blindspot.diagnostics.adapter import LoopAdapter, ReadoutForm, adapter_for
from blindspot.diagnostics.checkpoint import diagnose_checkpoint, diagnose_gpu_checkpoints
from blindspot.diagnostics.recorder import continue_loops, loop_inputs, record
from blindspot.diagnostics.run import diagnose, read_table, write_tables
from blindspot.diagnostics.table import Table

__all__ = ["LoopAdapter", "ReadoutForm", "Table", "adapter_for", "continue_loops",
           "diagnose", "diagnose_checkpoint", "diagnose_gpu_checkpoints", "loop_inputs",
           "read_table", "record", "write_tables"]

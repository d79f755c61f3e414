"""Diagnostics for any looped torch model: does it have the readout blind spot?

A library: it imports torch, numpy and its own modules, and from this package only the layers
below it (the :class:`~blindspot.nn.trace.LoopTrace` contract and the kernels of
:mod:`blindspot.nn`, the toy model's fit in :mod:`blindspot.toy`, the run card of
:mod:`blindspot.provenance`), never training, experiments or figures.

An adapter (:class:`LoopAdapter`) names a model's loop body, state and head; the recorder
(:func:`record`) produces a :class:`blindspot.nn.trace.LoopTrace`; each diagnostic turns a
trace (and, for interventions, the adapter) into a :class:`Table`; :func:`diagnose` runs
them all and :func:`write_tables` saves them with a run card (:func:`read_table` reads one
back). ``blindspot diagnose CKPT`` (:mod:`blindspot.experiments.diagnose`) is the
command-line front end for checkpoints of our own ``LoopedLM``.
"""

from blindspot.diagnostics.adapter import LoopAdapter, ReadoutForm, adapter_for
from blindspot.diagnostics.recorder import continue_loops, loop_inputs, record
from blindspot.diagnostics.run import diagnose
from blindspot.diagnostics.table import Table, read_table, read_tables, write_tables

__all__ = ["LoopAdapter", "ReadoutForm", "Table", "adapter_for", "continue_loops",
           "diagnose", "loop_inputs", "read_table", "read_tables", "record", "write_tables"]

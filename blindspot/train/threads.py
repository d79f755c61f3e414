"""How many CPU threads torch should use: the CPUs this process may run on, minus those other
processes keep busy.

torch starts one thread per core of the machine. On a machine shared with another busy
process that is a bad default: the threads of one matrix product wait on each other behind a
core that is not free, and a step can take many times as long as with fewer threads
(``benchmarks/threads.py`` measures it). The rule of :func:`choose_threads`::

    threads = max(1, min(cpus, cpus - round(load)))

where ``cpus`` is the number of CPUs this process may run on (``os.sched_getaffinity``, which
honours ``taskset`` and container CPU sets; ``os.cpu_count()`` where the call does not exist)
and ``load`` is the 1-minute load average (``os.getloadavg``), read before this process starts
its own work, so it counts the other processes' runnable threads. The rule assumes the load
average describes the CPUs this process sees (true on a plain machine; in a container with a
CPU quota the host's load can be larger, which only makes the choice more cautious). An
explicit ``--threads N`` wins, then ``OMP_NUM_THREADS`` when set (torch already obeys it),
then the rule. The choice goes into the run card (:meth:`ThreadChoice.card`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass

RULE = "max(1, min(cpus, cpus - round(1-minute load)))"
"""The default rule, as the run card states it."""


@dataclass(frozen=True)
class ThreadChoice:
    """A thread count and why: ``by`` is ``"--threads"``, ``"OMP_NUM_THREADS"`` or
    ``"available CPUs"`` (:data:`RULE`); ``cpus`` and ``load_1min`` are what the rule read
    (``load_1min`` is None where the platform has no load average)."""

    threads: int
    by: str
    cpus: int
    load_1min: float | None

    def card(self) -> dict:
        """The run card's ``threads`` entry."""
        return {**asdict(self), "rule": RULE}

    def describe(self) -> str:
        """One line for the terminal, e.g. ``threads: 1 (2 CPUs available, 1-minute load
        1.2; --threads N to choose)``."""
        load = "no load average" if self.load_1min is None else \
            f"1-minute load {self.load_1min:.1f}"
        why = {"--threads": "chosen with --threads",
               "OMP_NUM_THREADS": "from OMP_NUM_THREADS"}.get(
            self.by, f"{self.cpus} CPUs available, {load}; --threads N to choose")
        return f"threads: {self.threads} ({why})"


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def load_1min() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def threads_for(cpus: int, load: float | None) -> int:
    """:data:`RULE`: the CPUs left free by a 1-minute load of ``load`` (all of them when the
    load is unknown), at least 1 and at most ``cpus``."""
    if cpus < 1:
        raise ValueError(f"cpus must be >= 1, got {cpus}")
    if load is None:
        return cpus
    return max(1, min(cpus, cpus - round(load)))


def choose_threads(requested: int | None = None, *, environ: dict | None = None,
                   cpus: int | None = None, load: float | None = ...) -> ThreadChoice:
    """The thread count for this process: ``requested`` (``--threads N``) when given, else
    ``OMP_NUM_THREADS`` when set to a positive integer, else :func:`threads_for` of the
    available CPUs and the current load. ``environ``, ``cpus`` and ``load`` replace what is
    read from the process (for tests). ValueError when ``requested`` is not >= 1."""
    cpus = available_cpus() if cpus is None else cpus
    load = load_1min() if load is ... else load
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ValueError(f"--threads must be an integer >= 1, got {requested!r}")
        return ThreadChoice(requested, "--threads", cpus, load)
    env = os.environ if environ is None else environ
    omp = env.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) >= 1:
        return ThreadChoice(int(omp), "OMP_NUM_THREADS", cpus, load)
    return ThreadChoice(threads_for(cpus, load), "available CPUs", cpus, load)


@contextlib.contextmanager
def using(choice: ThreadChoice):
    """Run the block with torch's intra-op thread count at ``choice.threads``, and put back
    the previous count after it (a command called in-process leaves its caller as it was)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(choice.threads)
    try:
        yield choice
    finally:
        torch.set_num_threads(before)

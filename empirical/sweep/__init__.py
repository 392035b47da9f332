"""Learning-rate sweeps: K configurations of one (dataset, model) trained at once on one device.

The paper selects each (dataset, network) pair's learning rate from 25 values
(:func:`empirical.schedule.lr_grid`, ``logspace(1e-4, 0.25)``) by final test accuracy (math §7.1).
:func:`run_sweep` trains the members (every learning rate x weight decay x seed) together, by one of
:data:`STRATEGIES` (default :func:`default_strategy`): ``"threaded"`` (:class:`ThreadedEngine`, the CPU's) or
``"interleaved"`` (:class:`InterleavedEngine`, elsewhere).  A member runs its single run's own step from the same
initial weights and batch order, so on the CPU it equals its single run exactly (tests/empirical/test_sweep.py).

Each member is a normal run directory ``DIR/<name>/``: ``train --out DIR/<name> --resume``, ``plot``,
``load_run`` and ``paper_checks --run-dir`` work on it as on any run.  ``DIR/sweep.json`` lists the members
with their final errors and the selected learning rate (:func:`write_sweep_file`); ``DIR/accuracy_vs_lr.png``
draws it.  Members train in chunks of at most ``max_members_per_chunk`` (default: what the memory holds,
:func:`chunk_size`), each checkpointed to ``DIR/chunks/NN/checkpoints/last.pt``, which ``resume=True``
continues.  A member whose loss becomes non-finite stops alone (``status: "diverged"``); the others go on.
"""

from __future__ import annotations

from .chunking import chunk_size
from .engines import ENGINES, InterleavedEngine, ThreadedEngine, cpu_workers
from .run import run_sweep
from .spec import STRATEGIES, SweepSpec, check_strategy, default_strategy, parse_floats, parse_ints, parse_lrs
from .summary import SWEEP_FILE, draw_sweep, select_lr, write_sweep_file

__all__ = [
    "ENGINES",
    "InterleavedEngine",
    "STRATEGIES",
    "SWEEP_FILE",
    "SweepSpec",
    "ThreadedEngine",
    "check_strategy",
    "chunk_size",
    "cpu_workers",
    "default_strategy",
    "draw_sweep",
    "parse_floats",
    "parse_ints",
    "parse_lrs",
    "run_sweep",
    "select_lr",
    "write_sweep_file",
]

"""Learning-rate sweeps: K configurations of one (dataset, model) trained at once on one device.

The paper selects each (dataset, network) pair's learning rate from 25 values
(:func:`empirical.schedule.lr_grid`, ``logspace(1e-4, 0.25)``) by final test accuracy (math §7.1).
:func:`run_sweep` trains the members (every learning rate x weight decay x seed) together, by one of two
strategies (``strategy``, :data:`STRATEGIES`; default :func:`default_strategy`: the one that measured fastest
on the device's kind, chosen by device, no trial):

* ``"threaded"`` (the CPU's default, :class:`ThreadedEngine`): K ordinary models, each stepped by its single
  run's code, on worker threads, as many at a time as the cores hold at the run's ``num_threads``;
* ``"interleaved"`` (the default elsewhere, :class:`InterleavedEngine`): the same in turn on every batch (on
  CUDA each member on its own stream, so their kernels overlap).

A member runs its single run's own step (:class:`empirical.step.TrainStep`, ``torch.optim.SGD``), from the same
initial weights and batch order, so on the CPU it equals its single run exactly (tests/empirical/test_sweep.py).
Each member is a normal run directory ``DIR/<name>/`` (``config.json``, ``metrics.jsonl``,
``checkpoints/last.pt`` in the single-run format, figures): ``python -m empirical train --out DIR/<name>
--resume``, ``plot``, ``load_run`` and ``paper_checks --run-dir`` work on it as on any run.
``DIR/sweep.json`` lists the members with their final train and test error and the learning rate selected
by final test accuracy; ``DIR/accuracy_vs_lr.png`` draws it.

Members are trained in chunks of at most ``max_members_per_chunk`` (default: as many as the memory holds,
:func:`chunk_size`).  Each chunk checkpoints atomically to ``DIR/chunks/NN/checkpoints/last.pt`` (by time
and at the end, as single runs do: tensors, torch's optimizer state dicts and plain values); ``resume=True``
continues every unfinished chunk from there.  A member whose loss becomes non-finite stops alone
(``status: "diverged"`` in ``sweep.json``); the others go on.
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

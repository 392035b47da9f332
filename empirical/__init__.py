"""empirical: train real networks with MSE and measure Neural Collapse along training (math §2-§4, §7, §8).

The public API (each name is loaded on first use: ``import empirical`` imports no torch)::

    empirical.train(cfg, resume=False)          -> run directory           (empirical.training)
    empirical.TrainConfig / PRESETS / merge_preset(preset, **options)     (empirical.config)
    empirical.run_sweep(spec) / SweepSpec        many learning rates at once (empirical.sweep)
    empirical.NCMonitor(model, classifier, num_classes=..., out=...)     (empirical.monitor)
    empirical.measure(model, x, y, num_classes, weight_decay=...)         (empirical.measurement)
    empirical.load_dataset(name, ...) / build_model(name, ...)
    empirical.load_run(run_dir, epoch=None)      -> LoadedRun (model, data, config)
    empirical.read_run_log(path)                 -> RunLog (run dir, .jsonl or .csv; schema-checked)

Modules: ``training`` (the training loop), ``measurement`` (one measurement), ``monitor``, ``lightning``
(optional extra), ``sweep``, ``config``, ``state``, ``runs`` (run directories), ``schema`` (the run format,
docs/run_format.md), ``loading``, ``export``, ``plot``, ``data``, ``models``, ``distributed``.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the re-exports, written out as in the other packages (for type checkers and readers)
    from .config import PRESETS, TrainConfig, merge_preset
    from .data import load_dataset, load_train_test
    from .loading import LoadedRun, load_run
    from .measurement import METRIC_KEYS, measure
    from .models import build_model
    from .monitor import NCMonitor
    from .runs import RunError
    from .schema import SCHEMA_VERSION, RunLog, RunLogError, read_run_log, run_schema
    from .sweep import SweepSpec, run_sweep
    from .training import NonFiniteLossError, train

__all__ = [
    "LoadedRun",
    "METRIC_KEYS",
    "NCMonitor",
    "NonFiniteLossError",
    "PRESETS",
    "RunError",
    "RunLog",
    "RunLogError",
    "SCHEMA_VERSION",
    "SweepSpec",
    "TrainConfig",
    "build_model",
    "load_dataset",
    "load_run",
    "load_train_test",
    "measure",
    "merge_preset",
    "read_run_log",
    "run_schema",
    "run_sweep",
    "train",
]

#: public name -> module that defines it, imported on first use (``import empirical`` imports no torch)
_EXPORTS = {name: module for module, names in {
    "training": ("train", "NonFiniteLossError"),
    "config": ("TrainConfig", "PRESETS", "merge_preset"),
    "sweep": ("run_sweep", "SweepSpec"),
    "monitor": ("NCMonitor",),
    "measurement": ("measure", "METRIC_KEYS"),
    "data": ("load_dataset", "load_train_test"),
    "models": ("build_model",),
    "loading": ("load_run", "LoadedRun"),
    "schema": ("read_run_log", "RunLog", "RunLogError", "SCHEMA_VERSION", "run_schema"),
    "runs": ("RunError",),
}.items() for name in names}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'empirical' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

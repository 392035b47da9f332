"""empirical: train real networks with MSE and measure Neural Collapse along training (math §2-§4, §7, §8).

The public API (each name is loaded on first use, so ``import empirical`` and the small modules such as
``empirical.runs`` stay free of torch until a name that needs it is touched)::

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
_EXPORTS = {
    "train": "training",
    "NonFiniteLossError": "training",
    "TrainConfig": "config",
    "PRESETS": "config",
    "merge_preset": "config",
    "run_sweep": "sweep",
    "SweepSpec": "sweep",
    "NCMonitor": "monitor",
    "measure": "measurement",
    "METRIC_KEYS": "measurement",
    "load_dataset": "data",
    "load_train_test": "data",
    "build_model": "models",
    "load_run": "loading",
    "LoadedRun": "loading",
    "read_run_log": "schema",
    "RunLog": "schema",
    "RunLogError": "schema",
    "SCHEMA_VERSION": "schema",
    "run_schema": "schema",
    "RunError": "runs",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'empirical' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

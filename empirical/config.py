"""Options of a training run: :class:`TrainConfig` (the protocol's defaults, math §7.1, §8), the named
:data:`PRESETS`, and the one merge of defaults < preset < config file < explicit options (:func:`merge_preset`)
that every command line uses.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from theory.tiling import DEFAULT_TILE, check_tile

from .schedule import lr_milestones, measurement_epochs

__all__ = ["TrainConfig", "PRESETS", "RESUME_OVERRIDES", "merge_preset", "merged_options", "read_config_file",
           "changed_options", "parse_keep_checkpoints"]

#: Options a resumed run may change; any other option given on resume must equal the stored value.
RESUME_OVERRIDES: tuple[str, ...] = ("device", "progress", "num_threads", "checkpoint_every", "checkpoint_every_s",
                                     "keep_checkpoints")


#: Options that count something: whole numbers (``None`` where the option allows it).
WHOLE_NUMBER_OPTIONS = ("per_class", "epochs", "batch_size", "eval_batch_size", "seed", "tile", "checkpoint_every",
                        "num_threads", "image_size")


def _whole_number(name: str, value: Any) -> Any:
    """``value`` as an ``int`` when it is a whole number (any integer type, or a float such as a config file's
    ``128.0``; ``None`` kept), else a one-line ``ValueError``."""
    if value is None:
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"{name} must be a whole number, got {value!r}")


@dataclass
class TrainConfig:
    """Every option of a training run (JSON-serialisable; stored in ``config.json``; the ``--help`` of
    ``python -m empirical train`` describes each).

    ``lr_milestones`` / ``measure_epochs`` left ``None`` take the paper's defaults for ``epochs`` (math §7.1).
    ``mse_scale = (k, M)``: Hui & Belkin's rescaled MSE (math §3.6; ``(1, 1)`` is ``nn.MSELoss()``).
    ``measure_layers`` / ``layer_reduce`` / ``layer_ridge``: :mod:`empirical.layers` (math §3.5); ``tile``: rows
    per tile of the ``C x C`` computations (math §2.3).  The decomposition is at
    ``lam = theory.lam_from_weight_decay(weight_decay, reduction="mean", num_classes=C)`` (math §8 item 2).
    ``model="ufm"``: no test set (:meth:`notes`), and ``amp`` / ``compile`` ``"auto"`` mean none.
    """

    dataset: str = "digits"
    model: str = "mlp"
    out: str = "runs/default"
    per_class: int | None = None
    epochs: int = 350
    lr: float = 0.0184
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    drop_last: bool = True
    loss: str = "mse"
    mse_scale: tuple[float, float] = (1.0, 1.0)
    lr_gamma: float = 0.1
    lr_milestones: list[int] | None = None
    measure_epochs: list[int] | None = None
    measure_test: bool = True
    eval_batch_size: int = 1024
    data_root: str | None = None
    image_size: int | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    data_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    amp: str = "auto"
    compile: str = "auto"
    channels_last: str = "auto"
    measure_precision: str = "auto"
    measure_layers: str | list[str] | None = None
    layer_reduce: str = "gap"
    layer_ridge: float = 0.0
    tile: int = DEFAULT_TILE
    checkpoint_every: int | None = None
    checkpoint_every_s: float = 300.0
    keep_checkpoints: str | list[int] | None = None
    num_threads: int | None = None
    progress: bool = True
    preset: str | None = None

    def __post_init__(self) -> None:
        # own copies: a preset's dicts are never mutated through a config
        self.model_kwargs = dict(self.model_kwargs or {})
        self.data_kwargs = dict(self.data_kwargs or {})
        if isinstance(self.mse_scale, list):  # read back from config.json
            self.mse_scale = tuple(self.mse_scale)
        # epoch lists: whole numbers (10.0 reads as 10; 10.7 is refused, it was cut to 10)
        if self.lr_milestones is not None:
            self.lr_milestones = [_whole_number("lr_milestones", m) for m in self.lr_milestones]
        if self.measure_epochs is not None:
            self.measure_epochs = [_whole_number("measure_epochs", e) for e in self.measure_epochs]
        if isinstance(self.keep_checkpoints, (list, tuple)):
            self.keep_checkpoints = sorted({_whole_number("keep_checkpoints", e) for e in self.keep_checkpoints})

    def resolved(self) -> TrainConfig:
        """A copy with the schedule defaults filled in and the options validated (``ValueError`` naming the option)."""
        from .layers import check_reduce, check_ridge
        from .loss import check_mse_scale
        from .measurement import MEASURE_PRECISIONS
        from .models import takes_sample_indices
        from .step import check_options

        cfg = dataclasses.replace(self, model_kwargs=dict(self.model_kwargs), data_kwargs=dict(self.data_kwargs))
        for name in WHOLE_NUMBER_OPTIONS:  # a config file's 128.0 reads as 128; 128.5 is refused here, not mid-run
            setattr(cfg, name, _whole_number(name, getattr(cfg, name)))
        if cfg.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {cfg.epochs}")
        if cfg.batch_size < 1 or cfg.eval_batch_size < 1:
            raise ValueError("batch sizes must be >= 1")
        if not (isinstance(cfg.lr, (int, float)) and cfg.lr > 0 and math.isfinite(cfg.lr)):
            raise ValueError(f"lr must be a positive finite number, got {cfg.lr}")
        if not (cfg.weight_decay >= 0 and math.isfinite(cfg.weight_decay)):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {cfg.weight_decay}")
        if cfg.loss not in ("mse", "ce"):
            raise ValueError(f"unknown loss {cfg.loss!r}: expected 'mse' or 'ce'")
        cfg.mse_scale = check_mse_scale(cfg.mse_scale, cfg.loss)
        if cfg.amp not in ("auto", "bf16", "none"):
            raise ValueError(f"unknown amp {cfg.amp!r}: expected 'auto', 'bf16' or 'none'")
        check_options(cfg.compile, cfg.channels_last)
        if cfg.measure_precision not in MEASURE_PRECISIONS:
            raise ValueError(f"unknown measure_precision {cfg.measure_precision!r}: "
                             f"expected one of {list(MEASURE_PRECISIONS)}")
        layers = cfg.measure_layers  # module names are checked against the model (empirical.layers)
        names = isinstance(layers, list) and layers and all(isinstance(n, str) and n for n in layers)
        if not (layers is None or isinstance(layers, str) or names):
            raise ValueError(f"measure_layers must be 'all-blocks' or module names, got {layers!r}")
        check_reduce(cfg.layer_reduce)
        check_ridge(cfg.layer_ridge)
        check_tile(cfg.tile)
        if cfg.checkpoint_every is not None and cfg.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1 epoch, got {cfg.checkpoint_every}")
        if not (cfg.checkpoint_every_s >= 0 and math.isfinite(cfg.checkpoint_every_s)):
            raise ValueError(f"checkpoint_every_s must be a finite number >= 0, got {cfg.checkpoint_every_s}")
        if cfg.per_class is not None and cfg.per_class < 1:
            raise ValueError(f"per_class must be >= 1, got {cfg.per_class}")
        if takes_sample_indices(cfg.model):  # the UFM: no test set (see the class docstring)
            cfg.measure_test = False
        if cfg.lr_milestones is None:
            cfg.lr_milestones = lr_milestones(cfg.epochs)
        if cfg.measure_epochs is None:
            cfg.measure_epochs = measurement_epochs(cfg.epochs)
        cfg.measure_epochs = sorted({int(e) for e in cfg.measure_epochs})
        bad = [e for e in cfg.measure_epochs if e < 0 or e > cfg.epochs]
        if bad:
            raise ValueError(f"measure_epochs {bad} outside [0, {cfg.epochs}]")
        if isinstance(cfg.keep_checkpoints, str) and cfg.keep_checkpoints != "measured":
            raise ValueError(f"keep_checkpoints must be 'measured' or a list of epochs, got {cfg.keep_checkpoints!r}")
        if isinstance(cfg.keep_checkpoints, list):
            bad = [e for e in cfg.keep_checkpoints if e < 0 or e > cfg.epochs]
            if bad:
                raise ValueError(f"keep_checkpoints epochs {bad} outside [0, {cfg.epochs}]")
        return cfg

    def notes(self) -> list[str]:
        """The ``notes`` of ``config.json`` (for ``model="ufm"``: no test set)."""
        from .models import takes_sample_indices
        from .models.ufm import NO_TEST_SET_NOTE

        return [NO_TEST_SET_NOTE] if takes_sample_indices(self.model) else []

    def kept_epochs(self) -> set[int]:
        """Epochs whose weights are kept (``keep_checkpoints``; the measured epochs for ``"measured"``)."""
        if self.keep_checkpoints is None:
            return set()
        if isinstance(self.keep_checkpoints, str):  # "measured"
            return set(self.measure_epochs or measurement_epochs(self.epochs))
        return set(self.keep_checkpoints)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        check_option_names(d)
        return cls(**d)


def check_option_names(options: dict[str, Any], where: str = "") -> None:
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ValueError(f"unknown TrainConfig option(s){where}: {unknown}")


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The options set in a JSON file (a bare dict or a run's ``config.json``), validated by name."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"config file {path} is not JSON: {exc}") from None
    options = d.get("config", d)
    check_option_names(options, f" in {path}")
    return dict(options)


def parse_keep_checkpoints(text: str) -> str | list[int]:
    """``"measured"`` or comma-separated epochs (``--keep-checkpoints``)."""
    text = text.strip().lower()
    if text == "measured":
        return "measured"
    try:
        return sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise ValueError(
            f"cannot parse --keep-checkpoints {text!r}: expected 'measured' or comma-separated epochs"
        ) from None


def merged_options(preset: str | None = None, config_file: str | os.PathLike | None = None,
                   **explicit: Any) -> dict[str, Any]:
    """The options that are *set* (no :class:`TrainConfig` defaults): preset < config file < explicit (``None``:
    unset); explicit ``model_kwargs`` / ``data_kwargs`` are merged key by key into the preset's."""
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known presets: {', '.join(sorted(PRESETS))}")
        values.update(PRESETS[preset])
        values["preset"] = preset
    if config_file is not None:
        values.update(read_config_file(config_file))
    explicit = {k: v for k, v in explicit.items() if v is not None}
    check_option_names(explicit)
    for key in ("model_kwargs", "data_kwargs"):
        if key in explicit:
            explicit[key] = {**values.get(key, {}), **explicit[key]}
    values.update(explicit)
    return values


def merge_preset(preset: str | None = None, config_file: str | os.PathLike | None = None,
                 **explicit: Any) -> TrainConfig:
    """One :class:`TrainConfig` from defaults < ``preset`` < ``config_file`` < ``explicit`` options (``None``:
    not given); ``out`` defaults to ``runs/<preset>`` or ``runs/<dataset>-<model>``."""
    values = merged_options(preset, config_file, **explicit)
    if "out" not in values:
        name = preset or f"{values.get('dataset', TrainConfig.dataset)}-{values.get('model', TrainConfig.model)}"
        values["out"] = str(Path("runs") / name)
    return TrainConfig.from_dict(values)


def changed_options(stored: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """The keys of ``given`` whose value differs from ``stored`` (compared as JSON values)."""
    return sorted(k for k, v in given.items()
                  if json.dumps(stored.get(k), sort_keys=True) != json.dumps(v, sort_keys=True))


#: Named defaults for ``--preset`` (explicit options override them).
PRESETS: dict[str, dict[str, Any]] = {
    # Main job: digits (N = 130 per class), an MLP 64-256-256-64 with BatchNorm, the paper's protocol otherwise.
    # lr = 0.4 was the best of 0.05 ... 0.6 for depth of collapse (zero training error by epoch ~10; final
    # NC1 ~1.5e-4, NC3 ~0.03, NC4 = 0, rho_perp ~0.02).  About 20-40 s on 2 shared CPU cores.
    "digits-mlp": dict(
        dataset="digits", model="mlp", per_class=130, epochs=350, lr=0.4, batch_size=128,
        weight_decay=5e-4, momentum=0.9, model_kwargs={"widths": [256, 256, 64], "batch_norm": True},
        num_threads=1,  # a tiny model: one thread is faster and steadier on a shared CPU
    ),
    # The unconstrained-features model (math §6.1) on digits-mlp's samples and protocol; its features move by
    # lr * 2 / (B C) per unit residual, so it needs a far larger lr: lr = 1 reaches zero training error by ~60.
    "digits-ufm": dict(
        dataset="digits", model="ufm", per_class=130, epochs=350, lr=1.0, batch_size=128,
        weight_decay=5e-4, momentum=0.9, model_kwargs={"dim": 64}, num_threads=1,
    ),
    # Paper protocol (math §7.1, §8): ResNet18 with the notebook's tuned MSE learning rate.
    "paper-fashion-mnist-resnet18": dict(
        dataset="fashion-mnist", model="resnet18", per_class=5000, epochs=350, lr=0.0184, batch_size=128,
    ),
    "paper-mnist-resnet18": dict(
        dataset="mnist", model="resnet18", per_class=5000, epochs=350, lr=0.0184, batch_size=128,
    ),
    # Tiny synthetic run for smoke tests.
    "gaussian-mlp": dict(
        dataset="gaussian", model="mlp", per_class=50, epochs=20, lr=0.05, batch_size=50,
        model_kwargs={"widths": [64, 32]}, data_kwargs={"dim": 16, "num_classes": 4},
    ),
}

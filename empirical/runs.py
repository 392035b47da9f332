"""Run directories: config, metrics log, atomic checkpoints (design.md "Runs and files").

A run directory holds

* ``config.json``: the full :class:`empirical.config.TrainConfig` plus the environment
  (versions of python / torch / numpy, device, host, start time): everything needed to
  reproduce the run;
* ``metrics.jsonl``: one JSON object per measured epoch, appended, flushed and fsync'd as
  soon as it is measured, so a killed run loses nothing already measured;
* ``checkpoints/last.pt``: model, optimiser, the run state (:class:`empirical.state.RunState`:
  epoch, step, lr-weighted steps, clock) and every RNG state, written atomically (temporary file in
  the same folder, fsync, ``os.replace``) every ``checkpoint_every_s`` seconds and at the end;
* ``checkpoints/epoch-EEEE.pt``: the weights of the epochs kept with ``--keep-checkpoints``
  (:func:`empirical.loading.load_run`);
* ``figures/``: the plots of :mod:`empirical.plot`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import socket
import sys
from pathlib import Path
from typing import Any, Iterable

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_FILE = "last.pt"
FIGURES_DIR = "figures"


class RunError(RuntimeError):
    """A run directory is missing, inconsistent, or would be overwritten."""


def environment_info(device: str | None = None) -> dict[str, Any]:
    """Versions and machine facts recorded in ``config.json``."""
    import numpy as np
    import torch

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "torch_num_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "argv": list(sys.argv),
    }
    if device is not None:
        info["device"] = str(device)
        if str(device).startswith("cuda") and torch.cuda.is_available():
            info["cuda_device_name"] = torch.cuda.get_device_name(torch.device(device))
            info["cuda_version"] = torch.version.cuda
    return info


def _json_default(obj: Any):
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and getattr(obj, "ndim", 0) == 0:
        return _sanitize(obj.item())
    if hasattr(obj, "tolist"):
        return _sanitize(obj.tolist())
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _sanitize(value: Any) -> Any:
    """Replace NaN/Inf floats by ``None`` (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _sanitize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_sanitize(v) for v in value]
    return value


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temporary file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_config(run_dir: Path, config: dict[str, Any]) -> Path:
    """Write ``config.json`` atomically and return its path."""
    text = json.dumps(_sanitize(config), indent=2, sort_keys=True, default=_json_default) + "\n"
    path = Path(run_dir) / CONFIG_FILE
    atomic_write_bytes(path, text.encode())
    return path


def read_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``config.json`` of a run directory."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise RunError(f"not a run directory (no {CONFIG_FILE}): {Path(run_dir)}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunError(f"corrupt {path}: {exc}") from None


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of ``metrics.jsonl`` in order (one dict per measured epoch).

    A truncated last line (a run killed while writing) is ignored; a corrupt line
    elsewhere is an error.  A missing file gives an empty list if the run directory exists.
    """
    run_dir = Path(run_dir)
    path = run_dir / METRICS_FILE
    if not path.is_file():
        if not run_dir.is_dir():
            raise RunError(f"run directory not found: {run_dir}")
        return []
    return _parse_metrics_lines(path.read_text().splitlines(), path)[0]


def _parse_metrics_lines(lines: list[str], path: Path) -> tuple[list[dict[str, Any]], bool]:
    records: list[dict[str, Any]] = []
    truncated = False
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                truncated = True
                break
            raise RunError(f"corrupt line {i + 1} in {path}") from None
    return records, truncated


def repair_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Drop a truncated last line of ``metrics.jsonl`` (atomically) and return the records."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    text = path.read_text()
    records, truncated = _parse_metrics_lines(text.splitlines(), path)
    if truncated or (text and not text.endswith("\n")):
        body = "".join(json.dumps(r, default=_json_default) + "\n" for r in records)
        atomic_write_bytes(path, body.encode())
    return records


def json_line(record: Any) -> str:
    """``record`` as one line of strict JSON: NaN/Inf become ``null``; paths, NumPy and torch
    scalars / arrays become JSON values."""
    return json.dumps(_sanitize(record), default=_json_default, allow_nan=False)


def append_jsonl(path: str | os.PathLike, record: Any) -> None:
    """Append ``record`` as one JSON line (:func:`json_line`) to ``path``; flush and fsync, so a
    killed process loses nothing already written."""
    line = json_line(record)
    with open(path, "a") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


class MetricsWriter:
    """Append one JSON object per line to ``metrics.jsonl``; flush and fsync after each."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / METRICS_FILE

    def write(self, record: dict[str, Any]) -> None:
        append_jsonl(self.path, record)


def checkpoint_path(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / CHECKPOINT_FILE


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> Path:
    """Save ``state`` with ``torch.save`` atomically to ``checkpoints/last.pt``."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    path = checkpoint_path(run_dir)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_checkpoint(run_dir: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load ``checkpoints/last.pt``; :class:`RunError` when there is none."""
    import torch

    path = checkpoint_path(run_dir)
    if not path.is_file():
        raise RunError(f"no checkpoint to resume from: {path} does not exist")
    return torch.load(path, map_location=map_location, weights_only=False)


def prepare_run_dir(run_dir: Path, *, resume: bool) -> Path:
    """Create ``run_dir`` (and ``checkpoints/``, ``figures/``) for a new run, or check it for a resume.

    A new run refuses a directory that already holds ``metrics.jsonl`` or a checkpoint
    (use ``--resume`` or another ``--out``): nothing measured is overwritten.
    """
    run_dir = Path(run_dir)
    if resume:
        if not (run_dir / CONFIG_FILE).is_file():
            raise RunError(f"cannot resume: {run_dir} is not a run directory (no {CONFIG_FILE})")
    else:
        if (run_dir / METRICS_FILE).exists() or checkpoint_path(run_dir).exists():
            raise RunError(
                f"run directory {run_dir} already holds a run; pass --resume to continue it "
                "or choose another --out"
            )
    (run_dir / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
    (run_dir / FIGURES_DIR).mkdir(parents=True, exist_ok=True)
    return run_dir


def measured_epochs(records: Iterable[dict[str, Any]]) -> set[int]:
    return {int(r["epoch"]) for r in records if "epoch" in r}


def terminal_phase_start(records: list[dict[str, Any]]) -> int | None:
    """Index into ``records`` (sorted by epoch) where the terminal phase starts (spec 7.2): the record
    after the last one whose training error is not zero (> 0 or missing), so the training error stays
    zero from there on.  ``None`` when the last record's training error is not zero (the run ends
    outside the terminal phase).  The one definition used by the plots and by paper_checks."""
    start = 0
    for i, r in enumerate(records):
        if r.get("train_error") != 0:
            start = i + 1
    return start if start < len(records) else None

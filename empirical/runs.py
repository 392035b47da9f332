"""Run directories: config, metrics log, atomic checkpoints (docs/run_format.md).

A run directory holds ``config.json`` (the full :class:`empirical.config.TrainConfig` and the environment),
``metrics.jsonl`` (one JSON object per measured epoch, flushed and fsync'd as soon as measured),
``checkpoints/last.pt`` (model, optimiser, :class:`empirical.state.RunState` and every RNG state: tensors and
plain values only, read back by :func:`read_checkpoint`, written atomically by a :class:`CheckpointWriter`
thread), ``checkpoints/epoch-EEEE.pt`` (weights kept with ``--keep-checkpoints``) and ``figures/``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
import socket
import sys
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from theory.jsonio import dumps

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_FILE = "last.pt"
FIGURES_DIR = "figures"


class RunError(RuntimeError):
    """A run directory is missing, inconsistent, or would be overwritten."""


def launched_world_size() -> int:
    """The number of processes ``torchrun`` launched (its ``WORLD_SIZE``; 1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


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
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
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
    fsync_file(path.parent, quiet=True)  # the rename itself


def write_config(run_dir: Path, config: dict[str, Any]) -> Path:
    """Write ``config.json`` atomically and return its path."""
    text = dumps(config, indent=2, sort_keys=True, unknown="raise") + "\n"
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

    A truncated last line (a killed run) is ignored; a corrupt line elsewhere is a :class:`RunError`.
    A missing file gives an empty list if the run directory exists.
    """
    run_dir = Path(run_dir)
    path = run_dir / METRICS_FILE
    if not path.is_file():
        if not run_dir.is_dir():
            raise RunError(f"run directory not found: {run_dir}")
        return []
    return _parse_metrics_lines(path.read_text().splitlines(), path)[0]


def parse_jsonl(lines: list[str]) -> tuple[list[tuple[int, Any, str | None]], bool]:
    """``(rows, truncated)``: ``(line number, record or None, why it is not JSON or None)`` per non-blank line;
    a last line that is not JSON (a run killed while writing it) is left out, with ``truncated`` true."""
    rows: list[tuple[int, Any, str | None]] = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append((i, json.loads(line), None))
        except json.JSONDecodeError as exc:
            if i == len(lines):
                return rows, True
            rows.append((i, None, f"not valid JSON ({exc.msg} at column {exc.colno})"))
    return rows, False


def _parse_metrics_lines(lines: list[str], path: Path) -> tuple[list[dict[str, Any]], bool]:
    rows, truncated = parse_jsonl(lines)
    bad = next((i for i, _, problem in rows if problem), None)
    if bad is not None:
        raise RunError(f"corrupt line {bad} in {path}")
    return [rec for _, rec, _ in rows], truncated


def repair_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Drop a truncated last line of ``metrics.jsonl`` (atomically) and return the records."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    text = path.read_text()
    records, truncated = _parse_metrics_lines(text.splitlines(), path)
    if truncated or (text and not text.endswith("\n")):
        body = "".join(json_line(r) + "\n" for r in records)
        atomic_write_bytes(path, body.encode())
    return records


def json_line(record: Any) -> str:
    """``record`` as one line of strict JSON (NaN/Inf -> ``null``; paths, NumPy and torch values converted)."""
    return dumps(record, indent=None, unknown="raise")


def append_jsonl(path: str | os.PathLike, record: Any, writer: CheckpointWriter | None = None) -> None:
    """Append ``record`` as one JSON line (:func:`json_line`) and flush it; fsync it here, or in ``writer``'s
    background thread."""
    line = json_line(record)
    with open(path, "a") as fh:
        fh.write(line + "\n")
        fh.flush()
        if writer is None:
            os.fsync(fh.fileno())
    if writer is not None:
        writer.sync(Path(path))


def fsync_file(path: Path, *, quiet: bool = False) -> None:
    """``os.fsync`` of ``path`` (a file or folder) through a fresh descriptor; ``quiet``: ignore ``OSError``."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        if not quiet:
            raise


def checkpoint_path(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / CHECKPOINT_FILE


def kept_checkpoint_path(run_dir: Path, epoch: int) -> Path:
    """``checkpoints/epoch-EEEE.pt``: the weights kept at ``epoch`` (``--keep-checkpoints``)."""
    return Path(run_dir) / CHECKPOINT_DIR / f"epoch-{int(epoch):04d}.pt"


def checkpoint_bytes(state: dict[str, Any]) -> bytes:
    """``torch.save`` of ``state`` into memory: the snapshot (device tensors copied to the host here)."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def save_checkpoint(run_dir: Path, state: dict[str, Any], writer: CheckpointWriter | None = None) -> Path:
    """Save ``state`` atomically to ``checkpoints/last.pt``: the snapshot now, the file here or by ``writer``."""
    path = checkpoint_path(run_dir)
    data = checkpoint_bytes(state)
    if writer is None:
        atomic_write_bytes(path, data)
    else:
        writer.submit([(path, data)])
    return path


class CheckpointWriter:
    """Writes checkpoint snapshots (and fsyncs metrics lines) in one background thread, in submission order.

    :meth:`submit` returns at once; :meth:`wait` blocks until everything submitted is on disk, ends the thread
    and re-raises the first write error.  Each file is written atomically, so a kill leaves the previous
    checkpoint or the new one.
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []

    def _enqueue(self, fn, *args) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint-writer")
        self._pending.append(self._pool.submit(fn, *args))

    def submit(self, items: list[tuple[Path, bytes]]) -> None:
        for path, data in items:
            self._enqueue(atomic_write_bytes, path, data)

    def sync(self, path: Path) -> None:
        """fsync ``path`` (already written and flushed by the caller) in the background thread."""
        self._enqueue(fsync_file, path)

    def wait(self) -> None:
        pending, self._pending = self._pending, []
        errors = [f.exception() for f in pending]  # waits for each, in order
        if self._pool is not None:  # the thread ends here; a later submit starts a new one
            self._pool.shutdown(wait=True)
            self._pool = None
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first


def load_checkpoint(run_dir: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load ``checkpoints/last.pt`` with :func:`read_checkpoint`; :class:`RunError` when there is none."""
    path = checkpoint_path(run_dir)
    if not path.is_file():
        raise RunError(f"no checkpoint to resume from: {path} does not exist")
    return read_checkpoint(path, map_location=map_location)


def read_checkpoint(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The one way the toolkit reads a checkpoint file: ``torch.load(path, weights_only=True)``.

    A file holding anything besides tensors and plain values (a pickled object, whose unpickling may run
    code), or one torch cannot read, is refused unread with a one-line :class:`RunError`.
    """
    import pickle

    import torch

    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        names = _unsafe_globals(path, exc)
        if not names:  # no object refused: the file is not a checkpoint torch can read
            raise RunError(f"cannot read checkpoint {path}: not a file torch.save wrote, or a damaged one "
                           f"({_refusal_reason(exc) or _first_sentence(exc)})") from None
        raise RunError(f"refusing to load {path}: it holds objects other than tensors and plain values "
                       f"({', '.join(names)}); unpickling them may run code. A checkpoint written by "
                       "an older version of this toolkit or by another tool is refused: load it with "
                       "torch.load(weights_only=False) only if you trust who wrote it") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise RunError(f"cannot read checkpoint {path}: {_first_sentence(exc)}") from None
    if not isinstance(state, dict):
        raise RunError(f"not a checkpoint: {path} holds a {type(state).__name__}, not a dict")
    return state


def _unsafe_globals(path: Path, exc: BaseException) -> list[str]:
    """The classes / functions ``path``'s pickle needs beyond what ``weights_only=True`` allows (read from its
    opcodes, else from torch's refusal ``exc``); empty when ``exc`` refused no class or function."""
    import torch

    if "weights only load failed" not in str(exc).lower():
        return []
    try:
        names = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - torch < 2.5, or a file in torch's legacy (non-zip) format
        names = []
    return sorted(set(names or re.findall(r"Unsupported global: GLOBAL (\S+)", str(exc))))


def _refusal_reason(exc: BaseException) -> str | None:
    """Why torch's weights-only unpickler stopped (``"Unsupported operand 110"``), else ``None``."""
    found = re.search(r"(?:WeightsUnpickler error|Original error):\s*(.*?)(?:\n|$)", str(exc))
    return (found.group(1).strip() or None) if found else None


def _first_sentence(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].split(". ")[0] if text else type(exc).__name__


def prepare_run_dir(run_dir: Path, *, resume: bool) -> Path:
    """Create ``run_dir`` (and ``checkpoints/``, ``figures/``) for a new run, or check it for a resume.

    A new run refuses a directory that already holds ``metrics.jsonl`` or a checkpoint.
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


#: Default training-error threshold of the terminal phase: exactly zero, the paper's definition.
TPT_THRESHOLD_DEFAULT = 0.0


def terminal_phase_start(records: list[dict[str, Any]], threshold: float = TPT_THRESHOLD_DEFAULT) -> int | None:
    """Index into ``records`` (sorted by epoch) where the terminal phase starts (math §7.2): the first
    measured epoch from which the training error stays at or below ``threshold`` to the end of the log.

    ``threshold = 0`` is the paper's definition; a small fraction such as ``1e-3`` tolerates a few samples
    that label noise keeps misclassified.  A missing training error counts as above the threshold; ``None``
    when the last record is above it.  The one definition used by the plots and by paper_checks.
    """
    threshold = check_tpt_threshold(threshold)
    start = 0
    for i, r in enumerate(records):
        err = r.get("train_error")
        if not isinstance(err, (int, float)) or isinstance(err, bool) or not (err <= threshold):
            start = i + 1
    return start if start < len(records) else None


def check_tpt_threshold(threshold: Any) -> float:
    """``threshold`` as a float in ``[0, 1)`` (a fraction of the training set), else ``ValueError``."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"tpt threshold must be a number in [0, 1), got {threshold!r}") from None
    if not (0.0 <= value < 1.0):
        raise ValueError(f"tpt threshold must be in [0, 1) (a fraction of the training samples), got {threshold!r}")
    return value


def misfit_count(record: dict[str, Any], train_count: int | None = None) -> int | None:
    """``round(train_error * n)`` misclassified training samples, ``n`` the record's ``train_count`` else
    ``train_count``; ``None`` when either is unknown."""
    err = record.get("train_error")
    n = record.get("train_count", train_count)
    if not isinstance(err, (int, float)) or n is None or not math.isfinite(float(err)):
        return None
    return int(round(float(err) * int(n)))

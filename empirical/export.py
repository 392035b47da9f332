"""CSV export of a run's ``metrics.jsonl`` (docs/run_format.md).

One row per measured epoch, one column per key in order of first appearance; a list of numbers becomes
columns ``key_0, key_1, ...``; a list of strings or an object (``warnings``, ``layers``) one JSON cell; missing
values are empty cells.  :func:`empirical.schema.read_run_log` reads the CSV back into the same records.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from .runs import read_metrics


def flatten_record(record: dict[str, Any], list_keys: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """Expand list values into ``key_i`` columns (a list of strings stays one JSON cell); ``list_keys``: keys that
    are lists of numbers in some record (their ``None`` gives no column)."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, (list, tuple)):
            if value and all(isinstance(v, str) for v in value):
                flat[key] = json.dumps(list(value))
            elif not value and key not in list_keys:
                flat[key] = ""
            else:
                for i, v in enumerate(value):
                    flat[f"{key}_{i}"] = v
        elif isinstance(value, dict):  # e.g. the per-layer records ("layers"): one cell holding the JSON object
            flat[key] = json.dumps(value)
        elif value is None and key in list_keys:
            continue
        else:
            flat[key] = value
    return flat


def metrics_to_csv(records: list[dict[str, Any]]) -> str:
    """CSV text of ``records`` (header = union of flattened keys, first-seen order)."""
    list_keys = {k for r in records for k, v in r.items()  # lists of numbers
                 if isinstance(v, (list, tuple)) and not all(isinstance(x, str) for x in v)}
    rows = [flatten_record(r, list_keys) for r in records]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else (repr(v) if isinstance(v, float) else v)) for k, v in row.items()})
    return buf.getvalue()


def export_csv(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write ``metrics.csv`` (or ``out``) for the run in ``run_dir`` and return its path."""
    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    path = Path(out) if out is not None else run_dir / "metrics.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(metrics_to_csv(records))
    return path

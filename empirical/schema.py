"""The run format, versioned and machine-checked, and one reader for every form of a run log.

A run directory holds ``config.json`` and ``metrics.jsonl`` (one JSON object per measured epoch).  The format is
the JSON Schema ``empirical/run_schema.json`` (:func:`run_schema`, docs/run_format.md): ``$defs/config`` and
``$defs/metrics_line``; each decomposition term's ``x-lambda`` says the ridge it is at: the line's ``lam``
(math §8), its ``lam_notebook`` (``wd / 2``) or ``0`` (the ``_lam0`` terms and ``loss_nowd``, math §3.4).

:func:`read_run_log` reads a run directory, a ``.jsonl`` or a ``.csv`` file (``export-csv``'s included) and
checks every line against the schema and :func:`line_problem`, reporting the first problem in one line;
:meth:`RunLog.term_lambda` / :meth:`RunLog.at_lambda_zero` tell the lambda a term is at.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .runs import CONFIG_FILE, METRICS_FILE, RunError, parse_jsonl

__all__ = ["SCHEMA_VERSION", "RunLog", "RunLogError", "line_problem", "read_run_log", "run_schema", "term_lambda_keys"]

#: Version of the run format described by ``run_schema.json`` (its ``x-schema-version``); recorded as
#: ``schema_version`` in ``config.json``.  Bump it when a key changes meaning or type.
SCHEMA_VERSION: int = 1

SCHEMA_FILE = "run_schema.json"


class RunLogError(RunError, ValueError):
    """A run log that does not follow the run format (one line: file, line, key, problem)."""


@functools.cache
def run_schema() -> dict[str, Any]:
    """The JSON Schema of the run format (``empirical/run_schema.json``, package data)."""
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


@functools.cache
def term_lambda_keys() -> dict[str, str | float]:
    """``{key: where its lambda is}`` from the schema's ``x-lambda`` annotations: ``"lam"`` or
    ``"lam_notebook"`` (the line's key holding the value) or ``0.0``."""
    props = run_schema()["$defs"]["metrics_line"]["properties"]
    return {k: (float(v["x-lambda"]) if isinstance(v["x-lambda"], (int, float)) else v["x-lambda"])
            for k, v in props.items() if "x-lambda" in v}


@functools.cache
def _validator(name: str):
    import jsonschema

    schema = run_schema()
    sub = {**schema["$defs"][name], "$defs": schema["$defs"]}
    cls = jsonschema.validators.validator_for(schema)
    return cls(sub)


_FAST_KEYWORDS = frozenset(("type", "minimum", "maximum", "exclusiveMinimum", "enum", "items", "description",
                             "x-lambda"))
_FAST_TYPES = {
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
}


def _fast_value_check(spec: dict[str, Any]):
    """A plain-Python ``value -> bool`` for ``spec``, or ``None`` when it uses a keyword not handled here.  It may
    refuse what the schema allows (the integer ``2.0``), never the reverse: ``jsonschema`` then decides."""
    if not set(spec) <= _FAST_KEYWORDS:
        return None
    types = spec.get("type")
    types = [types] if isinstance(types, str) else types
    if types is not None and not all(t in _FAST_TYPES for t in types):
        return None
    item_check = _fast_value_check(spec["items"]) if isinstance(spec.get("items"), dict) else None
    if "items" in spec and item_check is None:
        return None
    lo, hi, xlo, enum = spec.get("minimum"), spec.get("maximum"), spec.get("exclusiveMinimum"), spec.get("enum")

    def check(value: Any) -> bool:
        if types is not None and not any(_FAST_TYPES[t](value) for t in types):
            return False
        if enum is not None and value not in enum:
            return False
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if (lo is not None and value < lo) or (hi is not None and value > hi) or (xlo is not None and value <= xlo):
                return False
        if item_check is not None and isinstance(value, list):
            return all(item_check(v) for v in value)
        return True

    return check


@functools.cache
def _fast_line_check():
    """``record -> bool`` (True: valid) for ``$defs/metrics_line`` in plain Python (``None``: not possible);
    the reader's fast path (benchmarks/bench_schema.py)."""
    line = run_schema()["$defs"]["metrics_line"]
    if set(line) - {"type", "required", "properties", "description"}:
        return None
    checks = {k: _fast_value_check(v) for k, v in line["properties"].items()}
    if any(c is None for c in checks.values()):
        return None
    required = tuple(line.get("required", ()))

    def check(record: Any) -> bool:
        if not isinstance(record, dict) or any(k not in record for k in required):
            return False
        return all(checks[k](v) for k, v in record.items() if k in checks)

    return check


#: JSON Schema type name -> the words of the problem messages
_SCHEMA_TYPE_WORDS: dict[str, str] = {"object": "an object", "array": "an array", "string": "a string",
                                      "boolean": "a boolean", "null": "null", "number": "a number",
                                      "integer": "an integer"}


def _describe(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    if len(text) > 40:
        text = text[:37] + "..."
    kind = next((t for t, test in _FAST_TYPES.items() if test(value)), None)  # an int: "number", listed first
    return f"{_SCHEMA_TYPE_WORDS[kind] if kind else type(value).__name__} ({text})"


def _problem(value: Any, name: str) -> str | None:
    """The first schema violation of ``value`` against ``$defs/name`` as ``key 'k': problem``, else None."""
    import jsonschema

    if name == "metrics_line":
        fast = _fast_line_check()
        if fast is not None and fast(value):
            return None
    if not isinstance(value, dict):
        what = "a metrics line" if name == "metrics_line" else "config.json"
        return f"{what} must be a JSON object, got {_describe(value)}"
    errors = list(_validator(name).iter_errors(value))
    if not errors:
        return None
    err = jsonschema.exceptions.best_match(errors)
    path = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        key = ".".join(filter(None, [path, missing[0] if missing else ""]))
        return f"missing required key '{key}'"
    if err.validator == "type":
        wanted = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        want = " or ".join(_SCHEMA_TYPE_WORDS.get(str(w), str(w)) for w in wanted)
        return f"key '{path}': expected {want}, got {_describe(err.instance)}"
    return f"key '{path}': {err.message}"


@dataclass
class RunLog:
    """A run log read by :func:`read_run_log`.

    records: the metrics lines in file order (CSV rows rebuilt into the JSONL form); config: ``config.json``
    (``{}`` when there is none); format: ``"run_dir"``, ``"jsonl"`` or ``"csv"``; schema_version: ``None`` for
    runs written before versioning; notes: what the reader did besides parsing (e.g. lines dropped), one line each.
    """

    records: list[dict[str, Any]]
    config: dict[str, Any]
    source: Path
    format: str
    schema_version: int | None = None
    notes: list[str] = field(default_factory=list)

    def config_value(self, name: str) -> Any:
        """The option ``name`` of ``config.json``'s ``config`` section (``None`` when absent)."""
        return (self.config.get("config") or {}).get(name)

    def term_lambda(self, key: str) -> list[float | None]:
        """Per record, the ridge lambda at which ``key`` was computed (``None``: unknown).

        From the schema's ``x-lambda`` of ``key`` (math §8), the line's value falling back on ``config``'s.
        Keys without a lambda (``nc1``, ...) raise ``KeyError``.
        """
        where = term_lambda_keys().get(key)
        if where is None:
            raise KeyError(f"{key!r} is not a decomposition term with a lambda; terms: {sorted(term_lambda_keys())}")
        if isinstance(where, float):
            return [where] * len(self.records)
        values = (rec.get(where) if rec.get(where) is not None else self.config_value(where) for rec in self.records)
        return [None if v is None else float(v) for v in values]

    def at_lambda_zero(self, key: str) -> bool:
        """True when the log has records and every record's ``key`` is at lambda = 0 (the laws of math §3.4)."""
        lams = self.term_lambda(key)
        return bool(lams) and all(v == 0.0 for v in lams)


def _number(cell: str) -> Any:
    """A CSV cell as JSON would have it: '' -> None, integers and floats parsed, anything else the string."""
    if cell == "":
        return None
    if re.fullmatch(r"[+-]?\d+", cell):
        return int(cell)
    try:
        value = float(cell)
    except ValueError:
        return {"True": True, "False": False}.get(cell, cell)
    return value


class _BadLine(Exception):
    """A line that cannot be parsed (its message is the problem, without file and line)."""


#: One line of a log as read: ``(line number, the record or None, the parse problem or None)``.
Row = tuple[int, Any, "str | None"]


def _csv_records(path: Path) -> list[Row]:
    """Rows of a CSV: ``key_<i>`` columns of a schema array become the list again (trailing empty cells dropped)."""
    props = run_schema()["$defs"]["metrics_line"]["properties"]
    arrays = {k for k, v in props.items() if "array" in v.get("type", []) and k != "warnings"}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            return []
        if len(set(header)) != len(header):
            dup = sorted({h for h in header if header.count(h) > 1})
            raise RunLogError(f"{path}:1: repeated column(s) {dup}")
        list_cols: dict[str, list[tuple[int, int]]] = {}
        for j, name in enumerate(header):
            m = re.fullmatch(r"(.+)_(\d+)", name)
            if m and m.group(1) in arrays:
                list_cols.setdefault(m.group(1), []).append((int(m.group(2)), j))
        in_list = {j for cols in list_cols.values() for _, j in cols}
        rows: list[Row] = []
        for lineno, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            try:
                rows.append((lineno, _csv_row(header, row, in_list, list_cols), None))
            except _BadLine as exc:
                rows.append((lineno, None, str(exc)))
    return rows


def _csv_row(header: list[str], row: list[str], in_list: set[int],
             list_cols: dict[str, list[tuple[int, int]]]) -> dict[str, Any]:
    if len(row) != len(header):
        raise _BadLine(f"{len(row)} cells but the header has {len(header)} columns")
    rec: dict[str, Any] = {}
    for j, (name, cell) in enumerate(zip(header, row)):
        if j in in_list:
            continue
        if name == "warnings" or (name == "layers" and cell.startswith("{")):  # one cell holding a JSON value
            if cell:
                try:
                    rec[name] = json.loads(cell)
                except json.JSONDecodeError:
                    what = "a JSON array of strings" if name == "warnings" else "a JSON object"
                    raise _BadLine(f"key '{name}': not {what}") from None
            continue
        rec[name] = _number(cell)
    for key, cols in list_cols.items():
        values = [_number(row[j]) for _, j in sorted(cols)]
        while values and values[-1] is None:
            values.pop()
        rec[key] = values or rec.get(key)
    return rec


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunLogError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    problem = _problem(config, "config")
    if problem:
        raise RunLogError(f"{path}: {problem}")
    return config


def _num_classes(record: dict[str, Any], config: dict[str, Any]) -> tuple[int | None, str]:
    """``C`` for one line and where it came from: the length of its ``class_counts``, else ``config.num_classes``."""
    counts = record.get("class_counts")
    if isinstance(counts, list) and counts:
        return len(counts), "the length of class_counts"
    C = (config.get("config") or {}).get("num_classes")
    if isinstance(C, int) and not isinstance(C, bool):
        return C, "config.num_classes"
    return None, ""


def line_problem(record: dict[str, Any], config: dict[str, Any]) -> str | None:
    """The first problem of a schema-valid metrics line that the JSON Schema cannot state, as
    ``key 'k': problem``; ``None`` when there is none.

    * every number inside a list is finite (strict JSON has no ``NaN`` / ``Infinity``);
    * ``snr_singular_values`` holds ``C - 1`` values (math §1; zero-padded on the range of a singular ``Sigma_W``,
      rank_deficient.md §2) or ``min(snr_rank, C - 1)``; ``C`` from ``class_counts``, else ``config.num_classes``.
    """
    for key, value in record.items():
        if isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, float) and not math.isfinite(v):
                    return (f"key '{key}.{i}': {v} is not a finite number (write null for a value that is "
                            "undefined)")
    snr = record.get("snr_singular_values")
    if isinstance(snr, list):
        C, where = _num_classes(record, config)
        if C is not None:
            allowed = [C - 1]
            rank = record.get("snr_rank")
            if isinstance(rank, int) and not isinstance(rank, bool) and rank < C - 1:
                allowed.append(rank)
            if len(snr) not in allowed:
                rank_text = f" or min(snr_rank, C - 1) = {rank}" if len(allowed) > 1 else ""
                return (f"key 'snr_singular_values': {len(snr)} values, expected C - 1 = {C - 1}{rank_text} "
                        f"(C = {C}, {where})")
    return None


def read_run_log(path: str | os.PathLike, *, tolerant: bool = False) -> RunLog:
    """Read and validate a run log: a run directory, a ``.jsonl`` file or a ``.csv`` file.

    ``config.json`` is taken from the log's folder when there is one.  Every line is checked against
    ``$defs/metrics_line`` of :func:`run_schema`, :func:`line_problem` and for a repeated ``epoch``.
    ``tolerant=False``: the first problem raises :class:`RunLogError` (``FILE:LINE: key 'k': problem``);
    ``tolerant=True``: bad lines are dropped and named in :attr:`RunLog.notes` (problems of the file as a
    whole still raise).  A truncated last JSONL line (a killed run) is ignored, with a note.
    """
    path = Path(path)
    notes: list[str] = []
    if path.is_dir():
        fmt, metrics = "run_dir", path / METRICS_FILE
        if not metrics.is_file():
            raise RunLogError(f"{path}: not a run directory (no {METRICS_FILE})")
        folder = path
    elif path.is_file():
        suffix = path.suffix.lower()
        if suffix not in (".jsonl", ".csv"):
            raise RunLogError(f"{path}: unknown log format {suffix or '(no suffix)'!r}; expected a run directory, "
                              "a .jsonl or a .csv file")
        fmt, metrics, folder = suffix[1:], path, path.parent
    else:
        raise RunLogError(f"{path}: no such file or directory")
    config_path = folder / CONFIG_FILE
    if config_path.is_file():
        config = _read_config(config_path)
    else:
        config = {}
        notes.append(f"no {CONFIG_FILE} beside {metrics}: settings unknown")
    if fmt == "csv":
        rows = _csv_records(metrics)
    else:
        lines = metrics.read_text(encoding="utf-8").splitlines()
        rows, truncated = parse_jsonl(lines)
        if truncated:
            notes.append(f"{metrics}:{len(lines)}: truncated last line ignored")
    records: list[dict[str, Any]] = []
    first_line: dict[int, int] = {}
    for lineno, rec, problem in rows:
        problem = problem or _problem(rec, "metrics_line") or line_problem(rec, config)
        if problem is None and rec["epoch"] in first_line:
            problem = (f"key 'epoch': epoch {rec['epoch']} repeated (first at line {first_line[rec['epoch']]}); "
                       "keep one line per epoch")
        if problem:
            message = f"{metrics}:{lineno}: {problem}"
            if not tolerant:
                raise RunLogError(message)
            notes.append(f"{message}: line dropped")
            continue
        first_line[rec["epoch"]] = lineno
        records.append(rec)
    version = config.get("schema_version")
    if version is not None and version > SCHEMA_VERSION:
        raise RunLogError(f"{config_path}: schema_version {version} is newer than this toolkit's ({SCHEMA_VERSION})")
    return RunLog(records, config, path, fmt, version, notes)

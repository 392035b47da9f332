"""Strict JSON for every file the toolkit writes (the one sanitiser of the project).

JSON has no NaN or Infinity: a non-finite float is written as ``null``.  NumPy, JAX and torch
scalars and arrays become Python numbers and lists, tuples become lists, paths and other
objects become strings, dict keys become strings.  ``empirical`` (run logs), ``simulate``
(trajectory summaries) and ``paper_checks`` (claims, comparisons, reports) all write through
:func:`jsonable` / :func:`dumps`, so a value is never written in two different ways.
"""

from __future__ import annotations

import json
import math
from pathlib import PurePath
from typing import Any

__all__ = ["jsonable", "dumps"]


def jsonable(obj: Any, *, unknown: str = "str") -> Any:
    """A JSON-ready copy of ``obj`` (see the module docstring); NaN/Inf become ``None``.

    ``unknown`` says what happens to an object that is none of the above: ``"str"`` writes ``str(obj)``
    (reports), ``"raise"`` raises ``TypeError`` naming its type (run logs, where a stray object is a bug).
    """
    if obj is None or isinstance(obj, (str, int)):  # bool is an int
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v, unknown=unknown) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v, unknown=unknown) for v in obj]
    if isinstance(obj, PurePath):
        return str(obj)
    # NumPy / JAX / torch scalars and arrays (duck-typed: theory imports none of them)
    if hasattr(obj, "tolist") and callable(obj.tolist):
        if hasattr(obj, "detach"):  # torch tensor: off the autograd graph and the device first
            obj = obj.detach().cpu()
        return jsonable(obj.tolist(), unknown=unknown)
    if hasattr(obj, "item") and callable(obj.item):
        return jsonable(obj.item(), unknown=unknown)
    if unknown == "raise":
        raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
    return str(obj)


def dumps(obj: Any, *, indent: int | None = 2, sort_keys: bool = False, unknown: str = "str") -> str:
    """Strict JSON text of :func:`jsonable` ``(obj)`` (``allow_nan=False``: a NaN can never slip through)."""
    return json.dumps(jsonable(obj, unknown=unknown), indent=indent, sort_keys=sort_keys, allow_nan=False)

"""MkDocs hook: render the run format's JSON Schema (``empirical/run_schema.json``) as tables.

The schema is the one definition of the run format; ``docs/run_format.md`` holds the marker
``<!-- run-schema-tables -->`` and this hook replaces it with a table of the ``config.json`` keys and one
of the metrics-line keys (type, the ridge ``x-lambda`` a decomposition term is at, meaning), so the page
cannot drift from the schema.
"""

from __future__ import annotations

import json
from pathlib import Path

MARKER = "<!-- run-schema-tables -->"
SCHEMA = Path(__file__).resolve().parents[2] / "empirical" / "run_schema.json"


def _type(spec: dict) -> str:
    t = spec.get("type", "any")
    types = [t] if isinstance(t, str) else list(t)
    if "array" in types and isinstance(spec.get("items"), dict):
        item = spec["items"].get("type", "any")
        item = item if isinstance(item, str) else " or ".join(x for x in item if x != "null")
        types = [f"array of {item}" if x == "array" else x for x in types]
    return " or ".join(types)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(props: dict, required: set[str], with_lambda: bool) -> list[str]:
    head = "| key | type | " + ("lambda | " if with_lambda else "") + "meaning |"
    rule = "|---|---|" + ("---|" if with_lambda else "") + "---|"
    rows = [head, rule]
    for key, spec in props.items():
        name = f"`{key}`" + (" (required)" if key in required else "")
        lam = spec.get("x-lambda")
        lam = "" if lam is None else (f"`{lam}`" if isinstance(lam, str) else str(lam))
        rows.append(f"| {name} | {_cell(_type(spec))} | " + (f"{lam} | " if with_lambda else "")
                    + f"{_cell(spec.get('description', ''))} |")
    return rows


def render(schema: dict) -> str:
    defs = schema["$defs"]
    cfg = defs["config"]
    line = defs["metrics_line"]
    out = [f"Schema version **{schema.get('x-schema-version', '?')}**.", "",
           "### `config.json`", "", _cell(cfg.get("description", "")), ""]
    out += _table(cfg.get("properties", {}), set(cfg.get("required", [])), with_lambda=False)
    inner = cfg.get("properties", {}).get("config", {}).get("properties")
    if inner:
        out += ["", "Keys of its `config` object:", ""]
        out += _table(inner, set(), with_lambda=False)
    out += ["", "### One line of `metrics.jsonl`", "", _cell(line.get("description", "")), ""]
    out += _table(line.get("properties", {}), set(line.get("required", [])), with_lambda=True)
    return "\n".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 (MkDocs hook signature)
    if MARKER not in markdown:
        return markdown
    if not SCHEMA.is_file():
        return markdown.replace(MARKER, "*(The schema file `empirical/run_schema.json` is not in this checkout.)*")
    return markdown.replace(MARKER, render(json.loads(SCHEMA.read_text(encoding="utf-8"))))

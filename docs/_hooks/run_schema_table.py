"""MkDocs hook: render the run format's JSON Schema (``empirical/run_schema.json``) as tables.

The schema is the one definition of the run format.  ``docs/run_format.md`` holds, between the markers
``<!-- run-schema-tables -->`` and ``<!-- /run-schema-tables -->``, a table of the ``config.json`` keys and one
of the metrics-line keys (type, the ridge ``x-lambda`` a decomposition term is at, meaning), committed so that
the page reads complete on GitHub too.  At build time this hook replaces that region with tables freshly
rendered from the schema (a page with the opening marker only gets them too), and
``python docs/_hooks/run_schema_table.py`` rewrites the committed region after a schema change
(``tests/test_docs.py`` fails while it differs).
"""

from __future__ import annotations

import json
from pathlib import Path

MARKER = "<!-- run-schema-tables -->"
END_MARKER = "<!-- /run-schema-tables -->"
ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "empirical" / "run_schema.json"
PAGE = ROOT / "docs" / "run_format.md"


def _type(spec: dict) -> str:
    t = spec.get("type", "any")
    types = [t] if isinstance(t, str) else list(t)
    if "array" in types and isinstance(spec.get("items"), dict):
        item = spec["items"].get("type", "any")
        item = item if isinstance(item, str) else " or ".join(x for x in item if x != "null")
        types = [f"array of {item}" if x == "array" else x for x in types]
    text = " or ".join(types)
    if "enum" in spec:
        text += ": " + ", ".join("null" if v is None else f"`{v}`" for v in spec["enum"])
    return text


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


def _split(markdown: str) -> tuple[str, str, str] | None:
    """``(before, region, after)`` around the marked region (``region`` is empty with the opening marker only)."""
    start = markdown.find(MARKER)
    if start < 0:
        return None
    body = start + len(MARKER)
    end = markdown.find(END_MARKER, body)
    if end < 0:
        return markdown[:start], "", markdown[body:]
    return markdown[:start], markdown[body:end], markdown[end + len(END_MARKER):]


def committed_tables(markdown: str) -> str | None:
    """The tables committed between the markers (stripped), or ``None`` when the page has no marked region."""
    parts = _split(markdown)
    return None if parts is None else parts[1].strip()


def with_tables(markdown: str, tables: str) -> str:
    """``markdown`` with ``tables`` between the markers (both kept): the form committed to the repository."""
    before, _, after = _split(markdown)
    return f"{before}{MARKER}\n\n{tables}\n\n{END_MARKER}{after}"


def on_page_markdown(markdown: str, page, config, files) -> str:  # MkDocs hook signature
    parts = _split(markdown)
    if parts is None:
        return markdown
    before, _, after = parts
    if not SCHEMA.is_file():
        return before + "*(The schema file `empirical/run_schema.json` is not in this checkout.)*" + after
    return before + render(json.loads(SCHEMA.read_text(encoding="utf-8"))) + after


if __name__ == "__main__":  # rewrite the committed tables of docs/run_format.md from the schema
    tables = render(json.loads(SCHEMA.read_text(encoding="utf-8")))
    PAGE.write_text(with_tables(PAGE.read_text(encoding="utf-8"), tables), encoding="utf-8")
    print(f"wrote the run schema tables into {PAGE}")

"""The repository's documentation: section citations, no references to notes outside the repository,
and the strict MkDocs build (``mkdocs build --strict``)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MATH = ROOT / "docs" / "math.md"
SCHEMA = ROOT / "empirical" / "run_schema.json"

#: ``## 3.4 Title``, ``### 3.3b Title``, ``## 0. Title`` (an optional dot after the number).
HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)?[a-z]?)\.?\s", re.MULTILINE)
#: ``math §3.4``, and the sections chained after it: ``math §6.3 and §6.4``, ``math §6.1-§6.2``, ``§3.1, §3.2``.
CITATION = re.compile(r"math\s*§\s*\d+(?:\.\d+)?[a-z]?(?:\s*(?:,|and|or|/|-|–|to)\s*§\s*\d+(?:\.\d+)?[a-z]?)*")
SECTION = re.compile(r"§\s*(\d+(?:\.\d+)?[a-z]?)")
#: links into the write-up's anchors, e.g. ``math.md#sec-3.4``.
ANCHOR_LINK = re.compile(r"math\.md#([\w.\-]+)")

#: The numbering the code cites (it must not change under the docstrings' feet).
REQUIRED_SECTIONS = {
    "0", "1", "2", "2.1", "2.2", "3", "3.1", "3.2", "3.3", "3.3b", "3.4", "4", "5", "5.1", "5.2", "5.3",
    "6", "6.1", "6.2", "6.3", "6.4", "7", "7.1", "7.2", "7.3", "8", "9", "10",
}

#: Team notes kept outside the repository (built from parts so that this file does not cite them).
OUTSIDE_NOTES = ("paper" + "_spec.md", "de" + "sign.md")
SKIP_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".pdf", ".gz", ".npz", ".npy", ".pt", ".pkl", ".ico"}


def repository_files() -> list[Path]:
    """Files of the repository: tracked plus untracked-but-not-ignored (``git ls-files``), else a walk."""
    if shutil.which("git") and (ROOT / ".git").exists():
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, check=True).stdout.decode()
        files = [ROOT / f for f in out.split("\0") if f]
    else:  # a source tree without git metadata
        skip = {".git", ".venv", "site", "build", "runs", "reports", "__pycache__", ".pytest_cache"}
        files = [p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]
    # site/ is the output of `make docs` (generated from these sources), not a source
    return [f for f in files if f.is_file() and f.suffix.lower() not in SKIP_SUFFIXES
            and f.relative_to(ROOT).parts[0] != "site"]


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def math_sections() -> set[str]:
    return set(HEADING.findall(MATH.read_text(encoding="utf-8")))


def citations(text: str) -> list[tuple[int, str]]:
    """``(line, section)`` for every section cited as ``math §X.Y`` (chained citations included)."""
    out = []
    for m in CITATION.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        out += [(line, s) for s in SECTION.findall(m.group(0))]
    return out


def test_citation_parser():
    text = "see math §3.4, math §6.3 and §6.4; math §6.1-§6.2 (and math §3.3b).\nmath §9 item 7; §2 alone"
    assert citations(text) == [(1, "3.4"), (1, "6.3"), (1, "6.4"), (1, "6.1"), (1, "6.2"), (1, "3.3b"), (2, "9")]


def test_math_headings_carry_the_cited_numbering():
    found = math_sections()
    assert REQUIRED_SECTIONS <= found, f"docs/math.md lacks sections {sorted(REQUIRED_SECTIONS - found)}"


def test_every_math_citation_names_a_heading_of_math_md():
    sections = math_sections()
    anchors = {f"sec-{s}" for s in sections}
    bad, seen = [], 0
    for path in repository_files():
        if path.suffix not in (".py", ".md", ".json") or path == Path(__file__).resolve():
            continue
        text = text_of(path)
        if text is None:
            continue
        rel = path.relative_to(ROOT)
        for line, sec in citations(text):
            seen += 1
            if sec not in sections:
                bad.append(f"{rel}:{line}: math §{sec}")
        for m in ANCHOR_LINK.finditer(text):
            if m.group(1) not in anchors:
                bad.append(f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: math.md#{m.group(1)}")
    assert not bad, "citations of sections that docs/math.md does not have:\n" + "\n".join(bad)
    # the certificate (theory/symbolic/report.py) cites the write-up, so zero citations means the parser broke
    assert seen > 0


def lines_matching(pattern: str) -> list[str]:
    """``file:line: text`` of every line of the repository's text files (this test file excepted) matching
    the regular expression ``pattern``."""
    bad = []
    for path in repository_files():
        text = text_of(path)
        if text is None or path == Path(__file__).resolve():
            continue
        bad += [f"{path.relative_to(ROOT)}:{k}: {line.strip()[:80]}"
                for k, line in enumerate(text.splitlines(), 1) if re.search(pattern, line)]
    return bad


def test_no_file_cites_notes_outside_the_repository():
    bad = lines_matching("|".join(rf"(?<![\w-]){re.escape(name)}" for name in OUTSIDE_NOTES))
    assert not bad, ("files cite notes that are not in the repository (cite docs/math.md as `math §X.Y`):\n"
                     + "\n".join(bad))


def test_no_file_cites_sections_of_an_unnamed_spec():
    """Sections are cited as ``math §X.Y`` (docs/math.md); a bare ``spec 3.4`` or ``spec section 1`` names a
    document the repository does not hold."""
    bad = lines_matching(r"\b[Ss]pec(?:[- ]| section )\d")
    assert not bad, "cite docs/math.md as `math §X.Y`, not `spec X.Y`:\n" + "\n".join(bad)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package is missing
        return False


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The documentation site, built once with ``mkdocs build --strict`` (skips without the docs extra)."""
    missing = [m for m in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "pymdownx") if not _installed(m)]
    if missing:
        pytest.skip(f"documentation tools not installed ({', '.join(missing)}): pip install -e '.[docs]'")
    site = tmp_path_factory.mktemp("docs") / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return site


def test_strict_mkdocs_build(site):
    # the pages hold what they promise: the write-up's section anchors and the API objects from docstrings
    math_html = (site / "math" / "index.html").read_text(encoding="utf-8")
    for sec in ("3.3b", "3.4", "6.3", "8"):
        assert f'id="sec-{sec}"' in math_html
    # the formulas are arithmatex spans typeset by the KaTeX shipped with the site: nothing comes from the network
    assert math_html.count('class="arithmatex"') > 200
    scripts = re.findall(r'<script[^>]*\bsrc="([^"]+)"', math_html)
    styles = [re.search(r'\bhref="([^"]+)"', tag).group(1) for tag in re.findall(r"<link[^>]*>", math_html)
              if 'rel="stylesheet"' in tag]
    assert "../vendor/katex/katex.min.js" in scripts and "../vendor/katex/katex.min.css" in styles
    assert not [u for u in scripts + styles if "//" in u], scripts + styles
    css = (site / "vendor" / "katex" / "katex.min.css").read_text(encoding="utf-8")
    fonts = set(re.findall(r"url\((fonts/[\w-]+\.woff2)\)", css))
    assert len(fonts) == 20 and all((site / "vendor" / "katex" / f).is_file() for f in fonts)
    api = {name: (site / "api" / name / "index.html").read_text(encoding="utf-8")
           for name in ("theory", "simulate", "empirical", "paper_checks")}
    for page, objects in {"theory": ("theory.decompose", "theory.class_stats", "theory.laws.numeric"),
                          "simulate": ("simulate.integrate_features", "simulate.closed_form_omega"),
                          "empirical": ("empirical.measurement.measure", "empirical.runs.read_metrics"),
                          "paper_checks": ("paper_checks.fit_snr_dynamics", "paper_checks.compare_run")}.items():
        for obj in objects:
            assert f'id="{obj}"' in api[page], f"{obj} missing from the {page} API page"
    run_format = (site / "run_format" / "index.html").read_text(encoding="utf-8")
    if SCHEMA.is_file():  # the page's tables are generated from the schema: every key is there
        schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
        for key in schema["$defs"]["metrics_line"]["properties"]:
            assert f"<code>{key}</code>" in run_format, f"run format page lacks the metrics key {key}"
    else:
        assert "is not in this checkout" in run_format


@pytest.mark.parametrize("page", ["math", "rank_deficient"])
def test_katex_typesets_every_formula(site, page):
    """Opened in headless Chromium, KaTeX typesets every formula of the page and rejects none (a TeX error would show
    as a red ``katex-error`` span)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (Debian package `chromium`): the formulas' typesetting is not checked")
    page = site / page / "index.html"
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    formulas = dom.count('class="arithmatex"')
    assert formulas > 50, f"{page}: {formulas} formulas"
    assert dom.count('class="katex"') >= formulas and "katex-error" not in dom, page


def _hook():
    spec = importlib.util.spec_from_file_location("run_schema_table", ROOT / "docs" / "_hooks" / "run_schema_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_schema_tables_render_every_key_with_its_lambda():
    hook = _hook()
    schema = {
        "x-schema-version": 3,
        "$defs": {
            "config": {"description": "config", "properties": {"config": {"type": "object", "properties": {
                "per_class": {"type": ["integer", "null"], "description": "N"}}}}},
            "metrics_line": {"description": "line", "required": ["epoch"], "properties": {
                "epoch": {"type": "integer", "description": "measured epoch"},
                "l_nc1_lam0": {"type": ["number", "null"], "x-lambda": 0, "description": "L_NC1 at 0"},
                "l_perp": {"type": ["number", "null"], "x-lambda": "lam", "description": "a | b"},
                "snr_singular_values": {"type": ["array", "null"], "items": {"type": ["number", "null"]}}}},
        },
    }
    page = hook.on_page_markdown(f"# t\n\n{hook.MARKER}\n", None, None, None)
    assert hook.MARKER not in page
    md = hook.render(schema)
    assert "Schema version **3**." in md
    assert "| `epoch` (required) | integer |  | measured epoch |" in md
    assert "| `l_nc1_lam0` | number or null | 0 | L_NC1 at 0 |" in md
    assert "| `l_perp` | number or null | `lam` | a \\| b |" in md  # a '|' in a description stays in its cell
    assert "| `snr_singular_values` | array of number or null |" in md
    assert "| `per_class` | integer or null | N |" in md


def test_committed_run_format_tables_match_the_schema():
    """docs/run_format.md carries the generated tables (readable without a docs build); they must equal what
    empirical/run_schema.json renders now.  Fix: python docs/_hooks/run_schema_table.py"""
    hook = _hook()
    page = (ROOT / "docs" / "run_format.md").read_text(encoding="utf-8")
    committed = hook.committed_tables(page)
    assert committed, "docs/run_format.md lacks the marked tables region"
    fresh = hook.render(json.loads(SCHEMA.read_text(encoding="utf-8")))
    assert committed == fresh.strip(), ("run_format.md's tables differ from the schema: "
                                        "run python docs/_hooks/run_schema_table.py")
    # the build replaces the committed region (markers and all) by the fresh tables, once
    built = hook.on_page_markdown(page, None, None, None)
    assert hook.MARKER not in built and hook.END_MARKER not in built and built.count("### `config.json`") == 1
    # a stale region is what the test above catches
    stale = hook.with_tables(page, "old tables")
    assert hook.committed_tables(stale) == "old tables" and hook.with_tables(stale, fresh) == page


#: The write-up's pages whose formulas are LaTeX (``$...$`` inline, ``$$...$$`` displayed).
LATEX_PAGES = ("math.md", "rank_deficient.md")
#: A plain-text formula name (the docstrings' spelling) that must not stand in a code span of those pages.
PLAIN_FORMULA = re.compile(r"\b(Sigma_[WBT]|Mbar|omega_j|mu_[cG]|lambda|kappa|W~|L_NC1|L_perp)\b")
#: What makes a code span code: a call, an attribute, an option, a string, a key assignment.
CODE_LIKE = re.compile(r"\w\(|\.\w|--|[\"']|=\S")


def code_spans(text: str) -> list[tuple[int, str]]:
    """``(line, span)`` of the inline code spans outside fenced blocks."""
    spans, fenced = [], False
    for k, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            spans += [(k, m) for m in re.findall(r"`([^`\n]+)`", line)]
    return spans


def test_latex_pages_keep_formulas_out_of_code_spans():
    """Formulas are LaTeX, so they read as math on the site and on GitHub; code spans hold names from the code."""
    bad = []
    for name in LATEX_PAGES:
        text = (ROOT / "docs" / name).read_text(encoding="utf-8")
        bad += [f"docs/{name}:{line}: `{span}`" for line, span in code_spans(text)
                if PLAIN_FORMULA.search(span) and not CODE_LIKE.search(span)]
    assert not bad, "plain-text formulas in code spans (write them as $...$):\n" + "\n".join(bad)
    # the checker is not vacuous
    assert PLAIN_FORMULA.search("Sigma_W^{-1/2} Mbar") and not CODE_LIKE.search("Sigma_W^{-1/2} Mbar")
    assert CODE_LIKE.search("theory.laws.constants(N, C, kappa)")


def test_latex_pages_balance_their_dollars():
    """Every line outside code has an even number of ``$`` (an odd one would swallow the rest of the paragraph)."""
    bad = []
    for name in LATEX_PAGES:
        fenced = False
        for k, line in enumerate((ROOT / "docs" / name).read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
            text = re.sub(r"`[^`\n]*`", "", line.replace(r"\$", ""))
            if not fenced and text.count("$") % 2:
                bad.append(f"docs/{name}:{k}: {line.strip()[:80]}")
    assert not bad, "unbalanced $ in:\n" + "\n".join(bad)

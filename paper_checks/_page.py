"""The reports' pages: Jinja2 templates (``paper_checks/templates/``) and what every page shows the same way.

One base template (``base.html.j2``) holds the page layout and its style; the run report (``run.*.j2``) and the
grid report (``grid.*.j2``) extend it and share the sections of ``_sections.*.j2`` (verdict, figures, the claims
not supported, the rest folded by group, the set-up).  The HTML pages stay self-contained: figures are inlined
as base64 PNGs and nothing is fetched from elsewhere.  The Markdown twin of each page (``*.md.j2``) keeps the
same order.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

__all__ = ["FIGURE_CAPTIONS", "KEY_FIGURES", "caption_of", "figure_views", "md_cell", "render"]

#: What to look at in each figure the toolkit draws (file name -> caption).
FIGURE_CAPTIONS = {
    "compare_snr.png": (
        "SNR singular values omega_j against training time: observed (dots), the closed-form fit (lines) and the "
        "forward ODE from an early epoch (dashed). On the theory they coincide; where the dots leave the lines, "
        "the central-path dynamics stop describing the run (math §6.3, §7.2)."),
    "compare_snr_ratio.png": (
        "Spread of the SNR singular values, max_j omega_j / min_j omega_j - 1: observed (dots), closed-form fit "
        "(line), forward ODE (dashed). The theory has it fall toward 0, the simplex ETF (math §6.4)."),
    "training_nc_metrics.png": (
        "Neural-collapse metrics NC1-NC4 and the training and test error against epoch (log-log); the dotted line "
        "marks the start of the terminal phase. Through the terminal phase every NC metric should keep falling "
        "(math §7.2)."),
    "training_decomposition.png": (
        "Left: the MSE loss and its terms L_NC1, L_NC2/3 and L_perp against epoch. Right: L_perp relative to "
        "L_NC1 + L_NC2/3 and the classifier's distance to the least-squares one; both small means training "
        "stays near the central path (math §3.2, §4)."),
    "simulation_snr.png": (
        "Simulated flow. Left: the ODE's omega_j(t) (lines) lie on their closed form (black dotted) and grow like "
        "(t/c3)^(1/4) (red dashed); the retraction flow (green) departs from it. Right: max/min - 1 falls like "
        "1/t where the dotted product levels off (math §6.4)."),
    "grid_mse.png": (
        "MSE runs: a row per dataset, a column per quantity, a line per network, against epoch. The NC metrics "
        "should fall through the terminal phase, as in the paper's figures (math §7.3)."),
    "grid_ce.png": (
        "Cross-entropy runs, in the layout of the MSE figure: set them side by side; the paper finds the same "
        "collapse under both losses (math §7.3)."),
}

#: The compared quantities of :func:`paper_checks.compare.write_compare_figures` (``compare_<key>.png``).
_QUANTITY_WORDS = {"l_nc1": "L_NC1", "l_nc23": "L_NC2/3", "l_central": "the central-path loss",
                   "nc1": "NC1 (renormalised)"}

#: The figures shown open, in this order; the others are folded under "More figures".
KEY_FIGURES = ("compare_snr.png", "training_nc_metrics.png", "training_decomposition.png", "simulation_snr.png",
               "grid_mse.png", "grid_ce.png")


def caption_of(path: str | Path) -> str:
    """The caption of a figure file: what to look at in it (a generic sentence for a figure nobody registered)."""
    name = Path(path).name
    if name in FIGURE_CAPTIONS:
        return FIGURE_CAPTIONS[name]
    stem = Path(name).stem
    if stem.startswith("compare_") and stem[len("compare_"):] in _QUANTITY_WORDS:
        what = _QUANTITY_WORDS[stem[len("compare_"):]]
        return (f"{what} measured (dots) against the theory at the fitted omega (line), at the measured omega "
                f"(dotted) and forward from an early epoch (dashed). Dotted on the dots tests the closed form; "
                f"line and dashed on the dots test the dynamics (math §3.4, §5.1).")
    return f"Figure '{stem.replace('_', ' ')}' (no caption registered for it)."


def figure_views(figures: Sequence[str | Path], out_dir: Path) -> list[dict[str, Any]]:
    """One dict per existing figure: ``name``, ``caption``, ``rel`` (its path for Markdown), ``src`` (a data
    URI), ``key`` (shown open); key figures first, in :data:`KEY_FIGURES` order."""
    views = []
    for f in figures:
        f = Path(f)
        if not f.is_file():
            continue
        try:
            rel = f.relative_to(out_dir).as_posix()
        except ValueError:
            rel = f.as_posix()
        views.append({"name": f.name, "caption": caption_of(f), "rel": rel, "key": f.name in KEY_FIGURES,
                      "src": "data:image/png;base64," + base64.b64encode(f.read_bytes()).decode("ascii")})
    order = {name: i for i, name in enumerate(KEY_FIGURES)}
    return sorted(views, key=lambda v: order.get(v["name"], len(order)))  # stable: the others keep their order


def md_cell(value: Any) -> str:
    """A value as one Markdown table cell (``|`` escaped, on one line)."""
    return str(value).replace("|", "\\|").replace("\n", " ")


@cache
def _environment(markdown: bool) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("paper_checks", "templates"), autoescape=not markdown,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["md"] = md_cell
    return env


def render(template: str, **view: Any) -> str:
    """Render ``templates/<template>`` with ``view``; HTML templates (``*.html.j2``) escape every value, Markdown
    ones (``*.md.j2``) keep at most one blank line in a row."""
    markdown = template.endswith(".md.j2")
    text = _environment(markdown).get_template(template).render(**view)
    return re.sub(r"\n{3,}", "\n\n", text) if markdown else text  # the macros' blank lines, once

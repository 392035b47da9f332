"""Markdown rendering of the symbolic certificate (``python -m theory``).

The report lists, per spec section, every derivation step with its result (LaTeX where the step
produces a formula) and PASS/FAIL, says which steps are proved for all sizes and which at concrete
sizes, and ends with a table of every identity.
"""

from __future__ import annotations

import platform
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from theory.symbolic import Certificate

__all__ = ["render_markdown", "SCOPE"]

#: What is proved in general and what by size (kept next to the renderer so the report says it).
SCOPE = """\
**Scope: what is proved for all sizes and what at concrete sizes.**

* *general* (any `C`, `p`, `n`, class counts, symbolic `lambda`): proved in a size-free matrix algebra
  built on SymPy `MatrixSymbol` expressions (`theory/symbolic/traces.py`: trace cyclicity,
  symmetric letters, and the stated rewriting rules `E Y^T = 0`, `E E^T = n Sigma~_W`, `Y Y^T = n Pi`,
  `X X^-1 = I`, `Tr(Pi) = 1`, and `T T^T = I` for orthogonal maps). Covered this way: spec 3.3 steps 1
  (loss = quadratic with `A`, `B`), 3 (completing the square), 4 (Huygens split), 5 (combination) and
  the normal equations, giving `L - (L_NC1 + L_NC2/3 + L_perp) = tr((W~ - V)(VA - B)^T)` for every `V`;
  step 6 (augmented = non-augmented via the Schur complement of `1 + lambda`); the invariance
  structure of spec 5.1; and the scalar calculus of spec 6.3/6.4 (integration, constants, conventions,
  SNR scaling, limits), which is exact in symbolic `N`, `C`, `kappa`.
* *symbolic size*: concrete `C in {2, 3}`, `p in {1, 2}`, 2-6 samples, balanced and imbalanced counts,
  with and without bias, **every feature entry a symbol**, symbolic classifier and symbolic `lambda`
  (spec 3.1 steps 1-2, Huygens, the factorised residual, the augmented/non-augmented equality, the
  `lambda = 0` closed form). The single-shot certificate with the least-squares classifier substituted
  in closed form is run fully symbolically where it takes about a second (`p + bias <= 2`, except
  `C = 3, p = 2`); `--exhaustive` adds `C = 2, p = 2` with bias and `C = 3, p = 2` without
  (10-60 s each). Spec 3.4 and 6.1-6.2 are derived on the renormalised manifold at `C = 3, 4` with
  symbolic singular values (WLOG by the invariance of 5.1 and a symbolic rotation of the basis of `1^perp`).
* *rational size*: exact random rational features with symbolic classifier and `lambda` (e.g. the
  single-shot certificate at `C = 3, p = 2` with bias and at `C = 4, p = 3`), or with symbolic maps
  `A`, `c` (invariance). Used where fully symbolic entries are too slow.
* *numeric*: `theory.laws` lambdified functions (numpy and jax, float64) against these derivations.
"""


def _esc(s: str) -> str:
    return str(s).replace("|", "\\|")


def render_markdown(cert: "Certificate") -> str:
    """Render a certificate as Markdown with LaTeX (``$$ ... $$`` blocks)."""
    from theory.symbolic import SECTION_TITLES  # noqa: PLC0415

    n_pass = sum(c["passed"] for c in cert.checks)
    lines = [
        "# Symbolic certificate: Neural Collapse under MSE loss",
        "",
        "Han, Papyan & Donoho, *Neural Collapse Under MSE Loss: Proximity to and Dynamics on the Central Path* "
        "(ICLR 2022). Section numbers refer to `paper_spec.md`.",
        "",
        f"**Result: {'PASS' if cert.passed else 'FAIL'}** -- {n_pass}/{len(cert.checks)} identities verified "
        f"in {cert.seconds:.1f} s ({'quick' if cert.quick else 'full'} run; SymPy, Python {platform.python_version()}).",
        "",
        SCOPE,
    ]
    groups: "OrderedDict[str, list[dict]]" = OrderedDict()
    for c in cert.checks:
        groups.setdefault(c["section"], []).append(c)
    for sec, checks in groups.items():
        title = SECTION_TITLES.get(sec, "")
        head = f"## {sec}. {title}" if sec[0].isdigit() else f"## {title or sec}"
        lines += ["", head, ""]
        for c in checks:
            mark = "PASS" if c["passed"] else "**FAIL**"
            lines.append(f"- {mark} -- **{c['name']}** ({c.get('kind', '')}, {c['seconds']:.2f} s)")
            if c.get("statement"):
                lines.append(f"  - claim: `{c['statement']}`")
            lines.append(f"  - result: {c['detail']}")
            if c.get("latex"):
                lines += ["", f"  $$ {c['latex']} $$", ""]
    lines += ["", "## Table of identities", "", "| # | section | identity | kind | result | seconds |",
              "|---|---|---|---|---|---|"]
    for i, c in enumerate(cert.checks, 1):
        lines.append(f"| {i} | {c['section']} | {_esc(c['name'])} | {c.get('kind', '')} | "
                     f"{'PASS' if c['passed'] else 'FAIL'} | {c['seconds']:.2f} |")
    lines.append("")
    return "\n".join(lines)

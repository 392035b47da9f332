"""Markdown rendering of the symbolic certificate (``python -m theory``): per section of ``docs/math.md``, every
derivation step with its result (LaTeX where it derives a formula) and PASS/FAIL, then a table of every identity.
"""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - the certificate container calls this module (no import cycle at run time)
    from ._core import Certificate

__all__ = ["render_markdown", "SCOPE", "DERIVATIONS", "SECTION_TITLES"]

#: Titles of the math sections the checks refer to (``docs/math.md``).
SECTION_TITLES: dict[str, str] = {
    "3.1": "Least-squares classifier (normal equations, augmented vs non-augmented)",
    "3.3": "Decomposition L = L_NC1 + L_NC2/3 + L_perp (balanced and imbalanced, 3.3b)",
    "5.1": "Invariance of the least-squares fit",
    "3.4": "Central-path loss as a function of the SNR singular values",
    "3.5": "The decomposition of a least-squares linear probe at any layer",
    "6.1": "Renormalised (projected) gradient flow on the manifold {Sigma_W = I, mu_G = 0}",
    "6.2": "Reduction of the flow to the SNR singular values",
    "6.3": "Closed-form solution and time-scale conventions",
    "6.4": "Asymptotics of the closed form",
    "rank": "Rank-deficient features: SNR on the support of Sigma_W, minimum-norm least squares "
            "(docs/rank_deficient.md)",
    "laws": "theory.laws numerics: lambdified functions and constants against its certified expressions",
}

#: What is proved in general and what by size (kept next to the renderer so the report says it).
SCOPE = """\
**Scope: what is proved for all sizes and what at concrete sizes.**

* *general* (any `C`, `p`, `n`, class counts, symbolic `lambda`): proved in a size-free matrix algebra
  built on SymPy `MatrixSymbol` expressions (`theory/symbolic/traces.py`: trace cyclicity,
  symmetric letters, and the stated rewriting rules `E Y^T = 0`, `E E^T = n Sigma~_W`, `Y Y^T = n Pi`,
  `X X^-1 = I`, `Tr(Pi) = 1`, and `T T^T = I` for orthogonal maps). Covered this way: math §3.3 steps 1
  (loss = quadratic with `A`, `B`), 3 (completing the square), 4 (Huygens split), 5 (combination) and
  the normal equations, giving `L - (L_NC1 + L_NC2/3 + L_perp) = tr((W~ - V)(VA - B)^T)` for every `V`;
  step 6 (augmented = non-augmented via the Schur complement of `1 + lambda`); the invariance
  structure of math §5.1; and the scalar calculus of math §6.3 and §6.4 (integration, constants, conventions,
  SNR scaling, limits), which is exact in symbolic `N`, `C`, `kappa`.
* *symbolic size*: concrete `C in {2, 3}`, `p in {1, 2}`, 2-6 samples, balanced and imbalanced counts,
  with and without bias, **every feature entry a symbol**, symbolic classifier and symbolic `lambda`
  (math §3.1 steps 1-2, Huygens, the factorised residual, the augmented/non-augmented equality, the
  `lambda = 0` closed form). The single-shot certificate with the least-squares classifier substituted
  in closed form is run fully symbolically where it takes about a second (`p + bias <= 2`, except
  `C = 3, p = 2`); `--exhaustive` adds `C = 2, p = 2` with bias and `C = 3, p = 2` without
  (10-60 s each). The results of math §3.4 and §6.1-§6.2 are derived on the renormalised manifold at `C = 3, 4` with
  symbolic singular values (WLOG by the invariance of 5.1 and a symbolic rotation of the basis of `1^perp`).
* *rational size*: exact random rational features with symbolic classifier and `lambda` (e.g. the
  single-shot certificate at `C = 3, p = 2` with bias and at `C = 4, p = 3`), or with symbolic maps
  `A`, `c` (invariance). Used where fully symbolic entries are too slow.
* *numeric*: `theory.laws`' lambdified functions (numpy and jax, float64) and `constants()` against its own
  SymPy expressions, at sample points.

**What certifies `theory.laws`.** The scalar laws the simulator integrates are the SymPy expressions of
`theory/laws.py`, not retyped here: math §3.4 and §6.1-§6.4 below check them against the normal equations, the
manifold projection, the SVD and the statements of ``docs/math.md``; the last section checks its numerics.
"""


#: The derivation of each section, step by step (LaTeX); the checks below each intro verify every step.
DERIVATIONS: dict[str, str] = {
    "rank": r"""Rank-deficient features (math §5.3, docs/rank_deficient.md).  With $\Sigma_W = U_r\Lambda_rU_r^T$ the
SNR on the support is $\Lambda_r^{-1/2}U_r^T\bar M$; when $\bar M\subset\operatorname{range}\Sigma_W$ (all features in
$\mu_G + \operatorname{range}\Sigma_W$, e.g. dead ReLU units) $\bar M^T\Sigma_W^+\bar M$ equals the reduced features'
$\bar M^T\Sigma_W^{-1}\bar M$, so the closed forms of math §3.4 hold with pseudo-inverses.  With a singular
$A = \tfrac1n\tilde H\tilde H^T$ the minimum-norm $\tilde W = BA^+$ solves $\tilde WA = B$ (the rows of $B$ lie in
$\operatorname{range}A$), so completing the square and $L = L_{NC1} + L_{NC2/3} + L_\perp$ stay exact.""",
    "3.1": r"""Loss (math §1) with augmented features $\tilde h = [h;1]$, $\tilde W = [W\ b]$:
$$ L(\tilde W) = \frac{1}{2n}\sum_{c,i}\|\tilde W\tilde h_{i,c} - e_c\|^2 + \frac\lambda2\|\tilde W\|_F^2
 = \tfrac12\operatorname{tr}(\tilde W A\tilde W^T) - \operatorname{tr}(\tilde W B^T) + \tfrac12, $$
$$ A = \tfrac1n\tilde H\tilde H^T + \lambda I = \tilde\Sigma_T + \tilde\mu_G\tilde\mu_G^T + \lambda I,\qquad
   B = \tfrac1n Y\tilde H^T = [\pi_c\tilde\mu_c^T]_c \ (= \tfrac1C\tilde M^T \text{ balanced}). $$
Step 2: $\nabla_{\tilde W}L = \tilde W A - B$, Hessian $A$ per output row, so the normal equations
$\tilde W A = B$ give $\tilde W_{LS} = BA^{-1}$.
Step 6: with $K = \Sigma_T + \frac{\lambda}{1+\lambda}\mu_G\mu_G^T + \lambda I$
(the Schur complement of $1+\lambda$ in $A$),
$$ W_{LS} = \Big(\Pi M^T - \tfrac{1}{1+\lambda}\pi\mu_G^T\Big)K^{-1},\qquad
b_{LS} = \frac{\pi - W_{LS}\mu_G}{1+\lambda}, $$
and at $\lambda = 0$: $W_{LS} = \Pi\bar M^T\Sigma_T^{-1}$, $b_{LS} = \pi - W_{LS}\mu_G$, $1^TW_{LS} = 0$.""",
    "3.3": r"""Write $\tilde H = \tilde M Y + E$ (class means plus within-class deviations; $EY^T = 0$).
Step 4 (Huygens): for every $\tilde W$,
$$ L(\tilde W) = \tfrac12\operatorname{tr}\big(\tilde W(\tilde\Sigma_W + \lambda I)\tilde W^T\big)
 + \tfrac12\sum_c\pi_c\|\tilde W\tilde\mu_c - e_c\|^2 . $$
Step 3 (complete the square, $A = A^T$): for every $V$,
$$ L(\tilde W) = L(V) + \tfrac12\operatorname{tr}\big((\tilde W - V)A(\tilde W - V)^T\big)
 + \operatorname{tr}\big((\tilde W - V)(VA - B)^T\big). $$
Step 5: at $V = \tilde W_{LS}$ the last term vanishes and step 4 applied to $L(V)$ gives
$$ L = \underbrace{\tfrac12\operatorname{tr}\big(\tilde W_{LS}
   (\tilde\Sigma_W + \lambda I)\tilde W_{LS}^T\big)}_{L_{NC1}}
 + \underbrace{\tfrac12\sum_c\pi_c\|\tilde W_{LS}\tilde\mu_c - e_c\|^2}_{L_{NC2/3}}
 + \underbrace{\tfrac12\operatorname{tr}\big((\tilde W - \tilde W_{LS})
   A(\tilde W - \tilde W_{LS})^T\big)}_{L^\perp_{LS}} $$
exactly, for any class counts (3.3b).
The single-shot certificates substitute $\tilde W_{LS} = B\operatorname{adj}(A)/\det A$
and show that $\det(A)^2\,(L - L_{NC1} - L_{NC2/3} - L^\perp_{LS})$ is the zero polynomial.""",
    "5.1": r"""With $T = \begin{bmatrix}A & c\\ 0 & 1\end{bmatrix}$, $\tilde H' = T\tilde H$: at $\lambda = 0$,
$A' = TAT^T$, $B' = BT^T$, so $\tilde W_{LS}' = \tilde W_{LS}T^{-1}$, i.e. $W_{LS}' = W_{LS}A^{-1}$,
$b_{LS}' = b_{LS} - W_{LS}A^{-1}c$, and the fitted outputs are unchanged. At $\lambda > 0$,
$A' = T(A - \lambda I)T^T + \lambda I$, which equals $TAT^T$ iff $TT^T = I$.""",
    "3.4": r"""On the renormalised manifold ($\Sigma_W = I$, $\mu_G = 0$, balanced, $\lambda = 0$) take
$\bar M = \Omega V^T$ ($V$: Helmert basis of $1^\perp$). Then $\Sigma_T = I + \Omega^2/C$,
$W_{LS}\bar M = V\operatorname{diag}\big(\frac{\omega_j^2}{C+\omega_j^2}\big)V^T$, $b_{LS} = \frac1C 1$ and
$$ L_{NC1} = \frac12\sum_j\frac{\omega_j^2}{(C+\omega_j^2)^2},\quad
   L_{NC2/3} = \frac C2\sum_j\frac{1}{(C+\omega_j^2)^2},\quad
   L_{central} = \frac12\sum_j\frac{1}{C+\omega_j^2}
   = \frac{1}{2C}\big(C - 1 - \operatorname{Tr}(\Sigma_T^{-1}\Sigma_B)\big). $$
The right-hand sides are `theory.laws.L_NC1`, `L_NC23`, `L_CENTRAL` (and `NC1_RENORMALIZED` for
$\tfrac1C\operatorname{Tr}(\Sigma_W\Sigma_B^+) = \sum_j\omega_j^{-2}$) summed over $j$; the left-hand sides are computed
from the normal equations.""",
    "6.1": r"""Danskin: $\nabla_{h_{i,c}}L_{central} = \frac1n W_{LS}^T(W_{LS}h_{i,c} + b_{LS} - e_c)
 = \underbrace{\tfrac1n W_{LS}^T(W_{LS}\mu_c + b_{LS} - e_c)}_{g_c\ (\text{tangent})}
 + \underbrace{S(h_{i,c} - \mu_c)}_{\text{normal}},\ S = \tfrac1n W_{LS}^TW_{LS} = S^T$.
The projection keeps $g_c$, so only the means move: $\dot M = -\kappa[g_c]_c = \frac{\kappa}{N}(CI + MM^T)^{-2}M$.""",
    "6.2": r"""$(CI + MM^T)^{-2}M = U\operatorname{diag}\big(\omega_j/(C+\omega_j^2)^2\big)V^T$
    keeps the singular vectors, so
$\dot\omega_j = \frac{\kappa}{N}\frac{\omega_j}{(C+\omega_j^2)^2}
= -\frac\kappa N\frac{\partial L_{central}}{\partial\omega_j}$;
the right-hand side compared is `theory.laws.expressions()["omega_rhs"]`.""",
    "6.3": r"""Separating variables, $\int\frac N\kappa\frac{(C+\omega^2)^2}{\omega}d\omega$ gives
$c_1\log\omega + c_2\omega^2 + c_3\omega^4 = a_j + t$ with $(c_1,c_2,c_3) = \frac N\kappa(C^2, C, \tfrac14)$.
Retraction (Euler step on all features, then re-whitening $\Sigma_W^{-1/2} = (I - dt\,S)^{-1}$):
$\dot M = SM - [g_c]$, $\dot\omega = \frac1n\frac{\omega}{C+\omega^2}$, $n(C\log\omega + \omega^2/2) = a + t$.
The closed form, constants, conventions, per-class constants and retraction law checked are those of `theory.laws`.""",
    "6.4": r"""From the closed form: $\omega_j \sim (t/c_3)^{1/4}$;
    $\omega_i^2 - \omega_j^2 \sim \frac{a_i - a_j}{2c_3\omega^2}$, so
$\max/\min - 1 = O(1/t)$; $\mathrm{NC1} = \sum_j\omega_j^{-2} \sim (C-1)\sqrt{c_3/t}$.""",
    "laws": r"""The expressions of `theory.laws` are certified in sections 3.4 and 6.1-6.4 above (against the normal
equations, the manifold projection, the SVD and the statements of `docs/math.md`).
Here the functions the simulator calls are
checked against those expressions: `theory.laws.numeric(name, backend)` (numpy and jax) at sample points, the
argument lists `SIGNATURES`, and `theory.laws.constants(N, C, kappa)` for both SNR scales.""",
}


def _esc(s: str) -> str:
    return str(s).replace("|", "\\|")


def render_markdown(cert: Certificate) -> str:
    """Render a certificate as Markdown with LaTeX (``$$ ... $$`` blocks)."""
    n_pass = sum(c["passed"] for c in cert.checks)
    lines = [
        "# Symbolic certificate: Neural Collapse under MSE loss",
        "",
        "Han, Papyan & Donoho, *Neural Collapse Under MSE Loss: Proximity to and Dynamics on the Central Path* "
        "(ICLR 2022). Section numbers (§) refer to the toolkit's mathematical write-up, `docs/math.md` "
        "(notation, derivations, conventions and provenance).",
        "",
        f"**Result: {'PASS' if cert.passed else 'FAIL'}** -- {n_pass}/{len(cert.checks)} identities verified "
        f"in {cert.seconds:.1f} s ({'quick' if cert.quick else 'full'} run; "
        f"SymPy, Python {platform.python_version()}).",
        "",
        SCOPE,
    ]
    groups: dict[str, list[dict]] = {}
    for c in cert.checks:
        groups.setdefault(c["section"], []).append(c)
    for sec, checks in groups.items():
        title = SECTION_TITLES.get(sec, "")
        head = f"## {sec}. {title}" if sec[0].isdigit() else f"## {title or sec}"
        lines += ["", head, ""]
        if sec in DERIVATIONS:
            lines += [DERIVATIONS[sec], ""]
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

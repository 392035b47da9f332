"""Check records, the certificate container and the runner shared by all derivation modules.

A check returns an :class:`Outcome`; the runner times it and turns an exception into a failure, so a broken
derivation can never pass silently.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import sympy as sp

from .report import render_markdown
from .traces import MatrixAlgebra

__all__ = [
    "Outcome", "CheckSpec", "Certificate", "run_specs", "KINDS", "verdict", "reduced", "vanishes", "close", "Checks",
]

#: How general a check is: proved for all sizes, proved at one concrete size with fully symbolic
#: entries, proved at one size with exact random rational data, or a numeric comparison.
KINDS = ("general", "symbolic size", "rational size", "numeric")


@dataclass
class Outcome:
    """What a check function returns."""

    passed: bool
    detail: str
    latex: str = ""


def vanishes(*exprs, how: Callable = sp.simplify) -> bool:
    """Every entry of each scalar or matrix in ``exprs`` is 0 after ``how`` (``sp.simplify``, ``sp.expand``, ...)."""
    return all(how(e) == 0 for x in exprs for e in (x if isinstance(x, sp.MatrixBase) else (x,)))


def close(got, want) -> bool:
    """Floats ``got`` equal ``want`` to a relative ``1e-14`` (theory.laws' numeric constants against SymPy's)."""
    return bool(np.allclose(got, want, rtol=1e-14, atol=0))


def verdict(steps: dict[str, bool], latex: str = "", head: str = "") -> Outcome:
    """Passes iff every step does; the detail is ``head`` then ``step: result`` for each step."""
    return Outcome(all(steps.values()), head + "; ".join(f"{k}: {bool(v)}" for k, v in steps.items()), latex)


def reduced(parts: dict[str, dict], latex: str = "") -> Outcome:
    """Passes iff every word polynomial of :class:`~.traces.MatrixAlgebra` in ``parts`` reduced to 0 (``{}``);
    the detail shows each one's reduced form."""
    return Outcome(not any(parts.values()), "; ".join(f"{k} -> {MatrixAlgebra.show(v)}" for k, v in parts.items()),
                   latex)


@dataclass
class CheckSpec:
    """A named check: ``fn()`` performs the SymPy computation and returns an :class:`Outcome`."""

    section: str
    name: str
    fn: Callable[[], Outcome]
    kind: str = "symbolic size"
    statement: str = ""
    quick: bool = True

    def run(self) -> dict:
        """The check's record: ``name, passed, section, detail, seconds, kind, statement, latex``."""
        t0 = time.perf_counter()
        try:
            out = self.fn()
            passed, detail, latex = bool(out.passed), str(out.detail), str(out.latex)
        except Exception as exc:  # noqa: BLE001 - a crashing derivation is a failed derivation
            tb = " ".join(traceback.format_exc(limit=3).split())[-400:]
            passed, detail, latex = False, f"exception {type(exc).__name__}: {exc} | {tb}", ""
        return {
            "name": self.name,
            "passed": passed,
            "section": self.section,
            "detail": detail,
            "seconds": round(time.perf_counter() - t0, 4),
            "kind": self.kind,
            "statement": self.statement,
            "latex": latex,
        }


class Checks(list[CheckSpec]):
    """A module's checks in report order, registered by decorating each check function."""

    def add(self, section: str, name: str, kind: str = "symbolic size", statement: str = "",
            sizes: tuple[int, ...] = ()):
        """Register ``fn`` as the check ``name``, or ``partial(fn, C)`` as ``"name [C=C]"`` for each ``C`` in
        ``sizes`` (only the smallest in the quick certificate)."""

        def deco(fn: Callable) -> Callable:
            if not sizes:
                self.append(CheckSpec(section, name, fn, kind, statement))
            for C in sizes:
                self.append(CheckSpec(section, f"{name} [C={C}]", partial(fn, C), kind, statement, C == min(sizes)))
            return fn

        return deco


@dataclass
class Certificate:
    """Result of :func:`theory.symbolic.run_certificate`: ``checks`` are the records of :meth:`CheckSpec.run`
    (``name, passed, section, detail, seconds, kind, statement, latex``); ``passed`` iff every check passed."""

    checks: list[dict] = field(default_factory=list)
    quick: bool = False
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c["passed"] for c in self.checks)

    @property
    def failures(self) -> list[dict]:
        return [c for c in self.checks if not c["passed"]]

    def to_json(self) -> dict:
        """``{"checks": [...], "passed": bool, "quick": bool, "seconds": float}`` (JSON-serialisable)."""
        return {
            "checks": [dict(c) for c in self.checks],
            "passed": self.passed,
            "quick": self.quick,
            "seconds": round(self.seconds, 3),
        }

    def markdown(self) -> str:
        """The derivation report (Markdown with LaTeX), see :mod:`theory.symbolic.report`."""
        return render_markdown(self)


def run_specs(specs: Iterable[CheckSpec], quick: bool = False) -> Certificate:
    """Run the checks in order (those with ``quick=False`` are skipped when ``quick``)."""
    t0 = time.perf_counter()
    cert = Certificate([spec.run() for spec in specs if spec.quick or not quick], quick=quick)
    cert.seconds = time.perf_counter() - t0
    return cert

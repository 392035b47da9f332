"""Symbolic claims: one per section of the SymPy certificate (``theory.symbolic.run_certificate``; math §3.3,
§3.4, §5, §6).  A section passes iff every one of its checks passed; the sections are only known once the
certificate has run, so their claims are built then.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .registry import GROUP_HEADLINES, Claim

__all__ = ["symbolic_claims"]


def _headline(m: dict) -> str:
    kinds = ", ".join(f"{v} {k}" for k, v in m["kinds"].items())
    fails = "; FAILED: " + ", ".join(str(f["name"]) for f in m["failed"]) if m["failed"] else ""
    return f"{m['passed']}/{m['checks']} checks ({kinds}) in {m['seconds']:.1f} s{fails}"


GROUP_HEADLINES["symbolic"] = _headline


def _section_claim(section: str, cs: list[dict]) -> Claim:
    from theory.symbolic import SECTION_TITLES  # SymPy, imported when the certificate ran

    failed = [c for c in cs if not c.get("passed")]
    kinds = dict(Counter(str(c.get("kind", "symbolic")) for c in cs))
    return Claim(
        id=f"symbolic.{section}", statement=SECTION_TITLES.get(section, "") or f"identities of math §{section}",
        source=(f"math §{section}" if section[:1].isdigit()
                else "docs/rank_deficient.md" if section == "rank" else f"theory.{section}"),
        check=f"SymPy certificate (theory.symbolic.run_certificate): {len(cs)} checks",
        tolerance="every check exact (symbolic or rational arithmetic; 'numeric' checks at the "
                  "tolerance in their detail)",
        status="fail" if failed else "pass", group="symbolic", verification=True,
        measured={"checks": len(cs), "passed": len(cs) - len(failed), "kinds": kinds,
                  "failed": [{"name": c.get("name"), "detail": c.get("detail")} for c in failed],
                  "seconds": round(sum(float(c.get("seconds") or 0.0) for c in cs), 3),
                  "names": [c.get("name") for c in cs]})


def symbolic_claims(certificate: Any) -> list[Claim]:
    """One claim per section of ``certificate.checks`` (dicts with ``name``, ``passed``, ``section``,
    ``kind``, ``detail``, ``seconds``); an empty certificate is one failed claim."""
    checks = [dict(c) for c in certificate.checks]
    if not checks:
        return [Claim(id="symbolic.certificate", statement="the symbolic certificate ran", source="math §3-6",
                      check="theory.symbolic.run_certificate", tolerance="at least one check", status="fail",
                      measured={"checks": 0, "reason": "certificate has no checks"}, group="symbolic",
                      verification=True)]
    sections: dict[str, list[dict]] = {}
    for c in checks:
        sections.setdefault(str(c.get("section", "") or "?"), []).append(c)
    return [_section_claim(section, cs) for section, cs in sections.items()]

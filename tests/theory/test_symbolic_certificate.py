"""The symbolic certificate (theory.symbolic.run_certificate): every identity passes, the result has
the documented shape, and the report covers every section."""

from __future__ import annotations

import json

import pytest

from theory.symbolic import SECTION_TITLES, Certificate, run_certificate


@pytest.fixture(scope="module")
def cert() -> Certificate:
    return run_certificate(quick=True)


def test_all_identities_pass(cert):
    failed = [(c["name"], c["detail"]) for c in cert.checks if not c["passed"]]
    assert not failed, failed
    assert cert.passed


def test_checks_have_documented_fields(cert):
    assert len(cert.checks) > 100
    for c in cert.checks:
        assert {"name", "passed", "section", "detail", "seconds"} <= set(c)
        assert isinstance(c["passed"], bool) and isinstance(c["seconds"], float)
        assert c["kind"] in ("general", "symbolic size", "rational size", "numeric")
    names = [c["name"] for c in cert.checks]
    assert len(names) == len(set(names)), "check names must be unique"


def test_every_section_and_kind_is_covered(cert):
    sections = {c["section"] for c in cert.checks}
    assert sections == set(SECTION_TITLES)
    kinds = {c["kind"] for c in cert.checks}
    assert kinds == {"general", "symbolic size", "rational size", "numeric"}
    # balanced and imbalanced, bias and no bias, all four symbolic sizes of math §3.3
    names = " ".join(c["name"] for c in cert.checks if c["section"] == "3.3")
    for frag in ("(balanced)", "(imbalanced)", ",bias]", ",no bias]", "C=2,p=1", "C=2,p=2", "C=3,p=1", "C=3,p=2"):
        assert frag in names, frag


def test_json_roundtrip(cert):
    d = json.loads(json.dumps(cert.to_json()))
    assert d["passed"] is True
    assert len(d["checks"]) == len(cert.checks)


def test_markdown_report(cert):
    md = cert.markdown()
    assert "Table of identities" in md
    assert "Scope: what is proved for all sizes" in md
    assert md.count("| PASS |") == len(cert.checks)
    assert "$$" in md  # LaTeX results
    for sec in SECTION_TITLES:
        if sec[0].isdigit():
            assert f"## {sec}." in md


def test_quick_runs_exactly_the_quick_specs(cert):
    """``run_certificate(quick=True)`` runs the specs marked quick and leaves out the others (the C = 4 ones)."""
    from theory.symbolic import all_specs

    specs = all_specs()
    quick = {s.name for s in specs if s.quick}
    assert cert.quick and {c["name"] for c in cert.checks} == quick
    left_out = {s.name for s in specs} - quick
    assert left_out and all("C=4" in n for n in left_out), left_out


@pytest.mark.slow
def test_full_and_exhaustive_certificate():
    c = run_certificate(quick=False, exhaustive=True)
    assert c.passed, [x["name"] for x in c.failures]

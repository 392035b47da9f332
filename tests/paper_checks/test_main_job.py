"""Integration test: the main job (`python -m paper_checks --quick`) end to end at a reduced size.

Symbolic certificate (quick), reduced-flow and retraction simulations, a short digits
training run into the terminal phase, the comparison, the claims and the report.  Budget:
under 3 minutes on CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from paper_checks.claims import Claim
from paper_checks.main import exit_code

ROOT = Path(__file__).resolve().parents[2]

#: Claims that must pass at the reduced size (they do not depend on how far training goes).
MUST_PASS = {
    "dynamics.closed_form",
    "dynamics.omega_to_infinity",
    "dynamics.max_min_ratio_to_1",
    "dynamics.simplex_etf_limit",
    "dynamics.nc1_rate",
    "dynamics.tail_rates",
    "dynamics.nc_metrics_decrease",
    "dynamics.retraction_differs",
    "dynamics.invariants",
    "empirical.terminal_phase_reached",
    "empirical.nc1_decreases",
    "empirical.decomposition_identity",
    "empirical.central_path_closed_forms",
}


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-m", "paper_checks", "--quick", "--out", str(out), "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    return out, proc


def test_main_job_writes_parseable_report(quick_report):
    out, proc = quick_report
    # the gating claims (symbolic, dynamics, exact empirical identities) pass at the reduced size
    assert proc.returncode == 0, proc.stderr[-3000:]
    claims = json.loads((out / "claims.json").read_text())
    assert claims, "no claims"
    for c in claims:
        assert {"id", "statement", "source", "status", "measured", "tolerance"} <= set(c)
        assert c["status"] in ("pass", "fail", "n/a")  # no error on the default data
    assert not [c for c in claims if c["id"].startswith("stage.")], proc.stderr[-3000:]
    # exit code 0 iff every verification claim passes (empirical observations are reported, not gated)
    verification = [c for c in claims if c["verification"]]
    assert {"empirical.decomposition_identity", "empirical.central_path_closed_forms"} <= {
        c["id"] for c in verification
    }
    assert all(c["status"] == "pass" for c in verification)
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    assert (out / "report.md").is_file()
    cmp = json.loads((out / "compare.json").read_text())
    assert cmp["fit"]["num_times"] >= 3
    assert "claims pass" in proc.stdout
    for stage in ("symbolic certificate", "simulation", "training", "predicted against observed", "report"):
        assert stage in proc.stderr


def test_main_job_claims_that_must_pass(quick_report):
    out, proc = quick_report
    claims = {c["id"]: c for c in json.loads((out / "claims.json").read_text())}
    groups = {c.split(".")[0] for c in claims}
    assert {"symbolic", "dynamics", "empirical"} <= groups
    failed = {cid: claims[cid]["measured"] for cid in MUST_PASS if claims.get(cid, {}).get("status") != "pass"}
    assert not failed
    sym = [c for c in claims.values() if c["id"].startswith("symbolic.")]
    assert sym and all(c["status"] == "pass" for c in sym)


def test_every_headline_formats_on_the_main_job_claims(quick_report):
    """A claim's registered headline must format the real measured dict of its claim (a renamed measured key
    would otherwise fall back to the raw numbers unnoticed)."""
    from paper_checks.claims import REGISTRY, Claim, headline_of

    out, _ = quick_report
    claims = json.loads((out / "claims.json").read_text())
    checked = 0
    for c in claims:
        if c["status"] in ("pass", "fail") and (c["id"] in REGISTRY or c["group"] == "symbolic"):
            claim = Claim(**c)
            assert headline_of(claim), c["id"]
            checked += 1
    assert checked >= 20


def test_compare_cli_on_the_run(quick_report, tmp_path):
    out, _ = quick_report
    proc = subprocess.run([sys.executable, "-m", "paper_checks", "compare", str(out / "run"), "--time", "epoch",
                           "--out", str(tmp_path), "--no-figures"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "time map" in proc.stdout
    data = json.loads((tmp_path / "compare.json").read_text())
    assert data["time"]["axis"] == "epoch"


def _claim(cid, group, status):
    return Claim(id=cid, statement="s", source="spec", check="c", tolerance="t", status=status, group=group)


def test_exit_code_gates_verification_claims_and_strict_gates_all():
    ok = [_claim("symbolic.3.3", "symbolic", "pass"), _claim("dynamics.closed_form", "dynamics", "pass")]
    observed_fail = _claim("empirical.l_perp_negligible", "empirical", "fail")
    exact_fail = _claim("empirical.decomposition_identity", "empirical", "fail")
    not_applicable = _claim("empirical.central_path_closed_forms", "empirical", "n/a")
    assert exit_code(ok + [observed_fail, not_applicable]) == 0
    assert exit_code(ok + [observed_fail], strict=True) == 1
    assert exit_code(ok + [not_applicable], strict=True) == 0
    assert exit_code(ok + [exact_fail]) == 1
    assert exit_code(ok[:1] + [_claim("dynamics.closed_form", "dynamics", "fail")]) == 1
    assert exit_code(ok + [_claim("stage.training", "stages", "error")]) == 1

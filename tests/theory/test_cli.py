"""``python -m theory``: JSON output, exit status, ``--out``, argument passing.

The certificate itself is run once in the suite (``test_symbolic_certificate``); here ``main`` runs
with a small stand-in :class:`Certificate`, plus one cheap real subprocess (``--help``).
"""

from __future__ import annotations

import json
import subprocess
import sys

import theory.__main__ as cli
from theory.symbolic import Certificate

_CHECK = {"name": "x", "section": "3.3", "detail": "residual 0", "seconds": 0.0, "kind": "general",
          "statement": "L = L_NC1 + L_NC2/3 + L_perp", "latex": r"L = L_{NC1}"}


def _fake(monkeypatch, passed: bool) -> list[tuple[bool, bool]]:
    calls: list[tuple[bool, bool]] = []
    cert = Certificate(checks=[dict(_CHECK, passed=passed)], quick=True, seconds=0.1)

    def run_certificate(quick=False, exhaustive=False):
        calls.append((quick, exhaustive))
        return cert

    monkeypatch.setattr("theory.symbolic.run_certificate", run_certificate)
    return calls


def test_cli_json_and_out(monkeypatch, capsys, tmp_path):
    calls = _fake(monkeypatch, True)
    assert cli.main(["--json", "--quick", "--out", str(tmp_path)]) == 0
    assert calls == [(True, False)]
    d = json.loads(capsys.readouterr().out)
    assert d["passed"] is True
    assert d["checks"] and all(c["passed"] for c in d["checks"])
    assert {"name", "passed", "section", "detail", "seconds"} <= set(d["checks"][0])
    md = (tmp_path / "derivations.md").read_text()
    assert "Table of identities" in md and "**Result: PASS**" in md
    assert json.loads((tmp_path / "derivations.json").read_text())["passed"] is True


def test_cli_markdown_and_exhaustive_flag(monkeypatch, capsys):
    calls = _fake(monkeypatch, True)
    assert cli.main(["--exhaustive"]) == 0
    assert calls == [(False, True)]
    out = capsys.readouterr().out
    assert out.startswith("# Symbolic certificate") and "| PASS |" in out


def test_cli_exit_status_nonzero_on_failure(monkeypatch, capsys):
    _fake(monkeypatch, False)
    assert cli.main(["--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] is False
    assert cli.main([]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_cli_module_entry_point_help():
    proc = subprocess.run([sys.executable, "-m", "theory", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for flag in ("--json", "--out", "--quick", "--exhaustive"):
        assert flag in proc.stdout

"""``python -m theory``: JSON output, exit status, ``--out``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import theory.__main__ as cli
from theory.symbolic import Certificate


def test_cli_quick_json_and_out(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "theory", "--json", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    d = json.loads(proc.stdout)
    assert d["passed"] is True
    assert d["checks"] and all(c["passed"] for c in d["checks"])
    assert {"name", "passed", "section", "detail", "seconds"} <= set(d["checks"][0])
    md = (tmp_path / "derivations.md").read_text()
    assert "Table of identities" in md and "**Result: PASS**" in md
    assert json.loads((tmp_path / "derivations.json").read_text())["passed"] is True


def test_cli_exit_status_nonzero_on_failure(monkeypatch, capsys):
    bad = Certificate(checks=[{"name": "x", "passed": False, "section": "3.3", "detail": "residual 1", "seconds": 0.0}])
    monkeypatch.setattr("theory.symbolic.run_certificate", lambda quick=False, exhaustive=False: bad)
    assert cli.main(["--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] is False
    assert cli.main([]) == 1
    assert "FAIL" in capsys.readouterr().out

"""Public API of ``theory``: ``theory.laws`` after a plain ``import theory`` (lazy, so the import stays light);
``python -m theory``: an invalid argument gives one line naming it and exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

import theory.__main__ as cli


def test_laws_after_plain_import_is_lazy():
    code = ("import sys, theory; light = 'sympy' not in sys.modules and 'theory.laws' not in sys.modules; "
            "f = theory.laws.numeric('omega_rhs', backend='numpy'); "
            # d omega/dt = (kappa/N) omega/(C + omega^2)^2 at omega=1, N=2, C=3, kappa=1: 1/32
            "sys.exit(0 if light and abs(f(1.0, 2, 3, 1.0) - 1 / 32) < 1e-15 and 'laws' in dir(theory) else 1)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_unknown_attribute_still_raises():
    import theory

    with pytest.raises(AttributeError, match="no attribute 'lawz'"):
        theory.lawz  # noqa: B018 - the attribute access is what raises


@pytest.mark.parametrize("argv, message", [
    (["--quik"], "unrecognized arguments: --quik"),
    (["--out"], "argument --out: expected one argument"),
    (["extra"], "unrecognized arguments: extra"),
])
def test_cli_invalid_arguments(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err == f"python -m theory: error: {message}\n"


def test_cli_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "report"
    f.write_text("keep")
    with pytest.raises(SystemExit) as exc:
        cli.main(["--quick", "--out", str(f)])  # refused before the certificate runs
    assert exc.value.code == 2
    assert capsys.readouterr().err == f"python -m theory: error: argument --out: {f} exists and is not a directory\n"
    assert f.read_text() == "keep"


def test_cli_subprocess_one_line():
    r = subprocess.run([sys.executable, "-m", "theory", "--nope"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr

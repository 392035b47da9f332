"""The grid of runs on CPU at small sizes: digits with two networks and both losses, a dataset missing on this
machine reported as skipped, finished runs skipped on a re-run, killed ones planned for resumption, and the local
(submitit) executor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paper_checks.grid import GridOptions, main, plan_grid

SMALL = {"measure_epochs": [0, 2, 4, 5, 6]}


@pytest.fixture(scope="module")
def digits_grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    empty = tmp_path_factory.mktemp("no-data")
    opts = GridOptions(datasets=["digits", "cifar10"], models=["mlp", "resnet18"], losses=["mse", "ce"], out=str(out),
                       epochs=6, per_class=20, data_root=str(empty), extra=SMALL, ladder="on")
    from paper_checks.grid import run_grid

    code = run_grid(opts)
    return out, opts, code


def test_grid_trains_every_run_and_writes_the_report(digits_grid):
    out, _, code = digits_grid
    assert code == 0
    rows = json.loads((out / "grid.json").read_text())
    assert [(r["dataset"], r["model"], r["loss"]) for r in rows][:4] == [
        ("digits", "mlp", "mse"), ("digits", "mlp", "ce"), ("digits", "resnet18", "mse"), ("digits", "resnet18", "ce")]
    for r in rows[:4]:
        assert r["status"] == "trained" and r["last_epoch"] == 6
        assert 0.0 <= r["final_train_error"] <= 1.0 and 0.0 <= r["final_test_error"] <= 1.0
        assert sum(r["claims"].values()) == 15 and r["claims"]["error"] == 0
        assert Path(r["run_dir"], "metrics.jsonl").is_file()
    assert {r["lr"] for r in rows[:4] if r["loss"] == "ce"} == {0.0679}
    assert rows[0]["lr"] == 0.4  # the digits-mlp preset's rate for MSE
    # the calibration ladder beside each MSE pair (math §7.4), none beside a CE pair
    for r in rows[:4]:
        assert ("ladder" in r) == (r["loss"] == "mse"), r["loss"]
        if r["loss"] == "mse":  # the free flow (b) may be reported as not run (bounded in time), the others always run
            errors = r["ladder"]["forward_error"]
            assert set(errors) >= {"c", "d", "e"}
            # the exact flow, recovered (rung (a) always runs)
            assert "a" in errors and errors["a"] <= 1e-3, r["ladder"]
    # the dataset missing on this machine: skipped, with the loader's message
    for r in rows[4:]:
        assert r["dataset"] == "cifar10" and r["status"] == "skipped" and "not found" in r["message"]
    claims = {c["id"]: c for c in json.loads((out / "claims.json").read_text())}
    assert set(claims) == {"grid.test_accuracy_improves_in_tpt", "grid.mse_ce_comparable",
                           "grid.l_perp_negligible_across_runs"}
    assert claims["grid.mse_ce_comparable"]["status"] in ("pass", "fail")
    assert claims["grid.mse_ce_comparable"]["measured"]["pairs"] == 2
    md = (out / "report.md").read_text()
    assert "| digits | resnet18 | ce |" in md and "skipped: dataset 'cifar10'" in md
    assert "The paper's numbers across the grid" in md
    assert (out / "figures" / "grid_mse.png").is_file() and (out / "figures" / "grid_ce.png").is_file()
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("data:image/png;base64,") == 2
    assert (out / "runs-reports" / "digits-mlp-mse" / "claims.json").is_file()


def test_rerun_skips_finished_runs_and_plans_killed_ones_for_resumption(digits_grid):
    out, opts, _ = digits_grid
    plans = {p.name: p for p in plan_grid(opts)}
    assert plans["digits-mlp-mse"].action == "finished" and plans["cifar10-mlp-mse"].action == "skip"
    killed = out / "runs" / "digits-mlp-ce" / "metrics.jsonl"
    lines = killed.read_text().splitlines()
    killed.write_text("\n".join(lines[:-1]) + "\n")  # the last measured epoch never written: a killed run
    try:
        assert {p.name: p for p in plan_grid(opts)}["digits-mlp-ce"].action == "resume"
    finally:
        killed.write_text("\n".join(lines) + "\n")
    other = GridOptions(**{**opts.__dict__, "lr": 0.05})
    from paper_checks.main import UsageError

    with pytest.raises(UsageError, match="other options"):
        plan_grid(other)


def test_a_failing_ladder_is_an_error_claim_and_a_failed_report(digits_grid, monkeypatch):
    """A ladder that raises leaves the run's own claims standing, adds an ``error`` claim naming it and exits 1 with
    the report kept aside, as the main job's calibration stage does (it was once only a line on stderr, exit 0)."""
    import paper_checks.grid as grid

    out, opts, _ = digits_grid

    def broken(*args, **kwargs):
        raise RuntimeError("ladder broke")

    monkeypatch.setattr(grid, "ladder_beside", broken)
    only = GridOptions(**{**opts.__dict__, "datasets": ["digits"], "models": ["mlp"], "losses": ["mse"]})
    assert grid.run_grid(only) == 1
    claims = json.loads((out / "failed-report" / "claims.json").read_text())
    errors = [c for c in claims if c["status"] == "error"]
    assert [c["id"] for c in errors] == ["ladder.digits-mlp-mse"] and "ladder broke" in errors[0]["measured"]["error"]
    run_claims = json.loads((out / "failed-report" / "runs-reports" / "digits-mlp-mse" / "claims.json").read_text())
    assert "ladder.digits-mlp-mse" in {c["id"] for c in run_claims}
    assert any(c["id"].startswith("empirical.") for c in run_claims)  # the run's own claims stand
    assert (out / "claims.json").is_file()  # the earlier complete report is kept


@pytest.mark.parametrize("argv, words", [
    (["--datasets", "digits,nope", "--models", "mlp"], "unknown dataset 'nope'"),
    (["--datasets", "digits", "--models", "mlp,resnet99"], "unknown model 'resnet99'"),
    (["--datasets", "digits", "--models", "mlp", "--losses", "mse,hinge"], "unknown loss 'hinge'"),
    (["--datasets", "digits,digits", "--models", "mlp"], "repeated"),
    (["--datasets", "digits", "--models", "mlp", "--tpt-threshold", "-1"], "--tpt-threshold"),
])
def test_grid_bad_options_one_line_exit_2(tmp_path, capsys, argv, words):
    assert main(argv + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_local_executor_through_submitit(tmp_path):
    pytest.importorskip("submitit")
    out = tmp_path / "grid"
    code = main(
        [
            "--datasets",
            "gaussian",
            "--models",
            "mlp",
            "--losses",
            "mse,ce",
            "--epochs",
            "3",
            "--per-class",
            "30",
            "--executor",
            "local",
            "--ladder",
            "off",  # this test is about the executor; the ladder per pair is tested above
            "--jobs",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    rows = json.loads((out / "grid.json").read_text())
    assert [r["status"] for r in rows] == ["trained", "trained"] and all(r["last_epoch"] == 3 for r in rows)
    assert any((out / "submitit").glob("*_result.pkl"))  # the jobs ran in submitit's local executor


def test_a_dead_worker_is_reported_per_run_not_a_crash(tmp_path):
    """A submitit job whose process dies (here: exits with code 3) leaves an error result for each of its runs."""
    import os

    submitit = pytest.importorskip("submitit")
    from paper_checks.grid import _job_results

    job = submitit.LocalExecutor(folder=tmp_path).submit(os._exit, 3)
    res = _job_results(job, [{"out": "runs/a"}, {"out": "runs/b"}])
    assert [(r["run_dir"], r["status"]) for r in res] == [("runs/a", "error"), ("runs/b", "error")]
    assert "failed" in res[0]["message"]


def test_grid_of_no_run_exits_1(tmp_path, capsys):
    """Every dataset missing: every run skipped, nothing trained or evaluated, exit status 1 (documented in
    ``grid --help``), with the report still written to say which were skipped and why."""
    out = tmp_path / "grid"
    code = main(["--datasets", "cifar10", "--models", "mlp", "--losses", "mse", "--data-root", str(tmp_path / "none"),
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "no run was trained or evaluated" in err
    rows = json.loads((out / "grid.json").read_text())
    assert [r["status"] for r in rows] == ["skipped"]

"""The main job validates everything before its first stage, never destroys a complete report, and continues or
refuses when re-run into an existing output folder (in process; synthetic run directories, no training)."""

from __future__ import annotations

import json
import time

import pytest

from paper_checks.__main__ import main
from paper_checks.main import MainOptions, UsageError, train_config, validate
from paper_checks.synthetic import synthetic_metrics_log

FAST = ["--certificate", "skip", "--skip-simulation"]


def _write_run(path, records, config=None):
    path.mkdir(parents=True, exist_ok=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (path / "config.json").write_text(json.dumps({"config": config or {"per_class": 50, "dataset": "synthetic"}}))


@pytest.mark.parametrize("argv, words", [
    (["--dataset", "fashion-mnits"], "unknown dataset 'fashion-mnits'"),
    (["--model", "resnet19", "--dataset", "digits"], "unknown model 'resnet19'"),
    (["--tpt-threshold", "2"], "--tpt-threshold"),
    (["--epochs", "0"], "epochs must be >= 1"),
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--sim-classes", "1"], "need at least 2 classes"),
    (["--sim-dim", "40"], "Sigma_W would be singular"),
    (["--dataset", "cifar10", "--data-root", "/nonexistent"], "does not exist"),
])
def test_bad_options_are_refused_before_any_stage_with_one_line(tmp_path, capsys, argv, words):
    t0 = time.perf_counter()
    assert main(argv + ["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert time.perf_counter() - t0 < 10  # before the certificate and the simulation (about 30 s together)
    assert not (tmp_path / "out" / "claims.json").exists()


def test_a_failing_stage_keeps_the_previous_report(tmp_path, capsys):
    recs, _ = synthetic_metrics_log(C=5, epochs=30, scale=10.0, noise=0.0, zero_error_epoch=4, seed=5)
    run, out = tmp_path / "run", tmp_path / "report"
    _write_run(run, recs)
    assert main(FAST + ["--run-dir", str(run), "--out", str(out), "--time", "epoch"]) == 0
    good = (out / "claims.json").read_text()
    assert json.loads(good) and (out / "report.html").is_file() and (out / "compare.json").is_file()
    assert not (out / ".report-staging").exists()
    # the run's log becomes corrupt: the comparison stage fails (a RunError), the good report stays
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines[:3] + ["{corrupt"] + lines[3:]) + "\n")
    capsys.readouterr()
    assert main(FAST + ["--run-dir", str(run), "--out", str(out), "--time", "epoch"]) == 1
    err = capsys.readouterr().err
    assert "stage 'predicted against observed' failed" in err and "metrics.jsonl:4" in err
    assert (out / "claims.json").read_text() == good
    failed = out / "failed-report"
    assert "metrics.jsonl:4" in (failed / "FAILED.txt").read_text()
    stage = [c for c in json.loads((failed / "claims.json").read_text()) if c["id"].startswith("stage.")]
    assert stage and stage[0]["status"] == "error" and "Traceback" in stage[0]["detail"]
    # repaired: the next complete report replaces the old one and the failed one is cleared
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert main(FAST + ["--run-dir", str(run), "--out", str(out), "--time", "epoch", "--tpt-threshold", "0.01"]) == 0
    assert not failed.exists()
    assert "training error <= 0.01" in (out / "report.md").read_text()


@pytest.mark.parametrize("stage", ["ladder_beside", "write_report"])
def test_a_failing_ladder_or_report_stage_exits_1(tmp_path, capsys, monkeypatch, stage):
    """A raising calibration ladder is an ``error`` claim in the (failed) report and exit 1, as in the grid; a raising
    report stage cannot write a claim but exits 1 too (both were exit 0)."""
    import paper_checks.main as main_module

    recs, _ = synthetic_metrics_log(C=5, epochs=30, scale=10.0, noise=0.0, zero_error_epoch=4, seed=5)
    run, out = tmp_path / "run", tmp_path / "report"
    _write_run(run, recs)

    def broken(*args, **kwargs):
        raise RuntimeError(f"{stage} broke")

    monkeypatch.setattr(main_module, stage, broken)
    assert main(FAST + ["--run-dir", str(run), "--out", str(out), "--time", "epoch"]) == 1
    assert f"{stage} broke" in (out / "FAILED.txt").read_text()  # no earlier report to keep: published, marked
    if stage == "ladder_beside":
        claims = json.loads((out / "claims.json").read_text())
        errors = [c for c in claims if c["status"] == "error"]
        assert [c["id"] for c in errors] == ["stage.calibration"] and f"{stage} broke" in errors[0]["measured"]["error"]
        assert any(c["id"].startswith("empirical.") for c in claims)  # the run's own claims stand


def test_rerun_into_an_existing_folder_continues_or_refuses(tmp_path):
    out = tmp_path / "out"
    opts = MainOptions(out=str(out))
    assert validate(opts).training == "new"
    cfg = train_config(opts, out / "run").resolved()
    stored = dict(cfg.to_dict())
    run = out / "run"
    recs = [{"epoch": e, "train_error": 0.0} for e in (0, 10, 100)]
    _write_run(run, recs, stored)
    assert validate(opts).training == "resume"  # killed before its last epoch: continued
    _write_run(run, recs + [{"epoch": cfg.epochs, "train_error": 0.0}], stored)
    assert validate(opts).training == "reuse-finished"  # finished: reused, not trained again
    _write_run(run, recs, dict(stored, lr=0.1))
    with pytest.raises(UsageError, match=r"other options \(lr 0.1 \(stored\) != 0.4 \(asked\)\)"):
        validate(opts)
    with pytest.raises(UsageError, match="no training run to continue"):
        validate(MainOptions(out=str(tmp_path / "empty"), resume=True))


@pytest.mark.parametrize("argv", [["--epochs", "abc"], ["compare"], ["grid", "--models", "mlp"], ["--nosuch"]])
def test_argument_errors_are_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error:" in err and "Traceback" not in err


def test_a_log_without_its_config_is_refused_with_the_callers_remedy(tmp_path):
    from paper_checks.main import stored_run_finished

    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"epoch": 0}\n')
    with pytest.raises(UsageError, match="without config.json: choose another --out, or pass --run-dir"):
        validate(MainOptions(out=str(tmp_path)))
    with pytest.raises(UsageError, match="without config.json: or remove that run"):
        stored_run_finished(run, {}, "or remove that run")

"""Command-line behaviour of `python -m paper_checks compare` (in process, synthetic run directories)."""

from __future__ import annotations

import json

import pytest

from paper_checks.__main__ import main
from paper_checks.synthetic import synthetic_metrics_log


def _write_run(path, records, config=None):
    path.mkdir(parents=True, exist_ok=True)
    with (path / "metrics.jsonl").open("w") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
        fh.write('{"epoch": 999, "trunc')  # a run killed mid-write: the partial line is ignored
    (path / "config.json").write_text(json.dumps({"config": config or {"per_class": 50, "dataset": "synthetic"}}))


def test_compare_cli_writes_json_and_figures(tmp_path, capsys):
    recs, _ = synthetic_metrics_log(C=5, epochs=30, scale=10.0, noise=0.005, zero_error_epoch=4, seed=5)
    run = tmp_path / "run"
    _write_run(run, recs)
    assert main(["compare", str(run), "--time", "epoch", "--early-epoch", "6"]) == 0
    out = capsys.readouterr().out
    assert "time map" in out and "forward ODE from epoch 6" in out
    data = json.loads((run / "compare.json").read_text())
    assert data["per_class"] == 50
    assert data["fit"]["r2_log_omega_min"] > 0.9
    assert data["forward"]["start_epoch"] == 6
    names = {p.split("/")[-1] for p in data["figures"]}
    assert {"compare_snr.png", "compare_snr_ratio.png", "compare_l_nc1.png", "compare_l_nc23.png"} <= names


def test_compare_cli_errors(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "missing")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    recs, _ = synthetic_metrics_log(C=4, epochs=3, seed=0)
    run = tmp_path / "short"
    _write_run(run, recs)
    # Too short a log is compared as far as it goes: every part that needs more is n/a, in the output, exit 0.
    assert main(["compare", str(run), "--no-figures"]) == 0
    out = capsys.readouterr().out
    assert "only 3 usable measured epochs" in out and (run / "compare.json").is_file()


def test_compare_any_log_in(tmp_path, capsys):
    """A log from another tool (epoch, nc1, train_error, loss, lr: no SNR, no lr_weighted_steps) is compared as far
    as it goes, every missing key named in one message; a file path writes beside the file, never onto it."""
    import csv

    path = tmp_path / "other.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "nc1", "train_error", "loss", "lr"])
        for e in range(1, 11):
            w.writerow([e, 1.0 / e, max(0.0, 0.5 - 0.1 * e), 0.1 / e, 0.1])
    assert main(["compare", str(path), "--no-figures"]) == 0
    out = capsys.readouterr().out
    assert "time axis: epoch (the log has no lr_weighted_steps)" in out
    assert "the log lacks snr_singular_values" in out.replace("\n", " ")
    data = json.loads((tmp_path / "other-compare" / "compare.json").read_text())
    assert data["missing_keys"] == ["snr_singular_values"] and data["fit"] is None
    assert path.is_file()  # the log itself untouched
    # The toolkit's own export-csv in a run directory: outputs go beside it, not onto it (was FileExistsError).
    recs, _ = synthetic_metrics_log(C=4, epochs=12, scale=10.0, noise=0.0, zero_error_epoch=2, seed=3)
    run = tmp_path / "run"
    _write_run(run, recs)
    from empirical.export import export_csv

    exported = export_csv(run)
    assert main(["compare", str(exported), "--no-figures"]) == 0
    capsys.readouterr()
    assert (run / f"{exported.stem}-compare" / "compare.json").is_file()


def test_main_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "--run-dir" in capsys.readouterr().out


def test_train_config_of_the_main_job(tmp_path):
    from paper_checks.main import QUICK_EPOCHS, MainOptions, train_config

    default = train_config(MainOptions(), tmp_path)
    assert default.preset == "digits-mlp" and default.out == str(tmp_path)
    quick = train_config(MainOptions(quick=True), tmp_path)
    assert quick.epochs == min(default.epochs, QUICK_EPOCHS)
    # --quick keeps the full run's learning-rate milestones (a truncated schedule)
    assert quick.lr_milestones == default.resolved().lr_milestones
    paper = train_config(MainOptions(dataset="fashion-mnist", model="resnet18", epochs=350, device="cuda"), tmp_path)
    assert (paper.preset, paper.per_class, paper.epochs, paper.device) == (
        "paper-fashion-mnist-resnet18", 5000, 350, "cuda")
    custom = train_config(MainOptions(dataset="cifar10", model="vgg11", per_class=7, lr=0.01), tmp_path)
    assert (custom.dataset, custom.model, custom.per_class, custom.lr) == ("cifar10", "vgg11", 7, 0.01)


def test_read_log_uses_the_empirical_readers(tmp_path, capsys):
    from empirical.runs import RunError
    from paper_checks.compare import config_value, read_log

    recs, _ = synthetic_metrics_log(C=4, epochs=6, seed=0)
    run = tmp_path / "run"
    _write_run(run, recs)
    records, config = read_log(run)
    assert [r["epoch"] for r in records] == [r["epoch"] for r in recs]  # the truncated last line is ignored
    assert config_value(config, "per_class") == 50 and config_value(config, "missing") is None
    # A corrupt line before the last one is an error, not a silently skipped epoch (one line: file and line).
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines[:2] + ["{corrupt"] + lines[2:]) + "\n")
    with pytest.raises(RunError, match="metrics.jsonl:3"):
        read_log(run)
    assert main(["compare", str(run), "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert "metrics.jsonl:3" in err and len(err.strip().splitlines()) == 1
    # A log without config.json is read (settings unknown); its own JSONL and the toolkit's CSV export too.
    bare = tmp_path / "bare"
    recs30, _ = synthetic_metrics_log(C=4, epochs=30, scale=10.0, noise=0.0, zero_error_epoch=4, seed=1)
    _write_run(bare, recs30)
    (bare / "config.json").unlink()
    assert main(["compare", str(bare), "--no-figures", "--time", "epoch"]) == 0
    assert main(["compare", str(bare / "metrics.jsonl"), "--no-figures", "--time", "epoch", "--out",
                 str(tmp_path / "o1")]) == 0
    from empirical.export import export_csv

    csv = export_csv(bare)
    assert main(["compare", str(csv), "--no-figures", "--time", "epoch", "--out", str(tmp_path / "o2")]) == 0
    a = json.loads((tmp_path / "o1" / "compare.json").read_text())
    b = json.loads((tmp_path / "o2" / "compare.json").read_text())
    assert a["fit"]["scale_s"] == b["fit"]["scale_s"] and a["quantities"] == b["quantities"]
    capsys.readouterr()
    # An array where a line must be an object: one line naming the file and the line
    (bare / "metrics.jsonl").write_text("[1, 2, 3]\n" + (bare / "metrics.jsonl").read_text())
    assert main(["compare", str(bare), "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert "metrics.jsonl:1" in err and "Traceback" not in err

"""Command line: presets, option precedence, and clear errors (``error: ...``, exit 2/3)."""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from empirical.cli import EXIT_BAD_INPUT, EXIT_DIVERGED, build_parser, config_from_args, main
from empirical.runs import read_config, read_metrics
from empirical.training import PRESETS

GAUSS = ["--dataset", "gaussian", "--model", "mlp", "--per-class", "20", "--batch-size", "20",
         "--data-arg", "dim=8", "--data-arg", "num_classes=3", "--model-arg", "widths=[16, 8]",
         "--threads", "1", "--no-progress"]


def run_cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_train_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "g"
    code, _, err = run_cli(["train", *GAUSS, "--epochs", "3", "--lr", "0.05", "--out", str(out)], capsys)
    assert code == 0, err
    assert [r["epoch"] for r in read_metrics(out)] == [0, 1, 2, 3]
    cfg = read_config(out)["config"]
    assert cfg["model_kwargs"] == {"widths": [16, 8]} and cfg["data_kwargs"] == {"dim": 8, "num_classes": 3}
    assert cfg["lr_milestones"] == [1, 2]
    # a second run into the same folder is refused; --resume of a finished run does nothing more
    code, _, err = run_cli(["train", *GAUSS, "--epochs", "3", "--out", str(out)], capsys)
    assert code == EXIT_BAD_INPUT and err.startswith("error: ") and "--resume" in err
    code, _, err = run_cli(["train", "--out", str(out), "--resume", "--no-progress"], capsys)
    assert code == 0, err
    assert [r["epoch"] for r in read_metrics(out)] == [0, 1, 2, 3]


def test_preset_precedence():
    ns = build_parser().parse_args(["train", "--preset", "digits-mlp", "--epochs", "30", "--measure-epochs", "0,5,30"])
    cfg = config_from_args(ns)
    assert cfg.dataset == "digits" and cfg.epochs == 30 and cfg.measure_epochs == [0, 5, 30]
    assert cfg.lr == PRESETS["digits-mlp"]["lr"] and cfg.preset == "digits-mlp" and cfg.out.endswith("digits-mlp")
    ns = build_parser().parse_args(["train", "--preset", "digits-mlp", "--lr", "0.123", "--model-arg", "widths=[8]"])
    cfg = config_from_args(ns)
    assert cfg.lr == 0.123 and cfg.model_kwargs["widths"] == [8]
    assert cfg.model_kwargs["batch_norm"] == PRESETS["digits-mlp"]["model_kwargs"]["batch_norm"]
    ns = build_parser().parse_args(["train", "--dataset", "digits", "--model", "mlp"])
    assert config_from_args(ns).out.endswith("digits-mlp")


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--dataset", "imagenet", "--epochs", "1"], "unknown dataset"),
        (["train", "--dataset", "gaussian", "--model", "transformer", "--epochs", "1"], "unknown model"),
        (["train", "--dataset", "fashion-mnist", "--data-root", "/nonexistent/nc", "--epochs", "1"], "does not exist"),
        (["train", "--preset", "nope"], "unknown preset"),
        (["train", "--dataset", "gaussian", "--epochs", "3", "--measure-epochs", "1,x"], "cannot parse"),
        (["train", "--dataset", "gaussian", "--epochs", "3", "--measure-epochs", "9"], "outside"),
        (["train", "--dataset", "gaussian", "--epochs", "1", "--lr", "-1"], "lr must be"),
        (["train", "--dataset", "gaussian", "--epochs", "1", "--device", "cuda:7"], "device"),
        (["train", "--dataset", "gaussian", "--epochs", "1", "--model-arg", "nosuchkw=1"], "nosuchkw"),
        (["train", "--dataset", "gaussian", "--epochs", "1", "--data-arg", "nosuchkw=1"], "nosuchkw"),
        (["train", "--dataset", "gaussian", "--epochs", "3", "--keep-checkpoints", "1,x"], "--keep-checkpoints"),
        (["train", "--dataset", "gaussian", "--epochs", "3", "--keep-checkpoints", "7"], "keep_checkpoints"),
        (["train", "--dataset", "gaussian", "--epochs", "3", "--checkpoint-every-s", "-1"], "checkpoint_every_s"),
        (["sweep", "--dataset", "gaussian", "--model", "nonet", "--epochs", "1", "--lrs", "0.1"], "unknown model"),
        (["sweep", "--preset", "nope", "--epochs", "1", "--lrs", "0.1"], "unknown preset"),
    ],
)
def test_bad_input_clear_errors(tmp_path, capsys, args, message):
    code, _, err = run_cli([*args, "--out", str(tmp_path / "x"), "--no-progress"], capsys)
    assert code == EXIT_BAD_INPUT
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


def _write_idx(path, array: np.ndarray, code: int):
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(">u1").tobytes())


def test_labels_out_of_range_in_files(tmp_path, capsys):
    root = tmp_path / "data"
    root.mkdir()
    rng = np.random.default_rng(0)
    for split in ("train", "t10k"):
        _write_idx(root / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 255, (20, 28, 28)), 0x08)
        _write_idx(root / f"{split}-labels-idx1-ubyte.gz", np.array([0, 1, 12, 3] * 5), 0x08)
    code, _, err = run_cli(["train", "--dataset", "fashion-mnist", "--data-root", str(root), "--model", "mlp",
                            "--epochs", "1", "--out", str(tmp_path / "r"), "--no-progress"], capsys)
    assert code == EXIT_BAD_INPUT and "out of range" in err


def test_missing_run_for_resume_plot_export(tmp_path, capsys):
    for args in (["train", "--out", str(tmp_path / "none"), "--resume"], ["plot", str(tmp_path / "none")],
                 ["export-csv", str(tmp_path / "none")]):
        code, _, err = run_cli(args, capsys)
        assert code == EXIT_BAD_INPUT and err.startswith("error: "), (args, err)


def test_divergence_stops_keeps_measured(tmp_path, capsys):
    out = tmp_path / "div"
    code, _, err = run_cli(["train", *GAUSS, "--epochs", "20", "--lr", "1e6", "--out", str(out)], capsys)
    assert code == EXIT_DIVERGED
    assert err.startswith("error: non-finite training loss in epoch") and "kept" in err
    recs = read_metrics(out)
    assert recs and recs[0]["epoch"] == 0  # epoch 0 was measured before training diverged


def test_module_entry_point_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "empirical", "train", "--dataset", "nope", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stderr.startswith("error: unknown dataset") and "Traceback" not in proc.stderr


def test_presets_listed(capsys):
    code, out, _ = run_cli(["presets"], capsys)
    assert code == 0 and "digits-mlp" in out and "paper-fashion-mnist-resnet18" in out


def test_resume_accepts_the_options_it_was_started_with(tmp_path, capsys):
    """`--preset P --out R --resume` and unchanged options continue the run; changed ones are named."""
    out = tmp_path / "p"
    args = ["--preset", "gaussian-mlp", "--epochs", "2", "--measure-epochs", "0,2", "--no-progress",
            "--data-arg", "dim=8"]  # merged into the preset's data_kwargs, on resume too
    code, _, err = run_cli(["train", *args, "--lr", "0.05", "--out", str(out)], capsys)
    assert code == 0, err
    for again in (["--preset", "gaussian-mlp"], ["--preset", "gaussian-mlp", "--lr", "0.05"], args,
                  ["--threads", "1", "--device", "cpu", "--checkpoint-every-s", "10"]):
        code, _, err = run_cli(["train", *again, "--out", str(out), "--resume", "--no-progress"], capsys)
        assert code == 0, (again, err)
    code, _, err = run_cli(["train", "--preset", "digits-mlp", "--lr", "0.3", "--out", str(out), "--resume"], capsys)
    assert code == EXIT_BAD_INPUT and "['lr', 'preset']" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(
        ["train", "--preset", "gaussian-mlp", "--data-arg", "dim=4", "--out", str(out), "--resume"], capsys
    )
    assert code == EXIT_BAD_INPUT and "['data_kwargs']" in err
    assert [r["epoch"] for r in read_metrics(out)] == [0, 2]


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_resume_expands_measure_epochs_words_with_the_stored_epoch_count(tmp_path, capsys, command):
    """`--measure-epochs paper` given again on resume, without `--epochs`, means the schedule of the run's
    own epoch count (6 here), not of its preset's (20): an unchanged option, accepted."""
    out = tmp_path / "m"
    args = ["--preset", "gaussian-mlp", "--measure-epochs", "paper", "--no-progress"]
    extra = ["--lrs", "0.05,0.1", "--no-figures"] if command == "sweep" else []
    code, _, err = run_cli([command, *args, "--epochs", "6", "--out", str(out), *extra], capsys)
    assert code == 0, err
    resume = [a for a in extra if a != "--lrs" and not a[0].isdigit()]
    code, _, err = run_cli([command, *args, "--out", str(out), "--resume", *resume], capsys)
    assert code == 0, err
    code, _, err = run_cli([command, *args, "--epochs", "20", "--out", str(out), "--resume", *resume], capsys)
    assert code == EXIT_BAD_INPUT and "epochs" in err and "measure_epochs" in err


def test_progress_is_one_line_per_measurement_off_a_terminal(tmp_path, capsys):
    """stderr is not a terminal under pytest: no progress bar, one plain line per measured epoch."""
    code, _, err = run_cli(["train", *[a for a in GAUSS if a != "--no-progress"], "--epochs", "6",
                            "--measure-epochs", "0,3,6", "--out", str(tmp_path / "g")], capsys)
    assert code == 0, err
    lines = err.strip().splitlines()
    assert [line.split(": epoch ")[1].split()[0] for line in lines[:-1]] == ["0/6", "3/6", "6/6"]
    assert lines[-1].startswith("run written to") and "\r" not in err and "it/s" not in err


def test_sweep_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "sw"
    code, _, err = run_cli(["sweep", *GAUSS, "--epochs", "2", "--lrs", "0.05,0.1", "--seeds", "0,1",
                            "--max-members-per-chunk", "3", "--no-figures", "--out", str(out)], capsys)
    assert code == 0, err
    s = json.loads((out / "sweep.json").read_text())
    assert len(s["members"]) == 4 and s["spec"]["max_members_per_chunk"] == 3
    assert sorted(p.name for p in (out / "chunks").iterdir()) == ["00", "01"]
    assert s["selected"]["lr"] in (0.05, 0.1)
    for m in s["members"]:
        cfg = read_config(out / m["run_dir"])["config"]
        assert (cfg["lr"], cfg["seed"]) == (m["lr"], m["seed"]) and cfg["model_kwargs"] == {"widths": [16, 8]}

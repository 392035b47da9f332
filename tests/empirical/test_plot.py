"""Plots and CSV export read the run directory."""

from __future__ import annotations

import csv

import pytest

from empirical.cli import main
from empirical.export import export_csv, flatten_record
from empirical.plot import PANELS
from empirical.runs import read_metrics, terminal_phase_start
from empirical.training import TrainConfig, train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("plot") / "run"
    train(TrainConfig(dataset="gaussian", model="mlp", per_class=30, epochs=5, lr=0.05, batch_size=30,
                      data_kwargs={"dim": 16, "num_classes": 4, "separation": 3.0}, model_kwargs={"widths": [32, 8]},
                      measure_epochs=[0, 1, 2, 3, 5], out=str(out), progress=False, num_threads=1))
    return out


def test_plot_writes_pngs(run_dir, capsys):
    assert main(["plot", str(run_dir)]) == 0
    printed = capsys.readouterr().out.split()
    names = {p.split("/")[-1] for p in printed}
    assert {f"{n}.png" for n in PANELS} | {"snr.png", "summary.png"} <= names
    for name in names:
        data = (run_dir / "figures" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_export_csv_parses(run_dir, tmp_path, capsys):
    out = tmp_path / "m.csv"
    assert main(["export-csv", str(run_dir), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    recs = read_metrics(run_dir)
    assert [int(r["epoch"]) for r in rows] == [r["epoch"] for r in recs]
    assert {"snr_singular_values_0", "snr_singular_values_1", "snr_singular_values_2"} <= set(rows[0])
    assert "snr_singular_values" not in rows[0]
    assert float(rows[-1]["nc1"]) == recs[-1]["nc1"]  # repr round-trips floats exactly
    assert rows[0]["train_loss_running"] == ""  # None -> empty cell
    assert export_csv(run_dir) == run_dir / "metrics.csv"


def test_flatten_and_tpt():
    assert flatten_record({"a": [1.0, 2.0], "w": ["x", "y"], "b": None}) == {
        "a_0": 1.0,
        "a_1": 2.0,
        "w": '["x", "y"]',
        "b": None,
    }
    # an index into the records: the one after the last nonzero (or missing) training error
    zero_after = [{"epoch": 0, "train_error": 0.5}, {"epoch": 3, "train_error": 0.0}, {"epoch": 5, "train_error": 0.0}]
    assert terminal_phase_start(zero_after) == 1
    bounced = [{"epoch": 0, "train_error": 0.0}, {"epoch": 2, "train_error": 0.1}, {"epoch": 4, "train_error": 0.0}]
    assert terminal_phase_start(bounced) == 2  # a zero that does not last is not the terminal phase
    assert terminal_phase_start([{"epoch": 0, "train_error": 0.0}, {"epoch": 1}]) is None  # missing is not zero
    assert terminal_phase_start([{"epoch": 0, "train_error": 0.5}]) is None

"""Run directory files: atomic writes, metrics log reading, config, refusal to overwrite."""

from __future__ import annotations

import json

import pytest
import torch

from empirical import runs


def test_metrics_writer_and_reader(tmp_path):
    runs.prepare_run_dir(tmp_path, resume=False)
    path = tmp_path / runs.METRICS_FILE
    runs.append_jsonl(path, {"epoch": 0, "x": 1.5, "bad": float("nan"), "v": [1.0, float("inf")]})
    runs.append_jsonl(path, {"epoch": 1, "x": 2.5})
    recs = runs.read_metrics(tmp_path)
    assert recs == [{"epoch": 0, "x": 1.5, "bad": None, "v": [1.0, None]}, {"epoch": 1, "x": 2.5}]
    # torn last line is ignored by the reader and removed by repair
    with open(tmp_path / runs.METRICS_FILE, "a") as fh:
        fh.write('{"epoch": 2, "x"')
    assert len(runs.read_metrics(tmp_path)) == 2
    assert len(runs.repair_metrics(tmp_path)) == 2
    assert (tmp_path / runs.METRICS_FILE).read_text().endswith("}\n")
    assert runs.measured_epochs(runs.read_metrics(tmp_path)) == {0, 1}


def test_corrupt_middle_line_is_an_error(tmp_path):
    (tmp_path / runs.METRICS_FILE).write_text('{"epoch": 0}\nnot json\n{"epoch": 1}\n')
    with pytest.raises(runs.RunError, match="corrupt line 2"):
        runs.read_metrics(tmp_path)


def test_missing_run_dir(tmp_path):
    with pytest.raises(runs.RunError, match="not found"):
        runs.read_metrics(tmp_path / "nope")
    with pytest.raises(runs.RunError, match="no config.json"):
        runs.read_config(tmp_path)
    with pytest.raises(runs.RunError, match="no checkpoint"):
        runs.load_checkpoint(tmp_path)


def test_atomic_checkpoint_roundtrip(tmp_path):
    state = {"epoch": 3, "model": {"w": torch.arange(4.0)}, "rng": torch.get_rng_state()}
    path = runs.save_checkpoint(tmp_path, state)
    assert path == tmp_path / "checkpoints" / "last.pt"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file left
    back = runs.load_checkpoint(tmp_path)
    assert back["epoch"] == 3 and torch.equal(back["model"]["w"], state["model"]["w"])


def test_config_roundtrip_and_refusal(tmp_path):
    runs.prepare_run_dir(tmp_path, resume=False)
    runs.write_config(tmp_path, {"config": {"lr": 0.1, "path": tmp_path}, "environment": runs.environment_info("cpu")})
    cfg = runs.read_config(tmp_path)
    assert cfg["config"]["lr"] == 0.1 and cfg["environment"]["device"] == "cpu"
    json.loads((tmp_path / "config.json").read_text())
    runs.append_jsonl(tmp_path / runs.METRICS_FILE, {"epoch": 0})
    with pytest.raises(runs.RunError, match="already holds a run"):
        runs.prepare_run_dir(tmp_path, resume=False)
    runs.prepare_run_dir(tmp_path, resume=True)


def test_append_jsonl_is_strict_json(tmp_path):
    """One sanitiser for metrics.jsonl and the GPU benchmark's results: NaN/Inf (Python, NumPy or a torch
    scalar) become null, arrays lists, paths strings; each record is one line, appended."""
    import math

    import numpy as np
    import torch

    from empirical import runs

    path = tmp_path / "r.jsonl"
    runs.append_jsonl(path, {"a": math.nan, "b": torch.tensor(float("inf")), "c": np.arange(3), "d": tmp_path,
                             "e": [np.float64(1.5), -math.inf], "f": torch.tensor(2)})
    runs.append_jsonl(path, {"g": 1})
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"a": None, "b": None, "c": [0, 1, 2], "d": str(tmp_path), "e": [1.5, None], "f": 2}, {"g": 1}]


def test_metrics_line_is_in_the_file_before_its_background_fsync(tmp_path):
    """With a writer, ``append_jsonl`` flushes the line itself (a killed process loses nothing) and leaves only
    the fsync to the writer's thread; a file that vanished before its fsync is an error at ``wait``."""
    from empirical import runs

    writer = runs.CheckpointWriter()
    path = tmp_path / "m.jsonl"
    runs.append_jsonl(path, {"epoch": 0}, writer)
    runs.append_jsonl(path, {"epoch": 1}, writer)
    assert [json.loads(line)["epoch"] for line in path.read_text().splitlines()] == [0, 1]  # before wait()
    writer.wait()
    writer.sync(tmp_path / "gone.jsonl")
    with pytest.raises(FileNotFoundError, match="gone.jsonl"):
        writer.wait()


def test_background_checkpoint_writer_keeps_order_and_reports_errors(tmp_path):
    """Snapshots taken on the caller's thread, written in order by the writer's thread: the last one wins, the
    file is complete after wait(), and a write error reaches the caller at the next wait()."""
    import torch

    writer = runs.CheckpointWriter()
    for k in range(5):
        state = {"epoch": k, "w": torch.full((1000,), float(k))}
        runs.save_checkpoint(tmp_path, state, writer)
        state["w"].zero_()  # mutating after the call cannot change what is written: the snapshot is taken
    writer.wait()
    got = runs.load_checkpoint(tmp_path)
    assert got["epoch"] == 4 and bool(torch.all(got["w"] == 4.0))
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    writer.submit([(blocker / "last.pt", b"data")])  # its parent is a file: the write fails in the thread
    with pytest.raises(OSError):
        writer.wait()
    writer.wait()  # the error is reported once

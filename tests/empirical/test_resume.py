"""Resume a killed run: same metrics as an uninterrupted run (deterministic mode), nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import empirical.runs as runs
from benchmarks.check_gpu_resume import Killed, crash_after_checkpoint
from empirical.runs import read_metrics
from empirical.training import TIMING_KEYS, TrainConfig, train

TIME_KEYS = set(TIMING_KEYS)  # wall-clock values differ between runs
EPOCHS = 8


def config(out, **over) -> TrainConfig:
    base = dict(
        dataset="gaussian", model="mlp", per_class=30, epochs=EPOCHS, lr=0.05, batch_size=32,
        data_kwargs={"dim": 16, "num_classes": 4, "separation": 2.0},
        model_kwargs={"widths": [32, 16], "batch_norm": True}, measure_epochs=list(range(EPOCHS + 1)),
        out=str(out), progress=False, num_threads=1, seed=3, deterministic=True, checkpoint_every=1,
    )
    base.update(over)
    return TrainConfig(**base)


def strip(records):
    return [{k: v for k, v in r.items() if k not in TIME_KEYS} for r in records]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    train(config(out))
    return strip(read_metrics(out))


@pytest.mark.parametrize("before_save", [False, True], ids=["after-checkpoint", "between-metrics-and-checkpoint"])
def test_resume_equals_uninterrupted(tmp_path, reference, before_save):
    out = tmp_path / "run"
    with pytest.raises(Killed), crash_after_checkpoint(4, before_save=before_save):
        train(config(out))
    first = read_metrics(out)
    assert [r["epoch"] for r in first] == [0, 1, 2, 3, 4]
    # a write torn by the kill: the partial last line is dropped on resume
    with open(out / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 5, "train_err')
    train(TrainConfig(out=str(out), progress=False, num_threads=1), resume=True)
    resumed = read_metrics(out)
    assert [r["epoch"] for r in resumed] == list(range(EPOCHS + 1))  # no duplicates, nothing lost
    assert strip(resumed[:5]) == strip(first)  # what was measured is kept as it was
    assert strip(resumed) == reference  # exactly equal, float for float


def test_resume_refuses_missing_or_existing(tmp_path):
    with pytest.raises(runs.RunError, match="not a run directory"):
        train(config(tmp_path / "nothing"), resume=True)
    train(config(tmp_path / "r", epochs=1, measure_epochs=[1]))
    with pytest.raises(runs.RunError, match="already holds a run"):
        train(config(tmp_path / "r", epochs=1, measure_epochs=[1]))


def test_sigkill_subprocess_then_cli_resume(tmp_path, reference):
    """A real kill (SIGKILL) of `python -m empirical train`, then `--resume` from the CLI."""
    out = tmp_path / "killed"
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(config(out).to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "empirical", "train", "--config", str(cfg_file), "--out", str(out)]
    proc = subprocess.Popen(cmd + ["--no-progress"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    metrics = out / "metrics.jsonl"
    while time.time() < deadline and proc.poll() is None:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be killed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    measured = read_metrics(out)
    assert 3 <= len(measured) < EPOCHS + 1
    done = subprocess.run(
        [sys.executable, "-m", "empirical", "train", "--out", str(out), "--resume", "--no-progress"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    resumed = read_metrics(out)
    assert strip(resumed[: len(measured)]) == strip(measured)
    assert strip(resumed) == reference


def test_checkpoints_by_time_and_epochs_after_the_checkpoint_are_skipped(tmp_path, reference, monkeypatch):
    """Checkpoints every 3 epochs (time-based ones off): killed just before epoch 6's, the run resumes from
    epoch 3, retrains 4-6 without measuring them again (they are in metrics.jsonl), and ends equal."""
    out = tmp_path / "run"
    saved = []
    original = runs.save_checkpoint
    monkeypatch.setattr(runs, "save_checkpoint",
                        lambda d, s, w=None: (saved.append(s["epoch"]), original(d, s, w))[1])
    with pytest.raises(Killed), crash_after_checkpoint(6, before_save=True):
        train(config(out, checkpoint_every=3, checkpoint_every_s=0.0))
    assert saved == [3] and runs.load_checkpoint(out)["epoch"] == 3  # killed before epoch 6's was written
    first = read_metrics(out)
    assert [r["epoch"] for r in first] == list(range(7))
    train(TrainConfig(out=str(out), progress=False), resume=True)
    resumed = read_metrics(out)
    assert resumed[:7] == first  # skipped: the records of epochs 4-6 are the first run's, untouched
    assert strip(resumed) == reference
    saved.clear()
    train(config(tmp_path / "t", checkpoint_every=None, checkpoint_every_s=3600.0))
    assert saved == [EPOCHS]  # by time (an hour) and at the end: one checkpoint for the whole run

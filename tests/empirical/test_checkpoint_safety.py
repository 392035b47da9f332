"""Reading a run directory someone else wrote runs none of their code (issue 15, item 7).

Checkpoints hold only tensors, dicts, lists and plain values, so ``torch.load(..., weights_only=True)``
reads them; every load in the toolkit goes through :func:`empirical.runs.read_checkpoint`, which uses it.
A checkpoint carrying a pickled callable is refused in one line (API and CLI) and the callable never runs.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.check_gpu_resume import Killed, crash_after_checkpoint
from empirical import runs
from empirical.loading import load_run
from empirical.runs import RunError, read_metrics
from empirical.state import rng_states, set_rng_states
from empirical.training import TIMING_KEYS, TrainConfig, train

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 3


def _touch(path: str) -> None:
    """The payload: creates a marker file (what an attacker's ``os.system`` would do, without a shell)."""
    Path(path).write_text("this ran while the checkpoint was loaded\n")


class Payload:
    """An object whose unpickling calls :func:`_touch` (``__reduce__``): code run by loading a file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return _touch, (self.marker,)


def config(out: Path) -> TrainConfig:
    """A tiny deterministic digits MLP: a checkpoint every epoch, the weights of epochs 0 and 3 kept."""
    return TrainConfig(dataset="digits", model="mlp", per_class=40, epochs=EPOCHS, lr=0.05, batch_size=50,
                       model_kwargs={"widths": [32, 16]}, measure_epochs=list(range(EPOCHS + 1)),
                       keep_checkpoints=[0, EPOCHS], out=str(out), progress=False, num_threads=1, seed=5,
                       deterministic=True, checkpoint_every=1)


def strip(records):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("safe") / "run"
    train(config(out))
    return out


def poisoned_copy(run: Path, dest: Path, marker: Path, file: Path | None = None) -> Path:
    """A copy of ``run`` whose checkpoint ``file`` (default ``last.pt``) also carries a :class:`Payload`."""
    shutil.copytree(run, dest)
    path = runs.checkpoint_path(dest) if file is None else dest / file
    state = runs.read_checkpoint(path)
    state["note"] = Payload(marker)
    torch.save(state, path)
    return path


def test_checkpoints_of_a_real_run_load_with_weights_only(finished):
    """``last.pt`` and the kept epochs' files load with plain ``torch.load(weights_only=True)``; nothing in
    them refers to a class or function beyond what torch allows by default."""
    files = sorted((finished / runs.CHECKPOINT_DIR).glob("*.pt"))
    assert [p.name for p in files] == ["epoch-0000.pt", f"epoch-{EPOCHS:04d}.pt", "last.pt"]
    for path in files:
        assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == [], path
        state = torch.load(path, weights_only=True)
        assert state["epoch"] in (0, EPOCHS) and state["model"]
    last = torch.load(runs.checkpoint_path(finished), weights_only=True)
    assert {"torch", "numpy", "python", "batches"} <= set(last["rng"])
    assert last["optimizer"]["param_groups"][0]["momentum"] == 0.9


def test_random_states_round_trip_through_a_weights_only_load(tmp_path):
    """Every random state saved, read back with ``weights_only=True`` and restored gives the same next draws
    (torch, NumPy with a cached Gaussian, Python with a cached ``gauss``, the batch-order generator)."""
    gen = torch.Generator().manual_seed(11)
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.standard_normal(), random.gauss(0.0, 1.0)  # each leaves a cached second Gaussian in its state
    torch.save(rng_states(gen), tmp_path / "rng.pt")

    def draws():
        return (torch.rand(3).tolist(), np.random.standard_normal(3).tolist(), np.random.rand(2).tolist(),
                [random.gauss(0.0, 1.0) for _ in range(3)], random.random(), torch.rand(3, generator=gen).tolist())

    expected = draws()
    assert draws() != expected  # the states moved on
    set_rng_states(torch.load(tmp_path / "rng.pt", weights_only=True), gen)
    assert draws() == expected


def test_load_run_refuses_a_checkpoint_carrying_a_callable(finished, tmp_path):
    marker = tmp_path / "marker"
    path = poisoned_copy(finished, tmp_path / "run", marker)
    with pytest.raises(RunError) as info:
        load_run(tmp_path / "run")
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"refusing to load {path}: it holds objects other than tensors and plain values")
    assert "_touch" in message and "older version" in message and "may run code" in message
    assert not marker.exists()
    # a kept epoch's file is read through the same function
    kept = poisoned_copy(finished, tmp_path / "kept", marker, Path(runs.CHECKPOINT_DIR) / "epoch-0000.pt")
    with pytest.raises(RunError, match=f"refusing to load {kept}"):
        load_run(tmp_path / "kept", 0)
    assert not marker.exists()
    # the control: the payload is live, an unrestricted load runs it
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_cli_resume_refuses_a_checkpoint_carrying_a_callable(finished, tmp_path):
    """``python -m empirical train --resume`` on the poisoned copy: one line, exit 2, nothing run or written.
    The payload's module is importable in that process (run from the repository root), so an unrestricted
    load would run it."""
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    path = poisoned_copy(finished, run, marker)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "empirical", "train", "--out", str(run), "--resume", "--no-progress"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: refusing to load {path}"), proc.stderr
    assert not marker.exists()
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_resume_from_a_weights_only_checkpoint_equals_the_uninterrupted_run(finished, tmp_path):
    """Killed after epoch 1's checkpoint, whose file loads with ``weights_only=True``; resumed, the metrics
    equal the uninterrupted run's float for float (deterministic mode)."""
    out = tmp_path / "run"
    with pytest.raises(Killed), crash_after_checkpoint(1):
        train(config(out))
    assert torch.load(runs.checkpoint_path(out), weights_only=True)["epoch"] == 1
    train(TrainConfig(out=str(out), progress=False, num_threads=1), resume=True)
    assert strip(read_metrics(out)) == strip(read_metrics(finished))
    assert [r["epoch"] for r in read_metrics(out)] == list(range(EPOCHS + 1))


def test_a_checkpoint_of_the_older_format_is_refused(finished, tmp_path):
    """Before this change the random states were pickled as they come (NumPy's state holds an array):
    such a checkpoint is refused, naming NumPy's classes, and ``--resume`` says why in one line."""
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    state = runs.load_checkpoint(run)
    state["rng"]["numpy"], state["rng"]["python"] = np.random.get_state(), random.getstate()
    torch.save(state, runs.checkpoint_path(run))
    with pytest.raises(RunError, match=r"refusing to load .*last\.pt: .*numpy\.ndarray.*older version of this toolkit"):
        train(TrainConfig(out=str(run), progress=False, num_threads=1), resume=True)


def test_an_unreadable_checkpoint_is_one_line(tmp_path):
    path = runs.checkpoint_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(RunError) as info:
        runs.load_checkpoint(tmp_path)
    assert str(info.value).startswith(f"cannot read checkpoint {path}: ")
    assert len(str(info.value).splitlines()) == 1


def test_sweep_checkpoints_load_with_weights_only(tmp_path):
    """A sweep's chunk checkpoints and its members' checkpoints hold only tensors and plain values too."""
    from empirical.sweep import SweepSpec, run_sweep

    base = TrainConfig(dataset="gaussian", model="mlp", per_class=20, epochs=1, lr=0.05, batch_size=40,
                       data_kwargs={"dim": 8, "num_classes": 3}, model_kwargs={"widths": [16]},
                       measure_epochs=[0, 1], out=str(tmp_path), progress=False, num_threads=1)
    run_sweep(SweepSpec(base, lrs=[0.05, 0.1], weight_decays=[5e-4], seeds=[0]), tmp_path,
              figures=False)
    files = sorted(tmp_path.rglob("*.pt"))
    assert len(files) >= 3  # a chunk checkpoint and each member's last.pt
    for path in files:
        assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == [], path
        torch.load(path, weights_only=True)

"""load_run: a run's model (kept epochs or the last checkpoint), data and config, ready for analysis."""

from __future__ import annotations

import pytest

from empirical.config import TrainConfig
from empirical.loading import kept_epochs, load_run
from empirical.measurement import measure
from empirical.runs import RunError, read_metrics
from empirical.training import TIMING_KEYS, train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("load") / "r"
    train(
        TrainConfig(
            dataset="gaussian",
            model="mlp",
            per_class=30,
            epochs=4,
            lr=0.05,
            batch_size=40,
            data_kwargs={"dim": 16, "num_classes": 4},
            model_kwargs={"widths": [32, 16], "batch_norm": True},
            out=str(out),
            progress=False,
            num_threads=1,
            measure_epochs=[0, 2, 4],
            keep_checkpoints="measured",
        )
    )
    return out


@pytest.mark.parametrize("epoch", [0, 2, 4, None])
def test_loaded_model_reproduces_the_measured_metrics(run, epoch):
    """Measuring the loaded model again gives the run's record exactly (same weights, data, BN statistics)."""
    assert kept_epochs(run) == [0, 2, 4]
    loaded = load_run(run, epoch)
    assert loaded.epoch == (4 if epoch is None else epoch) and not loaded.model.training
    assert loaded.config.epochs == 4 and loaded.num_classes == 4
    m = measure(loaded.model, loaded.train.x, loaded.train.y, loaded.num_classes,
                weight_decay=loaded.config.weight_decay, test_x=loaded.test.x, test_y=loaded.test.y)
    rec = next(r for r in read_metrics(run) if r["epoch"] == loaded.epoch)
    for key in ("train_error", "test_error", "loss", "nc1", "nc3", "l_perp", "snr_singular_values"):
        assert m[key] == rec[key], key


def test_missing_epoch_is_a_clear_error(run, tmp_path):
    with pytest.raises(RunError, match=r"no weights of epoch 3 .*kept epochs \[0, 2, 4\]"):
        load_run(run, 3)
    with pytest.raises(RunError, match="not a run directory"):
        load_run(tmp_path / "nothing")


def test_only_requested_epochs_are_kept(tmp_path):
    out = tmp_path / "k"
    train(TrainConfig(dataset="gaussian", model="mlp", per_class=20, epochs=3, lr=0.05, batch_size=20,
                      data_kwargs={"dim": 8, "num_classes": 3}, model_kwargs={"widths": [8]}, out=str(out),
                      progress=False, num_threads=1, measure_epochs=[0, 3], keep_checkpoints=[1, 3]))
    assert kept_epochs(out) == [1, 3]
    assert [r["epoch"] for r in read_metrics(out)] == [0, 3]
    assert set(TIMING_KEYS) <= set(read_metrics(out)[-1])
    assert load_run(out, 1).epoch == 1

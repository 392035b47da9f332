"""The unconstrained-features model (``--model ufm``): trained, measured and refused exactly like a network.

Real training on small subsets of digits / the gaussian mixture (one CPU thread, seconds).
"""

from __future__ import annotations

import json

import pytest
import torch

from empirical.cli import main
from empirical.loading import load_run
from empirical.measurement import measure
from empirical.models import MODELS, UFM, build_model, takes_sample_indices
from empirical.models.ufm import NO_TEST_SET_NOTE
from empirical.runs import read_config, read_metrics
from empirical.training import TrainConfig, seed_everything, train

TEST_KEYS = ("test_error", "test_loss_nowd")


def ufm_config(out, **over) -> TrainConfig:
    base = dict(model="ufm", dataset="digits", per_class=30, epochs=20, lr=3.0, batch_size=50, lr_milestones=[],
                measure_epochs=[0, 10, 20], model_kwargs={"init_scale": 0.3}, out=str(out), progress=False,
                num_threads=1, seed=0)
    base.update(over)
    return TrainConfig(**base)


def test_model_interface():
    torch.manual_seed(0)
    model = build_model("ufm", num_classes=4, num_samples=2000, dim=16, init_scale=0.5)
    assert isinstance(model, UFM) and takes_sample_indices("UFM") and not takes_sample_indices("mlp")
    assert model.feature_dim == 16 and model.fc.in_features == 16 and model.fc.out_features == 4
    assert model.input_shape == () and MODELS["ufm"].sample_indices
    idx = torch.tensor([3, 0, 1999])
    logits, h = model.forward_with_features(idx)
    torch.testing.assert_close(h, model.embedding.weight[idx])  # the features are the rows of H
    torch.testing.assert_close(logits, model.fc(h))
    # initial features N(0, init_scale^2): 32,000 draws, so the sample std is within 2% (about 5 sigma)
    assert abs(model.embedding.weight.std().item() - 0.5) < 0.01
    assert UFM(10, 3).feature_dim == 64 and abs(UFM(4000, 3).embedding.weight.std().item() - 1.0) < 0.02  # defaults
    with pytest.raises(ValueError, match="num_samples"):
        build_model("ufm", num_classes=4, input_shape=(8,))


@pytest.mark.parametrize("dim", [0, -3, 1.5, "abc", True])
def test_bad_dim_api(dim):
    with pytest.raises(ValueError, match="ufm dim must be a positive integer"):
        UFM(10, 3, dim=dim)


def test_trains_to_zero_error_and_collapses(tmp_path):
    """The UFM fits digits (300 samples) in 10 epochs and its NC1 falls by orders of magnitude; no test metrics."""
    out = tmp_path / "ufm"
    train(ufm_config(out))
    recs = read_metrics(out)
    assert [r["epoch"] for r in recs] == [0, 10, 20]
    assert recs[0]["train_error"] > 0.8 and recs[-1]["train_error"] == 0.0
    # measured (seed 0): NC1 8.2 -> 1e-3; a factor 100 leaves a wide margin
    assert recs[-1]["nc1"] < recs[0]["nc1"] / 100
    assert recs[-1]["class_counts"] == [30] * 10 and recs[-1]["train_count"] == 300
    for r in recs:
        assert not set(TEST_KEYS) & set(r)  # absent, not NaN or null
        json.dumps(r, allow_nan=False)
        assert r["identity_residual"] < 1e-10  # the measurement is the networks' (float64 statistics)
    stored = read_config(out)
    assert stored["notes"] == [NO_TEST_SET_NOTE]
    cfg = stored["config"]
    assert cfg["model"] == "ufm" and cfg["measure_test"] is False
    env = stored["environment"]
    assert cfg["amp"] == "auto" and not env["amp_bf16"] and env["compile_mode"] == "none"


def test_same_protocol_as_a_network(tmp_path):
    """Same seed: the UFM run has the MLP run's classes, counts, steps and learning-rate schedule (gaussian
    mixture, C = 4), and its first step moves exactly the features of the MLP run's first batch."""
    common = dict(dataset="gaussian", per_class=25, epochs=4, lr=0.05, momentum=0.0, weight_decay=0.0,
                  batch_size=60, data_kwargs={"num_classes": 4, "dim": 8}, measure_epochs=[0, 1, 2, 3, 4],
                  lr_milestones=None, keep_checkpoints=[0, 1], model_kwargs={})
    ufm_out, mlp_out = tmp_path / "ufm", tmp_path / "mlp"
    train(ufm_config(ufm_out, **common))
    train(ufm_config(mlp_out, **{**common, "model": "mlp", "model_kwargs": {"widths": [16]}}))
    u, m = read_config(ufm_out)["config"], read_config(mlp_out)["config"]
    differ = sorted(k for k in u if u[k] != m[k])
    assert differ == ["measure_test", "model", "model_kwargs", "out"]
    ru, rm = read_metrics(ufm_out), read_metrics(mlp_out)
    for key in ("epoch", "step", "lr", "lr_weighted_steps", "class_counts", "train_count", "lam"):
        assert [r[key] for r in ru] == [r[key] for r in rm], key
    assert ru[-1]["step"] == 4 * (100 // 60)  # drop_last: one step per epoch
    assert len(ru[-1]["snr_singular_values"]) == 3  # C - 1 for the run's C = 4
    # batch order: with no momentum and no weight decay, the first step changes exactly the rows of H
    # indexed by the run's first batch, the first 60 of the seeded batch generator's permutation
    before, after = load_run(ufm_out, epoch=0), load_run(ufm_out, epoch=1)
    changed = (before.model.embedding.weight != after.model.embedding.weight).any(dim=1)
    first_batch = torch.randperm(100, generator=seed_everything(0))[:60]
    assert set(torch.nonzero(changed).reshape(-1).tolist()) == set(first_batch.tolist())
    # measurement without NCMonitor on the loaded run: the run's own record, no test set
    assert before.test is None and before.train.x.dtype == torch.int64
    res = measure(after.model, after.train.x, after.train.y, after.num_classes, weight_decay=0.0)
    assert res["nc1"] == pytest.approx(ru[1]["nc1"], rel=1e-9) and not set(TEST_KEYS) & set(res)


def test_full_batch_and_bf16(tmp_path):
    """batch_size = n: one step per epoch; explicit amp='bf16' still runs (autocast leaves the indices alone)."""
    train(ufm_config(tmp_path / "fb", batch_size=300, epochs=3, measure_epochs=[3]))
    (rec,) = read_metrics(tmp_path / "fb")
    assert rec["step"] == 3 and rec["train_count"] == 300
    train(ufm_config(tmp_path / "bf16", epochs=1, measure_epochs=[1], amp="bf16"))
    assert read_config(tmp_path / "bf16")["environment"]["amp_bf16"] is True


def test_cli_train_plot_export(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--model", "ufm", "--dataset", "digits", "--per-class", "20", "--epochs", "2", "--lr", "1",
            "--batch-size", "200", "--model-arg", "dim=8", "--measure-epochs", "all", "--no-progress",
            "--threads", "1", "--out", str(out)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.count(NO_TEST_SET_NOTE) == 1  # said once
    assert main(["plot", str(out)]) == 0
    assert main(["export-csv", str(out)]) == 0
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "train_error" in header and "test_error" not in header


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "301"], "batch_size 301 exceeds the 300 training samples"),
    (["--lr", "0"], "lr must be a positive finite number"),
    (["--lr", "-1"], "lr must be a positive finite number"),
    (["--lr", "nan"], "lr must be a positive finite number"),
    (["--lr", "inf"], "lr must be a positive finite number"),
    (["--model-arg", "dim=0"], "ufm dim must be a positive integer"),
    (["--model-arg", "dim=2.5"], "ufm dim must be a positive integer"),
    (["--model-arg", "dim=abc"], "ufm dim must be a positive integer"),
    (["--model-arg", "init_scale=0"], "ufm init_scale must be a positive finite number"),
    (["--model-arg", "widths=[4]"], "bad --model-arg"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    code = main(["train", "--model", "ufm", "--dataset", "digits", "--per-class", "30", "--epochs", "1",
                 "--no-progress", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and err.startswith("error: ")
    assert not out.exists()  # nothing written


def test_sweep_runs_the_ufm(tmp_path, capsys):
    """Two learning rates trained together (the default threaded interleaving) equal their single runs."""
    out = tmp_path / "sweep"
    argv = ["--model", "ufm", "--dataset", "digits", "--per-class", "20", "--epochs", "2", "--batch-size", "50",
            "--measure-epochs", "all", "--no-progress", "--threads", "1"]
    assert main(["sweep", *argv, "--lrs", "0.5,1", "--no-figures", "--out", str(out)]) == 0
    assert capsys.readouterr().err.count(NO_TEST_SET_NOTE) == 1
    single = tmp_path / "single"
    assert main(["train", *argv, "--lr", "1", "--out", str(single)]) == 0
    member = read_metrics(out / "lr1-wd0.0005-seed0")
    assert [r["epoch"] for r in member] == [0, 1, 2] and not any(set(TEST_KEYS) & set(r) for r in member)
    assert read_config(out / "lr0.5-wd0.0005-seed0")["notes"] == [NO_TEST_SET_NOTE]
    # an interleaved member is its single run: the same steps in the same order
    assert member[-1]["loss"] == read_metrics(single)[-1]["loss"]

"""End-to-end training runs (gaussian and digits, MLP): keys, epochs, identity, collapse."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from empirical.measurement import METRIC_KEYS
from empirical.runs import read_config, read_metrics
from empirical.schedule import lr_milestones, measurement_epochs
from empirical.training import PRESETS, TrainConfig, check_all_classes_present, train

REQUIRED = {
    "epoch", "step", "lr", "lr_weighted_steps", "time_s", "train_error", "test_error", "loss", "loss_nowd",
    "lam", "l_nc1", "l_nc23", "l_perp", "l_central", "rho_perp", "identity_residual", "central_path_distance",
    "nc1", "nc1_notebook", "nc2_equinorm_means", "nc2_equinorm_classifiers", "nc2_equiangular_means",
    "nc2_equiangular_classifiers", "nc2_maxangle_means", "nc2_maxangle_classifiers", "nc3", "nc4",
    "snr_singular_values", "lam_notebook", "l_nc1_notebook", "l_nc23_notebook", "l_perp_notebook",
    "train_loss_running",
}


def gaussian_config(out, **over) -> TrainConfig:
    base = dict(
        dataset="gaussian", model="mlp", per_class=30, epochs=6, lr=0.05, batch_size=40,
        data_kwargs={"dim": 16, "num_classes": 4, "separation": 2.0}, model_kwargs={"widths": [32, 8]},
        out=str(out), progress=False, num_threads=1, seed=0,
    )
    base.update(over)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def gaussian_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "gauss"
    train(gaussian_config(out, measure_epochs=[0, 1, 2, 3, 4, 5, 6], progress=True))  # tqdm bar on stderr
    return out


def test_metrics_keys_and_epochs(gaussian_run):
    recs = read_metrics(gaussian_run)
    assert [r["epoch"] for r in recs] == [0, 1, 2, 3, 4, 5, 6]
    for r in recs:
        assert REQUIRED <= set(r), REQUIRED - set(r)
        assert set(METRIC_KEYS) <= set(r)
        json.dumps(r, allow_nan=False)  # strict JSON
    steps = [r["step"] for r in recs]
    assert steps == sorted(steps) and steps[0] == 0
    # 120 samples, batch 40, drop_last: 3 steps per epoch
    assert steps[-1] == 6 * 3
    assert recs[-1]["lr_weighted_steps"] == pytest.approx(
        sum(0.05 * 0.1 ** (e >= 2) * 0.1 ** (e >= 4) * 3 for e in range(6))
    )
    assert recs[0]["train_loss_running"] is None and recs[1]["train_loss_running"] > 0
    C = 4
    assert recs[0]["lam"] == pytest.approx(C * 5e-4 / 2) and recs[0]["lam_notebook"] == pytest.approx(5e-4 / 2)
    assert len(recs[-1]["snr_singular_values"]) == C - 1
    assert all(0 <= r["train_error"] <= 1 and 0 <= r["nc4"] <= 1 for r in recs)


def test_identity_residual_is_tiny(gaussian_run):
    """loss is computed from the outputs sample by sample; the three terms from streamed stats."""
    for r in read_metrics(gaussian_run):
        assert r["identity_residual"] < 1e-12
        assert r["l_perp"] >= 0 and r["l_nc1"] >= 0 and r["l_nc23"] >= 0
        assert r["loss"] >= r["loss_nowd"]
        assert math.isclose(r["l_central"], r["l_nc1"] + r["l_nc23"], rel_tol=1e-12)
        total_nb = r["l_nc1_notebook"] + r["l_nc23_notebook"] + r["l_perp_notebook"]
        assert total_nb == pytest.approx(r["loss_nowd"] + (r["loss"] - r["loss_nowd"]) / 4, rel=1e-8)


def test_config_records_everything(gaussian_run):
    cfg = read_config(gaussian_run)
    assert cfg["config"]["dataset"] == "gaussian" and cfg["config"]["seed"] == 0
    assert cfg["config"]["lr_milestones"] == lr_milestones(6)
    for key in ("python", "torch", "numpy", "device"):
        assert key in cfg["environment"]
    assert TrainConfig.from_dict(cfg["config"]).resolved() == TrainConfig.from_dict(cfg["config"])
    assert (gaussian_run / "checkpoints" / "last.pt").is_file()


def test_digits_collapse_progresses(tmp_path):
    """NC1 decreases over training on real data (scikit-learn digits, MLP preset, short)."""
    cfg = TrainConfig(**{**PRESETS["digits-mlp"], "epochs": 24, "out": str(tmp_path / "d"), "progress": False,
                         "num_threads": 1, "measure_epochs": [0, 2, 8, 24]})
    train(cfg)
    recs = read_metrics(tmp_path / "d")
    nc1 = [r["nc1"] for r in recs]
    assert all(b < a for a, b in zip(nc1, nc1[1:])), nc1
    assert recs[-1]["train_error"] < 0.01 and recs[-1]["test_error"] < 0.1
    assert recs[-1]["nc4"] < recs[1]["nc4"]
    assert max(r["identity_residual"] for r in recs) < 1e-12


def test_ce_loss_trains_and_is_measured_with_the_mse_decomposition(tmp_path):
    cfg = gaussian_config(tmp_path / "ce", loss="ce", epochs=6, lr=0.3, measure_epochs=[0, 6])
    train(cfg)
    first, last = read_metrics(tmp_path / "ce")
    assert last["train_loss_running"] > 0 and last["train_error"] < first["train_error"]
    # the decomposition of the paper's MSE loss holds for any classifier, CE-trained too
    assert last["lam"] == pytest.approx(4 * cfg.weight_decay / 2)
    assert last["identity_residual"] < 1e-12


def test_measurement_schedule():
    assert measurement_epochs(350)[1:6] == [1, 2, 3, 4, 5] and measurement_epochs(350)[-1] == 350
    assert measurement_epochs(7) == list(range(8))
    assert lr_milestones(350) == [116, 233]


def test_empty_class_is_refused_before_training():
    with pytest.raises(ValueError, match="empty class.*\\[1\\]"):
        check_all_classes_present(torch.tensor([0, 2, 2]), 3)
    check_all_classes_present(torch.tensor([0, 1, 2]), 3)


def test_bad_config_values(tmp_path):
    with pytest.raises(ValueError, match="unknown loss"):
        gaussian_config(tmp_path, loss="hinge").resolved()
    with pytest.raises(ValueError, match="outside"):
        gaussian_config(tmp_path, measure_epochs=[99]).resolved()
    with pytest.raises(ValueError, match="unknown TrainConfig option"):
        TrainConfig.from_dict({"bogus": 1})
    # counts from a JSON config: 128.0 reads as 128 (it trained before, as batch sizes were cast where used);
    # 128.5 or True is a one-line error before anything is written (it once failed mid-run in the batch loop)
    whole = gaussian_config(tmp_path, batch_size=50.0, epochs=2.0, per_class=40.0).resolved()
    assert (whole.batch_size, whole.epochs, whole.per_class) == (50, 2, 40) and type(whole.batch_size) is int
    for option, value in (("batch_size", 50.5), ("eval_batch_size", True), ("epochs", 2.5), ("seed", "1"),
                          ("image_size", 32.5)):
        with pytest.raises(ValueError, match=f"{option} must be a whole number"):
            gaussian_config(tmp_path, **{option: value}).resolved()
    # any integer type (NumPy's, from a script), as theory.tiling.check_tile accepts for the tile
    numpy_ints = gaussian_config(tmp_path, seed=np.int64(3), tile=np.int32(64)).resolved()
    assert (numpy_ints.seed, numpy_ints.tile) == (3, 64) and type(numpy_ints.seed) is int
    # epoch lists: 10.0 reads as 10, 10.7 is refused (it was cut to 10)
    assert gaussian_config(tmp_path, lr_milestones=[1.0], measure_epochs=[0.0, 2]).resolved().lr_milestones == [1]
    for option in ("lr_milestones", "measure_epochs", "keep_checkpoints"):
        with pytest.raises(ValueError, match=f"{option} must be a whole number, got 1.7"):
            gaussian_config(tmp_path, **{option: [1.7]})


def test_fashion_mnist_real_files(tmp_path):
    """The real Fashion-MNIST IDX files (Debian package) through the whole pipeline."""
    try:
        cfg = TrainConfig(dataset="fashion-mnist", model="mlp", per_class=10, epochs=1, lr=0.01, batch_size=50,
                          model_kwargs={"widths": [32, 16]}, measure_epochs=[0, 1], out=str(tmp_path / "f"),
                          progress=False, num_threads=1)
        train(cfg)
    except FileNotFoundError as exc:
        pytest.skip(f"Fashion-MNIST files not installed: {exc}")
    recs = read_metrics(tmp_path / "f")
    assert [r["epoch"] for r in recs] == [0, 1]
    assert recs[-1]["identity_residual"] < 1e-12 and 0 <= recs[-1]["test_error"] <= 1


@pytest.mark.slow
def test_digits_preset_reaches_terminal_phase(tmp_path):
    """The main job's preset (350 epochs, ~15-40 s): zero training error early, deep collapse."""
    train(TrainConfig(**{**PRESETS["digits-mlp"], "out": str(tmp_path / "main"), "progress": False}))
    recs = read_metrics(tmp_path / "main")
    tpt = next(r["epoch"] for r in recs if r["train_error"] == 0)
    last = recs[-1]
    assert tpt <= 50 and all(r["train_error"] == 0 for r in recs if r["epoch"] >= 121)
    assert last["nc1"] < 1e-3 and last["nc3"] < 0.1 and last["nc4"] == 0
    assert last["rho_perp"] < 0.1  # after the learning-rate decays the network sits near the central path
    assert max(r["identity_residual"] for r in recs) < 1e-12


def test_bf16_autocast_path_and_global_state_restored(tmp_path):
    """The GPU training path (bf16 autocast) runs on the CPU too; torch's global settings come back."""
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    train(
        gaussian_config(tmp_path / "amp", epochs=1, measure_epochs=[1], amp="bf16", deterministic=True, num_threads=1)
    )
    (rec,) = read_metrics(tmp_path / "amp")
    assert read_config(tmp_path / "amp")["environment"]["amp_bf16"] is True
    assert rec["identity_residual"] < 1e-12  # statistics stay float64 whatever the training precision
    assert torch.get_num_threads() == threads and torch.are_deterministic_algorithms_enabled() == det


def test_batch_larger_than_dataset_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no step"):
        train(gaussian_config(tmp_path / "big", batch_size=1000))
    train(gaussian_config(tmp_path / "ok", batch_size=1000, drop_last=False, epochs=1, measure_epochs=[1]))
    assert read_metrics(tmp_path / "ok")[0]["step"] == 1


def test_partial_config_file_keeps_preset_values(tmp_path):
    from empirical.cli import build_parser, config_from_args

    f = tmp_path / "c.json"
    f.write_text('{"epochs": 10}')
    ns = build_parser().parse_args(
        ["train", "--preset", "digits-mlp", "--config", str(f), "--out", str(tmp_path / "r")]
    )
    cfg = config_from_args(ns)
    assert cfg.epochs == 10
    assert cfg.lr == PRESETS["digits-mlp"]["lr"] and cfg.per_class == PRESETS["digits-mlp"]["per_class"]
    assert cfg.num_threads == 1


def test_resume_keeps_the_stored_configuration(tmp_path):
    from empirical.cli import main

    out = tmp_path / "g"
    train(gaussian_config(out, epochs=2, measure_epochs=[2], device="cpu", num_threads=1))
    with pytest.raises(ValueError, match="only"):
        train(TrainConfig(out=str(out)), resume=True, overrides={"epochs": 5})
    assert main(["train", "--out", str(out), "--resume", "--epochs", "5"]) == 2  # refused, with a message
    train(TrainConfig(out=str(out), device="cuda"), resume=True)  # no override: stored device "cpu" is used
    assert read_config(out)["config"]["device"] == "cpu"


def test_weight_penalty_is_theory_ridge_in_float64():
    """The running objective's weight-decay term is theory.ridge_penalty: (wd/2) sum ||theta||^2, float64."""
    import theory
    from empirical.training import weight_penalty

    torch.manual_seed(0)
    params = [torch.randn(3, 4), torch.randn(5), torch.randn(2, 2, 3, 3)]
    got = weight_penalty(params, 5e-4)
    assert got.dtype == torch.float64
    want = 0.5 * 5e-4 * sum(float((p.double() ** 2).sum()) for p in params)
    assert float(got) == pytest.approx(want, rel=1e-14)
    assert float(got) == float(theory.ridge_penalty(torch.cat([p.reshape(-1) for p in params]), lam=5e-4))


@pytest.mark.parametrize("milestones", [[2, 4], [0, 2, 2, 5], [-1, 3]])
def test_lr_at_is_multisteplr_float_for_float(milestones):
    """The loop's per-epoch learning rate equals torch's MultiStepLR stepped once per epoch, bitwise
    (milestone 0 applied from the start, a negative one never, a repeated one as gamma ** count)."""
    from empirical.schedule import lr_at

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
    for epoch in range(1, 9):
        assert lr_at(epoch, 0.4, milestones, 0.1) == opt.param_groups[0]["lr"], epoch
        opt.step()
        sched.step()


def test_eval_mode_divergence_stops_the_run_and_keeps_measured_epochs(tmp_path, capsys):
    """A network whose training loss is finite (train-mode BatchNorm normalises by the batch) but whose
    eval-mode outputs are not (its running mean is NaN, as after a blow-up at a high learning rate) has
    diverged: the measurement stops the run like a non-finite loss, keeps the epochs measured before,
    and the CLI says so in one line with the divergence exit code."""
    from benchmarks.check_gpu_resume import Killed, crash_after_checkpoint
    from empirical import runs
    from empirical.cli import EXIT_DIVERGED, main

    out = tmp_path / "nan"
    cfg = gaussian_config(out, epochs=2, measure_epochs=[0, 1, 2], checkpoint_every=1,
                          model_kwargs={"widths": [32, 16], "batch_norm": True})
    with pytest.raises(Killed), crash_after_checkpoint(1):
        train(cfg)
    ckpt = torch.load(runs.checkpoint_path(out), weights_only=True)
    poisoned = [k for k in ckpt["model"] if k.endswith("running_mean")]
    assert poisoned
    for k in poisoned:
        ckpt["model"][k].fill_(math.nan)
    torch.save(ckpt, runs.checkpoint_path(out))
    assert main(["train", "--out", str(out), "--resume", "--no-progress"]) == EXIT_DIVERGED
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "eval-mode measurement of epoch 2" in err and "features contains NaN" in err
    recs = read_metrics(out)
    assert [r["epoch"] for r in recs] == [0, 1] and all(math.isfinite(r["nc1"]) for r in recs)

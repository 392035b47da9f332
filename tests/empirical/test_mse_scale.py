"""Hui & Belkin's rescaled MSE as a training option (math §3.6): the criterion, its validation, and a real run."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from empirical.cli import EXIT_BAD_INPUT, main
from empirical.config import TrainConfig
from empirical.loading import load_run
from empirical.loss import check_mse_scale, network_loss, parse_mse_scale, scaled_mse_loss
from empirical.runs import read_config
from empirical.schema import RunLogError, read_run_log


def _batch(n=7, C=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, C, generator=g), torch.randint(0, C, (n,), generator=g)


def test_scaled_loss_equals_the_hand_expanded_formula():
    """(1/B) sum_i (1/C) [k (f_c - M)^2 + sum_{j != c} f_j^2], written out sample by sample and output by output."""
    logits, y = _batch()
    B, C = logits.shape
    for k, M in [(1.0, 1.0), (3.0, 1.0), (1.0, 5.0), (15.0, 30.0), (0.5, 0.25)]:
        total = 0.0
        for i in range(B):
            c = int(y[i])
            total += (k * (float(logits[i, c]) - M) ** 2
                      + sum(float(logits[i, j]) ** 2 for j in range(C) if j != c)) / C
        # float32 criterion against a float64 sum of 28 terms: a few float32 ulps of the value
        assert float(scaled_mse_loss(logits, y, C, k, M)) == pytest.approx(total / B, rel=1e-6)
        assert float(network_loss(logits, y, C, "mse", (k, M))) == pytest.approx(total / B, rel=1e-6)


def test_unit_scale_is_nn_mse_loss_with_factor_one():
    """(1, 1) is nn.MSELoss() against one-hot targets (the paper's 1/C is its mean over the C outputs): equal bit for
    bit, and the weighted formula at k = 1 + 0 agrees to float32 rounding."""
    logits, y = _batch(n=9, C=5, seed=2)
    reference = torch.nn.MSELoss()(logits, F.one_hot(y, 5).float())
    assert torch.equal(scaled_mse_loss(logits, y, 5), reference)
    assert torch.equal(network_loss(logits, y, 5, "mse"), reference)
    w = torch.ones_like(logits)
    assert float(torch.mean(w * (logits - F.one_hot(y, 5).float()) ** 2)) == pytest.approx(float(reference), rel=1e-7)


def test_gradient_of_the_true_class_output_is_k_weighted():
    """d loss / d f_c = 2 k (f_c - M) / (B C) and d loss / d f_j = 2 f_j / (B C): k weights only the true class."""
    logits, y = _batch(n=3, C=4, seed=1)
    logits.requires_grad_(True)
    k, M = 3.0, 2.0
    scaled_mse_loss(logits, y, 4, k, M).backward()
    target = F.one_hot(y, 4).float()
    expected = 2.0 * (1.0 + (k - 1.0) * target) * (logits.detach() - M * target) / (3 * 4)
    assert torch.allclose(logits.grad, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("value, loss, message", [
    ([0, 1], "mse", "k must be"), ([1, -2], "mse", "M must be"), ([float("nan"), 1], "mse", "k must be"),
    ([1, float("inf")], "mse", "M must be"), ([1], "mse", "two numbers"), ([1, 2, 3], "mse", "two numbers"),
    ("1,2", "mse", "two numbers"), ([True, 1], "mse", "two numbers"), ([2, 3], "ce", "loss 'mse' only"),
])
def test_bad_mse_scale_is_a_one_line_value_error(value, loss, message):
    with pytest.raises(ValueError, match="mse_scale") as info:
        check_mse_scale(value, loss)
    assert message in str(info.value) and "\n" not in str(info.value)
    if loss == "mse" or not isinstance(value, str):
        with pytest.raises(ValueError, match="mse_scale"):
            TrainConfig(loss=loss, mse_scale=value).resolved()  # type: ignore[arg-type]


def test_parse_mse_scale():
    assert parse_mse_scale("15, 30") == (15.0, 30.0)
    for text in ("2", "a,b", "1,2,3", ""):
        with pytest.raises(ValueError, match="--mse-scale"):
            parse_mse_scale(text)
    assert TrainConfig(loss="ce").resolved().mse_scale == (1.0, 1.0)  # the default is the plain MSE, valid with CE


GAUSS = ["--dataset", "gaussian", "--model", "mlp", "--per-class", "20", "--batch-size", "20",
         "--data-arg", "dim=8", "--data-arg", "num_classes=3", "--model-arg", "widths=[16, 8]",
         "--threads", "1", "--no-progress"]


@pytest.mark.parametrize("args, message", [
    (["--mse-scale", "2"], "cannot parse --mse-scale"), (["--mse-scale", "0,1"], "k must be"),
    (["--mse-scale=-1,2"], "k must be"), (["--mse-scale", "1,0"], "M must be"),
    (["--mse-scale", "x,1"], "cannot parse"), (["--loss", "ce", "--mse-scale", "2,3"], "loss 'mse' only"),
])
def test_bad_mse_scale_on_the_command_line(tmp_path, capsys, args, message):
    out = tmp_path / "x"
    code = main(["train", *GAUSS, "--epochs", "1", *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_training_run_with_mse_scale_records_it_and_passes_the_schema(tmp_path, capsys):
    """A real run: config.mse_scale = [k, M] in config.json, the log reads back through the schema, and the run
    trained on the scaled targets (its outputs on the true class approach M, not 1)."""
    out = tmp_path / "scaled"
    code = main(["train", *GAUSS, "--epochs", "30", "--lr", "0.05", "--mse-scale", "2,4", "--measure-epochs", "0,30",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert read_config(out)["config"]["mse_scale"] == [2.0, 4.0]
    log = read_run_log(out)
    assert log.config_value("mse_scale") == [2.0, 4.0] and [r["epoch"] for r in log.records] == [0, 30]
    # trained towards M = 4 on the true class: its mean output there is far above the plain MSE's target 1
    # (measured: 2.98 here, 0.38 for the same run at --mse-scale 1,1)
    run = load_run(out)
    with torch.no_grad():
        true_class = run.model(run.train.x).gather(1, run.train.y[:, None])
    assert float(true_class.mean()) > 1.5
    # the schema refuses a non-positive scale in config.json
    bad = json.loads((out / "config.json").read_text())
    bad["config"]["mse_scale"] = [0, 4]
    (out / "config.json").write_text(json.dumps(bad))
    with pytest.raises(RunLogError, match="mse_scale"):
        read_run_log(out)

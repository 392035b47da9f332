"""Layer-wise measurement (empirical.layers, math §3.5): the records equal theory's metrics on the hooked
features, the probe's terms sum to its loss, bad input is refused in one line, the CLI and the plot work."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import theory
from empirical import NCMonitor
from empirical.cli import EXIT_BAD_INPUT, main
from empirical.layers import LAYER_KEYS, LayerTap, block_names
from empirical.measurement import measure
from empirical.models import build_model
from empirical.plot import plot_layers
from empirical.runs import read_config, read_metrics

C = 5


@pytest.fixture(scope="module")
def mlp_data():
    """A small tanh MLP (hidden widths 12 and 3: the second has p = 3 < C - 1 = 4) and Gaussian data, n = 300."""
    torch.manual_seed(0)
    model = build_model("mlp", num_classes=C, input_shape=(8,), widths=(12, 3), activation="tanh")
    y = torch.arange(300) % C
    x = torch.randn(300, 8) + 1.5 * torch.nn.functional.one_hot(y, 8).float()
    return model, x, y


def _expected(h: torch.Tensor, y: torch.Tensor, ridge: float) -> dict:
    """The layer metrics computed directly by theory on the whole feature matrix (float64)."""
    h = h.to(torch.float64)
    stats = theory.class_stats(h, y, C)
    nc = theory.nc_metrics(stats, convention="paper")
    variances = theory.class_variances(h, y, stats.means)
    sol = theory.least_squares_solution(stats, lam=ridge, bias=True)
    dec = theory.decompose(stats, sol.W, sol.b, lam=ridge)
    scores = h @ sol.W.T + sol.b
    mse = ((scores - torch.nn.functional.one_hot(y, C)) ** 2).sum() / (2 * h.shape[0])
    probe_loss = mse + ridge / 2 * (sol.W.square().sum() + sol.b.square().sum())
    ncc = torch.cdist(h, stats.means).argmin(1)
    return {"nc1": nc["nc1"], "nc1_notebook": nc["nc1_notebook"], "nc2_equinorm_means": nc["nc2_equinorm_means"],
            "nc2_equiangular_means": nc["nc2_equiangular_means"], "nc2_etf_distance": nc["nc2_etf_distance"],
            "cdnv": theory.cdnv(stats, variances), "l_nc1": dec["l_nc1"], "l_nc23": dec["l_nc23"],
            "probe_loss": probe_loss, "nc4": (scores.argmax(1) != ncc).double().mean(),
            "ncc_error": (ncc != y).double().mean(), "probe_error": (scores.argmax(1) != y).double().mean(),
            "means_rank": nc["nc1_rank"], "tr_sigma_w": torch.trace(stats.sigma_w)}


@pytest.mark.parametrize("ridge", [0.0, 0.1])
def test_layer_records_equal_theory_on_the_hooked_features(mlp_data, ridge):
    model, x, y = mlp_data
    tap = LayerTap(model, ["body.2", "body.4"], ridge=ridge)
    rec = measure(model, x, y, C, weight_decay=5e-4, batch_size=64, layers=tap)
    assert list(rec["layers"]) == ["body.2", "body.4"]
    with torch.no_grad():
        hooked = {"body.2": model.body[:3](x), "body.4": model.body(x)}
    for name, h in hooked.items():
        got, want = rec["layers"][name], _expected(h, y, ridge)
        assert set(got) == set(LAYER_KEYS) and got["dim"] == h.shape[1] and got["probe_lam"] == ridge
        for key, value in want.items():
            # streamed (batches of 64) against one-shot float64 statistics: rounding differences of ~1e-16
            # relative, amplified at most by the conditioning of Sigma_B^+ / A^-1 (about 1e3 here)
            assert got[key] == pytest.approx(float(value), rel=1e-10, abs=1e-13), (name, key)
        # the probe's decomposition: L_perp = 0 by construction, the two terms sum to the sampled loss
        assert got["l_perp"] == 0.0
        assert got["l_nc1"] + got["l_nc23"] == pytest.approx(got["probe_loss"], rel=1e-12)
        assert got["identity_residual"] < 1e-13
    # p = 3 < C - 1 = 4: measured on what it has, its rank stated
    assert rec["layers"]["body.4"]["dim"] == 3 and rec["layers"]["body.4"]["means_rank"] == 3
    assert rec["layers"]["body.4"]["l_nc23"] > 0
    # the last block's output is the classifier's input: the same numbers as the last-layer record at lambda = 0
    if ridge == 0.0:
        last = rec["layers"]["body.4"]
        assert last["nc1"] == pytest.approx(rec["nc1"], rel=1e-12)
        assert last["l_nc1"] == pytest.approx(rec["l_nc1_lam0"], rel=1e-10)
        assert last["l_nc23"] == pytest.approx(rec["l_nc23_lam0"], rel=1e-10)


def test_monitor_layers_maps_reduced_and_bad_input(tmp_path):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3))
    x, y = torch.randn(60, 1, 6, 6), torch.arange(60) % 3
    for reduce, dim in (("gap", 4), ("flatten", 4 * 4 * 4)):
        mon = NCMonitor(net, net[-1], num_classes=3, out=tmp_path / reduce, layers=["1"], layer_reduce=reduce)
        line = mon.measure(0, (x, y))
        assert line["layers"]["1"]["dim"] == dim
        cfg = json.loads((tmp_path / reduce / "config.json").read_text())
        assert cfg["layers"]["names"] == ["1"] and cfg["config"]["layer_reduce"] == reduce
    with pytest.raises(ValueError, match=r"^layers: no module named 'nope' in the model; its modules are: 0, 1, 2"):
        NCMonitor(net, net[-1], num_classes=3, out=tmp_path / "x", layers=["nope"])
    with pytest.raises(ValueError, match="layer_reduce must be one of"):
        NCMonitor(net, net[-1], num_classes=3, out=tmp_path / "x", layers=["1"], layer_reduce="max")
    with pytest.raises(ValueError, match="layer_ridge must be"):
        NCMonitor(net, net[-1], num_classes=3, out=tmp_path / "x", layers=["1"], layer_ridge=-1.0)
    with pytest.raises(ValueError, match="no block rule for a Sequential"):
        NCMonitor(net, net[-1], num_classes=3, out=tmp_path / "x", layers="all-blocks")

    class Pair(nn.Module):  # a module whose output is a tuple
        def forward(self, t):
            return t, t

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pair, self.fc = Pair(), nn.Linear(36, 3)

        def forward(self, t):
            return self.fc(self.pair(t.flatten(1))[0])

    other = Net()
    mon = NCMonitor(other, other.fc, num_classes=3, out=tmp_path / "pair", layers=["pair"])
    with pytest.raises(ValueError, match=r"^layers: module 'pair' returns a tuple, not a tensor"):
        mon.measure(0, (x, y))
    assert not (tmp_path / "pair" / "metrics.jsonl").exists()


def test_all_blocks_rules():
    resnet = build_model("resnet18", num_classes=10, input_shape=(1, 28, 28))
    assert block_names(resnet) == [f"stages.{i}.{j}" for i in range(4) for j in range(2)]
    mlp = build_model("mlp", num_classes=10, input_shape=(8,), widths=(16, 16))
    assert block_names(mlp) == ["body.2", "body.4"]
    with pytest.raises(ValueError, match="no block rule for a UFM"):
        block_names(build_model("ufm", num_classes=3, num_samples=6))


GAUSS = ["--dataset", "gaussian", "--model", "mlp", "--per-class", "20", "--batch-size", "20", "--data-arg", "dim=8",
         "--data-arg", "num_classes=3", "--model-arg", "widths=[16, 8]", "--threads", "1", "--no-progress",
         "--epochs", "2", "--lr", "0.05"]


def test_cli_measure_layers_end_to_end_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", *GAUSS, "--measure-layers", "all-blocks", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert read_config(out)["layers"] == {"names": ["body.2", "body.4"], "rule": "all-blocks", "reduce": "gap",
                                          "ridge": 0.0}
    lines = read_metrics(out)
    assert [r["epoch"] for r in lines] == [0, 1, 2]
    assert all(list(r["layers"]) == ["body.2", "body.4"] for r in lines)
    assert lines[-1]["layers"]["body.4"]["nc1"] == pytest.approx(lines[-1]["nc1"], rel=1e-12)
    # the CSV export keeps the layer records (one JSON cell) and reads them back
    from empirical import read_run_log
    from empirical.export import export_csv

    assert [r["layers"] for r in read_run_log(export_csv(out)).records] == [r["layers"] for r in lines]
    # the layer-wise panels of `python -m empirical plot` (plot_run draws them after the per-epoch panels)
    paths = plot_layers(lines, tmp_path, "test")
    assert paths[-1] == tmp_path / "layers.png" and (tmp_path / "layers_nc1.png").stat().st_size > 0
    assert plot_layers([{k: v for k, v in r.items() if k != "layers"} for r in lines], tmp_path, "none") == []
    # bad names: one line on stderr, exit 2, nothing written
    capsys.readouterr()
    bad = tmp_path / "bad"
    code = main(["train", *GAUSS, "--measure-layers", "body.2,body.99", "--out", str(bad)])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and not bad.exists()
    assert err.count("\n") == 1 and err.startswith("error: layers: no module named 'body.99'") and "body.4" in err
    code = main(["train", *GAUSS, "--measure-layers", "body.2", "--layer-reduce", "max", "--out", str(bad)])
    assert code == EXIT_BAD_INPUT and not bad.exists() and "layer_reduce" in capsys.readouterr().err


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")
def test_layer_records_under_ddp_equal_one_process(tmp_path):
    """2 gloo ranks (torchrun) at epoch 0: the layer statistics are merged across ranks exactly (as in test_ddp);
    measured: equal to 1e-15 relative except identity_residual, which is rounding (~1e-16) either way."""
    import os
    import subprocess
    import sys

    from empirical.training import TrainConfig, train

    def cfg(out) -> TrainConfig:
        return TrainConfig(dataset="gaussian", model="mlp", per_class=40, epochs=1, lr=0.05, batch_size=40,
                           data_kwargs={"dim": 16, "num_classes": 4, "separation": 2.0},
                           model_kwargs={"widths": [32, 16]}, measure_epochs=[0], out=str(out), progress=False,
                           num_threads=1, seed=1, measure_layers="all-blocks")

    train(cfg(tmp_path / "single"))
    (tmp_path / "cfg.json").write_text(json.dumps(cfg(tmp_path / "ddp").to_dict()))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "empirical", "train", "--config", str(tmp_path / "cfg.json")],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, ddp = read_metrics(tmp_path / "single")[0]["layers"], read_metrics(tmp_path / "ddp")[0]["layers"]
    assert list(one) == list(ddp) == ["body.2", "body.4"]
    for name in one:
        for key, value in one[name].items():
            if key == "identity_residual":
                assert ddp[name][key] < 1e-13
            else:
                assert ddp[name][key] == pytest.approx(value, rel=1e-10, abs=1e-14), (name, key)

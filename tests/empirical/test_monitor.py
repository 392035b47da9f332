"""NCMonitor on a hand-written model and loop (digits): the same numbers as empirical.measurement.measure."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from empirical import runs
from empirical.measurement import measure
from empirical.monitor import NCMonitor
from empirical.schema import SCHEMA_VERSION, read_run_log

C = 10


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / (X.std(0) + 1e-8), dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.int64)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(y), generator=g)
    tr, te = perm[:1200], perm[1200:]
    return X[tr], y[tr], X[te], y[te]


class Net(nn.Module):
    """A user's network: ``forward`` only (the monitor needs nothing else); ``forward_with_features`` and
    ``fc`` are there for empirical.measurement.measure, the reference."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 48), nn.ReLU())
        self.fc = nn.Linear(48, C)

    def forward(self, x):
        return self.fc(self.body(x))

    def forward_with_features(self, x):
        h = self.body(x)
        return self.fc(h), h


def train_epochs(model, x, y, epochs, wd, monitor=None, test=None):
    """A plain SGD + nn.MSELoss() loop; the monitor measures after each epoch."""
    torch.manual_seed(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=wd)
    lines = []
    for epoch in range(1, epochs + 1):
        model.train()
        for idx in torch.randperm(len(y)).split(64):
            opt.zero_grad()
            loss = nn.MSELoss()(model(x[idx]), nn.functional.one_hot(y[idx], C).float())
            loss.backward()
            opt.step()
        if monitor is not None:
            lines.append(monitor.measure(epoch, (x, y), test, lr=opt.param_groups[0]["lr"]))
    return lines


def _compare(line, ref, exact=True, rtol=0.0):
    keys = set(ref) - {"measure_time_s"}
    assert keys <= set(line)
    for k in sorted(keys):
        a, b = line[k], ref[k]
        if exact and k == "test_loss_nowd" and a != b:
            # the test set streamed in other batches (loader: 100, tensors: the monitor's 256) sums the float64
            # squared residuals in another order: equal to a few ulps, not bit for bit
            assert a == pytest.approx(b, rel=1e-14, abs=0), k
        elif exact:
            assert a == b, k
        elif isinstance(b, list):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=0, err_msg=k)
        elif isinstance(b, float):
            assert a == pytest.approx(b, rel=rtol, abs=1e-15), k
        else:
            assert a == b, k


def test_monitor_equals_measure_and_writes_a_run(digits, tmp_path):
    xtr, ytr, xte, yte = digits
    torch.manual_seed(0)
    model = Net()
    wd = 5e-4
    mon = NCMonitor(model, model.fc, num_classes=C, out=tmp_path / "run", weight_decay=wd)
    lines = train_epochs(model, xtr, ytr, 3, wd, mon, test=(xte, yte))
    ref = measure(model, xtr, ytr, C, weight_decay=wd, test_x=xte, test_y=yte)
    # same batches, same code: every key is bit-for-bit equal (only the wall time differs)
    _compare(lines[-1], ref, exact=True)
    assert lines[-1]["lr"] == 0.05 and lines[-1]["epoch"] == 3
    assert lines[-1]["lam"] == pytest.approx(C * wd / 2, rel=1e-15)
    assert lines[-1]["identity_residual"] < 1e-12  # the decomposition identity on the real network
    # the log on disk is those lines, readable by the run-format reader
    log = read_run_log(tmp_path / "run")
    assert [r["epoch"] for r in log.records] == [1, 2, 3]
    assert log.records[-1]["l_nc1"] == lines[-1]["l_nc1"]
    assert log.schema_version == SCHEMA_VERSION
    cfg = log.config["config"]
    assert cfg["num_classes"] == C and cfg["weight_decay"] == wd and cfg["model"] == "Net"
    counts = torch.bincount(ytr, minlength=C)
    assert cfg["per_class"] == (int(counts[0]) if bool((counts == counts[0]).all()) else None)
    assert log.at_lambda_zero("l_nc1_lam0") and not log.at_lambda_zero("l_nc1")
    # config.json is written once: a second monitor on the same directory appends, and refuses other settings
    before = (tmp_path / "run" / runs.CONFIG_FILE).read_text()
    NCMonitor(model, model.fc, num_classes=C, out=tmp_path / "run", weight_decay=wd).measure(4, (xtr, ytr))
    assert (tmp_path / "run" / runs.CONFIG_FILE).read_text() == before
    assert len(runs.read_metrics(tmp_path / "run")) == 4
    with pytest.raises(runs.RunError, match="weight_decay"):
        NCMonitor(model, model.fc, num_classes=C, out=tmp_path / "run", weight_decay=1e-3)


def test_sequential_and_dataloader(digits, tmp_path):
    """A plain nn.Sequential; DataLoader input equals tensor input (same batches: exact; other batches: 1e-12)."""
    xtr, ytr, xte, yte = digits
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, C))
    train_epochs(seq, xtr, ytr, 2, 0.0)
    mon = NCMonitor(seq, seq[-1], num_classes=C, out=tmp_path / "a", batch_size=256)
    by_tensor = mon.measure(2, (xtr, ytr), (xte, yte))
    same = DataLoader(TensorDataset(xtr, ytr), batch_size=256, shuffle=False)
    by_loader = mon.measure(2, same, DataLoader(TensorDataset(xte, yte), batch_size=100))
    _compare(by_loader, by_tensor, exact=True)

    # reference: empirical.measurement.measure of the same network, seen through an fc / forward_with_features view
    class View(nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.fc = seq, seq[-1]

        def forward_with_features(self, x):
            h = seq[:-1](x)
            return seq[-1](h), h

    ref = measure(View(), xtr, ytr, C, weight_decay=0.0, test_x=xte, test_y=yte, batch_size=256)
    _compare(by_tensor, ref, exact=True)
    # another batching and order: the float64 statistics are merged in another order (measured: 1.0e-15
    # relative at most); 1e-12 allows for the float32 feature rows' batch-size dependence on other BLAS builds.
    shuffled = DataLoader(TensorDataset(xtr, ytr), batch_size=97, shuffle=True,
                          generator=torch.Generator().manual_seed(3))
    other = mon.measure(2, shuffled)
    for k in ("loss", "l_nc1", "l_nc23", "l_perp", "nc1", "nc3", "snr_singular_values", "train_error", "nc4"):
        b = by_tensor[k]
        np.testing.assert_allclose(other[k], b, rtol=1e-12, atol=1e-14, err_msg=k)


def test_bad_input_messages(digits, tmp_path):
    xtr, ytr, _, _ = digits
    seq = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, C))
    with pytest.raises(ValueError, match="not a submodule"):
        NCMonitor(seq, nn.Linear(16, C), num_classes=C, out=tmp_path)
    with pytest.raises(TypeError, match="nn.Linear"):
        NCMonitor(seq, seq[1], num_classes=C, out=tmp_path)
    with pytest.raises(ValueError, match="num_classes=3"):
        NCMonitor(seq, seq[-1], num_classes=3, out=tmp_path)
    with pytest.raises(ValueError, match="reduction"):
        NCMonitor(seq, seq[-1], num_classes=C, out=tmp_path, reduction="median")
    mon = NCMonitor(seq, seq[-1], num_classes=C, out=tmp_path / "r")
    with pytest.raises(ValueError, match="do not match"):
        mon.measure(0, (xtr, ytr[:10]))
    with pytest.raises(TypeError, match="batch 0"):
        mon.measure(0, [xtr])
    with pytest.raises(ValueError, match=r"\['nc1'\]"):
        mon.measure(0, (xtr, ytr), nc1=1.0)
    assert not (tmp_path / "r" / runs.METRICS_FILE).exists()  # nothing written by a refused call


def test_diverged_network_is_named_and_earlier_lines_kept(digits, tmp_path):
    """Weights blown up to NaN (a diverged run): the monitor raises theory.NonFiniteError naming the epoch,
    writes nothing for it, and the lines measured before stay on disk."""
    import theory

    xtr, ytr, _, _ = digits
    seq = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, C))
    mon = NCMonitor(seq, seq[-1], num_classes=C, out=tmp_path / "r")
    first = mon.measure(0, (xtr, ytr))
    with torch.no_grad():
        seq[0].weight.fill_(float("nan"))
    with pytest.raises(theory.NonFiniteError, match=r"epoch 1: features contains NaN or Inf.*diverged.*earlier lines"):
        mon.measure(1, (xtr, ytr))
    assert runs.read_metrics(tmp_path / "r") == [json.loads(json.dumps(first))]


def test_cuda_matches_cpu(digits, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    xtr, ytr, _, _ = digits
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, C))
    cpu = NCMonitor(seq, seq[-1], num_classes=C, out=tmp_path / "cpu").measure(0, (xtr, ytr))
    seq.cuda()
    gpu = NCMonitor(seq, seq[-1], num_classes=C, out=tmp_path / "gpu", precision="fp32").measure(0, (xtr, ytr))
    # float32 forward on two devices (1e-6 relative), float64 statistics
    for k in ("loss", "l_nc1", "l_nc23", "nc1", "nc3"):
        assert gpu[k] == pytest.approx(cpu[k], rel=1e-4), k
    assert json.loads(runs.json_line(gpu))["epoch"] == 0


_DDP_SCRIPT = r'''
import sys, torch, torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler
from sklearn.datasets import load_digits
from empirical.monitor import NCMonitor

dist.init_process_group("gloo")
X, y = load_digits(return_X_y=True)
X = torch.tensor((X - X.mean(0)) / (X.std(0) + 1e-8), dtype=torch.float32)[:1200]
y = torch.tensor(y)[:1200]
torch.manual_seed(0)
seq = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
torch.save(seq.state_dict(), sys.argv[2]) if dist.get_rank() == 0 else None
mon = NCMonitor(seq, seq[-1], num_classes=10, out=sys.argv[1], weight_decay=5e-4, batch_size=200)
mon.measure(0, (X, y))  # every rank holds the whole set; each measures its share of every batch
sampler = DistributedSampler(TensorDataset(X, y), shuffle=False)
mon.measure(1, DataLoader(TensorDataset(X, y), batch_size=100, sampler=sampler))  # each rank its own samples
dist.destroy_process_group()
'''


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")
def test_ddp_two_processes_match_one(digits, tmp_path):
    """Under torchrun (gloo, 2 CPU processes) the statistics are all-reduced: rank 0's lines equal one
    process's measurement of the same network to 1e-12 (other merge order of the float64 statistics;
    measured ~1e-15); only rank 0 writes."""
    import os
    import subprocess
    import sys

    script = tmp_path / "ddp_monitor.py"
    script.write_text(_DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path / "run"), str(tmp_path / "w.pt")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = runs.read_metrics(tmp_path / "run")
    assert [r["epoch"] for r in lines] == [0, 1]  # one line per measurement: rank 1 wrote nothing
    assert runs.read_config(tmp_path / "run")["environment"]["world_size"] == 2
    X, y = load_digits(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / (X.std(0) + 1e-8), dtype=torch.float32)[:1200]
    y = torch.tensor(y)[:1200]
    seq = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    seq.load_state_dict(torch.load(tmp_path / "w.pt"))
    one = NCMonitor(seq, seq[-1], num_classes=10, out=tmp_path / "one", weight_decay=5e-4).measure(0, (X, y))
    for line in lines:
        for k in ("loss", "l_nc1", "l_nc23", "l_perp", "nc1", "nc3", "nc4", "train_error", "snr_singular_values",
                  "l_nc1_lam0"):
            np.testing.assert_allclose(line[k], one[k], rtol=1e-12, atol=1e-15, err_msg=k)

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
    keys = set(ref) - {"measure_time_s", "epoch"}  # the epoch is a label (each measured once per log)
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
    by_loader = mon.measure(3, same, DataLoader(TensorDataset(xte, yte), batch_size=100))
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
    other = mon.measure(4, shuffled)
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


# ---------------------------------------------------------------- common model shapes, inputs, bad input


class _Out:
    """A timm / Hugging Face style output object."""

    def __init__(self, logits, hidden):
        self.logits, self.hidden = logits, hidden


class Shaped(nn.Module):
    """The same network (body + fc) with its forward returning one of the common output shapes."""

    def __init__(self, body, fc, shape):
        super().__init__()
        self.body, self.fc, self.shape = body, fc, shape

    def forward(self, x):
        h = self.body(x)
        z = self.fc(h)
        return {"tensor": z, "tuple": (z, h), "dict": {"logits": z, "features": h}, "object": _Out(z, h),
                "features_first": (h, z), "scores": {"scores": z, "features": h}}[self.shape]


def test_model_output_shapes(digits, tmp_path):
    """A forward returning (logits, features), a dict with "logits" or an object with .logits is measured as the
    plain network is: every key bit for bit equal (same weights, same batches); output= selects other layouts."""
    xtr, ytr, _, _ = digits
    torch.manual_seed(0)
    body, fc = nn.Sequential(nn.Linear(64, 32), nn.ReLU()), nn.Linear(32, C)
    train_epochs(nn.Sequential(body, fc), xtr, ytr, 1, 0.0)

    runs_made = iter(range(100))

    def line(shape, **kw):
        net = Shaped(body, fc, shape)
        out = tmp_path / f"{shape}{next(runs_made)}"
        return NCMonitor(net, net.fc, num_classes=C, out=out, **kw).measure(1, (xtr[:400], ytr[:400]))

    ref = line("tensor")
    for shape in ("tuple", "dict", "object"):
        _compare(line(shape), ref, exact=True)
    _compare(line("features_first", output=1), ref, exact=True)
    _compare(line("scores", output="scores"), ref, exact=True)
    _compare(line("object", output=lambda o: o.logits), ref, exact=True)
    with pytest.raises(ValueError, match=r"classifier's output at index 1, not 0: pass output=1"):
        line("features_first")
    with pytest.raises(ValueError, match=r"dict without a 'logits' key \(keys: \['features', 'scores'\]\): "
                                         r"pass output="):
        line("scores")
    with pytest.raises(ValueError, match=r"output='logit': the model's dict output has no such key"):
        line("dict", output="logit")
    with pytest.raises(ValueError, match=r"selected model output has shape \(400, 32\), expected the logits "
                                         r"\(400, 10\): pass output="):
        line("object", output="hidden")
    with pytest.raises(ValueError, match="output must be None, a key"):
        line("dict", output=2.5)


class IndexNet(nn.Module):
    """An nn.Embedding front end taking sample indices (the unconstrained-features model: one free feature
    vector per sample) and a linear classifier."""

    def __init__(self, n, p):
        super().__init__()
        self.emb, self.fc = nn.Embedding(n, p), nn.Linear(p, C)

    def forward(self, idx):
        return self.fc(self.emb(idx))


def test_index_inputs_embedding_model(digits, tmp_path):
    """Inputs of shape (n,) (indices into an nn.Embedding) are accepted, as tensors and as a DataLoader, and give
    the line of the same features fed as rows (x (n, p) into the classifier alone): bit for bit."""
    _, ytr, _, _ = digits
    n, p = 500, 16
    y = ytr[:n]
    torch.manual_seed(0)
    net = IndexNet(n, p)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    idx = torch.arange(n)
    for _ in range(20):  # full-batch GD on the MSE loss: a real (short) UFM training
        opt.zero_grad()
        nn.MSELoss()(net(idx), nn.functional.one_hot(y, C).float()).backward()
        opt.step()
    mon = NCMonitor(net, net.fc, num_classes=C, out=tmp_path / "ufm", batch_size=128, loss="mse")
    by_index = mon.measure(20, (idx, y))
    by_loader = mon.measure(21, DataLoader(TensorDataset(idx, y), batch_size=128))
    _compare(by_loader, by_index, exact=True)
    fc_only = nn.Sequential(net.fc)
    rows = NCMonitor(fc_only, net.fc, num_classes=C, out=tmp_path / "rows", batch_size=128)
    _compare(by_index, rows.measure(20, (net.emb.weight.detach(), y)), exact=True)
    assert by_index["train_count"] == n and 0.0 <= by_index["train_error"] < 0.9


def test_labels_out_and_repeated_epoch_errors(digits, tmp_path):
    xtr, ytr, _, _ = digits
    seq = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, C))
    mon = NCMonitor(seq, seq[-1], num_classes=C, out=tmp_path / "r")
    onehot = nn.functional.one_hot(ytr, C).float()
    for data, hint in (((xtr, onehot), r"got torch.float32 labels of shape \(1200, 10\) .*: pass y.argmax\(1\)"),
                       ((xtr, ytr.float()), r"got torch.float32: pass y.long\(\)"),
                       (DataLoader(TensorDataset(xtr, onehot), batch_size=100),
                        r"got torch.float32 labels of shape \(100, 10\) .*: pass y.argmax\(1\)")):
        with pytest.raises(ValueError, match=r"labels must be integer class indices of shape \(n,\); " + hint) as info:
            mon.measure(0, data)
        assert "\n" not in str(info.value)
    assert not (tmp_path / "r" / runs.METRICS_FILE).exists()
    # out= an existing file
    (tmp_path / "file.json").write_text("{}")
    with pytest.raises(ValueError, match=r"out='.*file.json' is an existing file; out is the run directory"):
        NCMonitor(seq, seq[-1], num_classes=C, out=tmp_path / "file.json")
    # an epoch measured twice: refused, nothing appended; a new monitor on the directory knows the logged epochs
    mon.measure(0, (xtr, ytr))
    before = (tmp_path / "r" / runs.METRICS_FILE).read_text()
    with pytest.raises(ValueError, match=r"epoch 0 is already in .*metrics.jsonl: measure each epoch once"):
        mon.measure(0, (xtr, ytr))
    again = NCMonitor(seq, seq[-1], num_classes=C, out=tmp_path / "r")
    with pytest.raises(ValueError, match=r"epoch 0 is already in"):
        again.measure(0, (xtr, ytr))
    assert (tmp_path / "r" / runs.METRICS_FILE).read_text() == before
    again.measure(1, (xtr, ytr))
    assert [r["epoch"] for r in read_run_log(tmp_path / "r").records] == [0, 1]


def test_loss_is_recorded(digits, tmp_path):
    xtr, ytr, _, _ = digits
    seq = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, C))
    with pytest.raises(ValueError, match=r"loss must be one of 'mse', 'ce', 'unknown' \(the training loss\), "
                                         r"got 'MSE'"):
        NCMonitor(seq, seq[-1], num_classes=C, out=tmp_path / "x", loss="MSE")
    NCMonitor(seq, seq[-1], num_classes=C, out=tmp_path / "default").measure(0, (xtr[:200], ytr[:200]))
    NCMonitor(seq, seq[-1], num_classes=C, out=tmp_path / "mse", loss="mse",
              reduction="notebook").measure(0, (xtr[:200], ytr[:200]))
    assert read_run_log(tmp_path / "default").config_value("loss") == "unknown"
    log = read_run_log(tmp_path / "mse")  # the schema accepts it: config.loss is its enum
    assert log.config_value("loss") == "mse" and log.config_value("loss_reduction") == "notebook"
    with pytest.raises(runs.RunError, match=r"records loss='mse' but this monitor has loss='ce'"):
        NCMonitor(seq, seq[-1], num_classes=C, out=tmp_path / "mse", loss="ce", reduction="notebook")
    NCMonitor(seq, seq[-1], num_classes=C, out=tmp_path / "mse", reduction="notebook")  # "unknown" contradicts nothing

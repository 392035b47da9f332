"""empirical.sweep.memory and .available: the training-step estimate counted by hand and against the peak
resident memory of real interleaved training steps; the model untouched; the available memory and its parsers;
the arithmetic of fit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from empirical.sweep.available import (
    V1_NO_LIMIT,
    available_bytes,
    cgroup_headroom,
    cgroup_limit,
    cpu_available_bytes,
    meminfo_available,
    memory_cgroup_dirs,
)
from empirical.sweep.memory import MemoryEstimate, member_training_bytes, members_that_fit

F32, BF16, I64 = 4, 2, 8
B, A, H, C = 6, 5, 7, 3  # batch, input, hidden, classes


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(A, H), nn.ReLU(), nn.Linear(H, C))


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(B, A, generator=g), torch.arange(B) % C


N_PARAMS = (A * H + H + H * C + C) * F32


@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_saved_tensors_counted_by_hand(loss):
    x, y = batch()
    est = member_training_bytes(mlp(), x, y, loss=loss, num_classes=C, momentum=0.9)
    # What autograd saves for Linear -> ReLU -> Linear -> criterion, float32:
    # * Linear 1 saves its input x (the batch's own storage: counted in `batch`) and not its weight
    #   (x needs no gradient);
    # * ReLU saves its result (B, H); Linear 2 saves its input, the same storage (counted once), and its
    #   weight (a parameter: counted in `params`);
    # * MSE (network_loss: mse_loss(logits, one_hot(y).float())) saves the logits (B, C) and the one-hot
    #   targets (B, C), a new tensor;
    #   cross-entropy = log_softmax + nll_loss: log_softmax's result (B, C), saved by both (counted once),
    #   the targets y (the batch's storage) and nll_loss's total weight, a float32 scalar.
    relu = B * H * F32
    loss_saved = {"mse": 2 * B * C * F32, "ce": B * C * F32 + F32}[loss]
    assert est.saved == relu + loss_saved
    assert est.backward == 2 * relu  # the largest saved storage is ReLU's result
    assert est.params == est.grads == est.optimizer == N_PARAMS
    assert est.batch == B * A * F32 + B * I64
    assert est.buffers == 0
    assert est.state == 3 * N_PARAMS and est.step == est.saved + est.batch + est.backward
    assert est.total == est.state + est.step


def test_no_momentum_no_optimizer_state_and_frozen_parameters_have_no_gradient():
    x, y = batch()
    model = mlp()
    model[0].bias.requires_grad_(False)
    est = member_training_bytes(model, x, y, loss="mse", num_classes=C, momentum=0.0)
    assert est.params == N_PARAMS
    assert est.grads == N_PARAMS - H * F32
    assert est.optimizer == 0


def test_autocast_counts_the_low_precision_copies():
    x, y = batch()
    est = member_training_bytes(mlp(), x, y, loss="mse", num_classes=C, momentum=0.9, autocast=torch.bfloat16)
    # Under bf16 autocast each Linear runs on bf16 copies: Linear 1 saves the bf16 copy of x (B, A) (a new
    # storage, unlike float32 where x itself is saved); ReLU its bf16 result (B, H) = Linear 2's input;
    # Linear 2 the bf16 copy of its weight (H, C) (a new storage, not the parameter).  The criterion, outside
    # autocast, casts the bf16 logits to float32 (the cast saves nothing) and saves that float32 copy (B, C)
    # and the one-hot targets (B, C).
    assert est.saved == B * A * BF16 + B * H * BF16 + H * C * BF16 + 2 * B * C * F32
    assert est.backward == 2 * B * H * BF16


def test_model_left_unchanged_with_batchnorm_and_dropout():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(A, H), nn.BatchNorm1d(H), nn.ReLU(), nn.Dropout(0.5), nn.Linear(H, C))
    x, y = batch()
    model.eval()
    model[1].train()  # mixed flags: each submodule's own flag must come back
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    est = member_training_bytes(model, x, y, loss="mse", num_classes=C, momentum=0.9)
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k, v in before.items():  # bit for bit, BatchNorm's running statistics and num_batches_tracked included
        assert v.dtype == after[k].dtype and torch.equal(v, after[k]), k
    assert [m.training for m in model.modules()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)  # the dropout draws did not move the global stream
    # BatchNorm's running mean, variance (H floats each) and num_batches_tracked (int64) are buffers
    assert est.buffers == 2 * H * F32 + I64
    # the same train-mode forward without the function does move the running statistics (the check above can fail)
    model.train()
    model(x)
    assert not torch.equal(model[1].running_mean, before["1.running_mean"])


# --------------------------------------------------------------------------- against the resident memory

#: K members of one configuration in an InterleavedEngine (one thread), two training steps of each member (the
#: second runs with the momentum buffers alive), driven as the engine drives them; prints the resident memory
#: before the steps, its peak during them, and one member's estimate as JSON.
PROBE = r"""
import json, sys, torch
from pathlib import Path
from empirical.config import TrainConfig
from empirical.sweep.engines import InterleavedEngine
from empirical.sweep.memory import member_training_bytes
from empirical.training import Member
K, out, options = int(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
torch.set_num_threads(1)
cfgs = [TrainConfig(**options, lr=0.01 * (k + 1), epochs=1, out=str(out / f"m{k}"), compile="none",
                    progress=False).resolved() for k in range(K)]
eng = InterleavedEngine([Member(c) for c in cfgs], torch.device("cpu"), out)
data = eng.data_of(0)[0]
b = cfgs[0].batch_size
x, y = data.x[:b].clone(), data.y[:b].clone()
def status(key):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(key))
# the peak of the training steps only: reset the high-water mark (Linux >= 4.0) once the engine is built, so a
# transient of the imports or of the set-up cannot hide the steps' peak
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
before = status("VmRSS:")
for _ in range(2):
    for e in eng.engines:
        e.step(x, y, None)
peak = status("VmHWM:")
est = member_training_bytes(eng.model_of(0), x, y, loss=cfgs[0].loss, num_classes=int(data.num_classes),
                            momentum=cfgs[0].momentum)
print(json.dumps({"peak": peak, "before": before, "state": est.state, "moving": est.grads + est.optimizer,
                  "activations": est.saved + est.backward}))
"""

#: (options, the two numbers of members compared, the upper bound on the step-in-flight ratio below).  An MLP
#: (widths [2048, 2048], batch 1024, MSE; state 49.8 MiB per member: params, grads, momentum 16.6 each; saved 16.1,
#: backward 16.0) and ResNet18 on the 8x8 digits (batch 128, BatchNorm, convolutions; state 127.9 MiB: params,
#: grads, momentum 42.6 each; saved 36.0, backward 4.0).
RSS_CASES = {
    "mlp": ({"dataset": "gaussian", "model": "mlp", "per_class": 103, "batch_size": 1024, "data_kwargs": {"dim": 64},
             "model_kwargs": {"widths": [2048, 2048]}}, (1, 4), 1.6),
    "resnet18": ({"dataset": "digits", "model": "resnet18", "batch_size": 128}, (1, 2), 3.0),
}


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/self/clear_refs")
@pytest.mark.parametrize("case", list(RSS_CASES))
def test_estimate_matches_the_peak_resident_memory_of_interleaved_steps(tmp_path, case):
    """What the chunking uses (empirical.sweep.chunking): each member adds its ``state`` for the whole run; the
    step in flight adds its activations once."""
    options, (k1, k2), upper = RSS_CASES[case]
    # glibc raises its mmap threshold after freeing a large block (up to 32 MiB), after which freed
    # activations stay resident and the peak RSS depends on the allocation history (measured: +-12 MiB on
    # the K=1 MLP peak between identical runs).  A fixed threshold gives every block above 128 KiB its own
    # mapping, returned on free, so the RSS follows the live tensors (measured: +-0.2 MiB between runs).
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "OMP_NUM_THREADS": "1"}
    res = {}
    for k in (k1, k2):
        proc = subprocess.run([sys.executable, "-c", PROBE, str(k), str(tmp_path / str(k)), json.dumps(options)],
                              env=env, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        res[k] = json.loads(proc.stdout.strip().splitlines()[-1])
    # per member: the peak grows by each member's state (weights, buffers, gradients, momentum), not by its
    # activations (one step at a time).  Measured (this machine, torch 2.13 CPU): 1.003 (MLP), 1.007 (ResNet18):
    # plain tensors; the bounds leave 5% / 10% for the allocator, and fail if a term were dropped (1.5 for the MLP
    # without the momentum buffers) or the activations counted per member (0.61 for the MLP).
    per_member = (res[k2]["peak"] - res[k1]["peak"]) / (k2 - k1)
    assert 0.95 <= per_member / res[k1]["state"] <= 1.1, (per_member, res)
    # the step in flight (K = 1): the peak above the resident memory before the steps, less the gradients and
    # momentum created by the steps, against the saved tensors + backward.  Measured: 0.97 (MLP, here), 1.48
    # (ResNet18, here) and 2.03 (ResNet18, the CI machine's processor).  ResNet18's excess is the CPU convolution's
    # temporary buffers (e.g. im2col's 19 MiB for the first 3x3 convolution here), which the estimate does not count
    # and whose size depends on the kernel oneDNN picks for the processor: a fixed term of a chunk, once per worker,
    # inside the 20% of the memory the chunking leaves.  Hence 3.0 for ResNet18, 1.6 for the MLP (no convolution).
    # The bounds fail if the saved tensors were not counted (ratio 15 for ResNet18) or the backward term (1.9, MLP).
    activations = res[k1]["peak"] - res[k1]["before"] - k1 * res[k1]["moving"]
    assert 0.8 <= activations / res[k1]["activations"] <= upper, (activations, res)


# --------------------------------------------------------------------------- available memory


def test_available_cpu_memory_is_positive_and_below_the_total():
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        pytest.skip("no /proc/meminfo")
    total = next(
        int(line.split()[1]) * 1024 for line in meminfo.read_text().splitlines() if line.startswith("MemTotal:")
    )
    avail = available_bytes(torch.device("cpu"))
    assert avail is not None and 0 < avail <= total
    assert available_bytes(torch.device("meta")) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_available_cuda_memory_is_the_free_memory():
    free = available_bytes(torch.device("cuda"))
    total = torch.cuda.get_device_properties(0).total_memory
    assert free is not None and 0 < free <= total


MEMINFO = "MemTotal:       24684092 kB\nMemFree:        22279324 kB\nMemAvailable:   24136424 kB\nBuffers: 1 kB\n"


def test_meminfo_parsing():
    assert meminfo_available(MEMINFO) == 24136424 * 1024
    assert meminfo_available("MemTotal:  100 kB\nMemFree:  50 kB\n") is None  # kernels before 3.14 lack the key
    assert meminfo_available("") is None


def test_cgroup_limit_parsing():
    assert cgroup_limit("max\n") is None  # v2: no limit
    assert cgroup_limit("9223372036854771712\n") is None  # v1: the kernel's "no limit"
    assert cgroup_limit(str(V1_NO_LIMIT)) is None
    assert cgroup_limit("4294967296\n") == 4 << 30
    assert cgroup_limit("garbage") is None


def test_cgroup_headroom():
    gib = 1 << 30
    # v2: 4 GiB limit, 3 GiB charged of which 0.5 GiB inactive page cache (reclaimable)
    stat_v2 = f"anon {2 * gib}\nfile {gib}\ninactive_file {gib // 2}\nactive_file {gib // 2}\n"
    assert cgroup_headroom(f"{4 * gib}\n", f"{3 * gib}\n", stat_v2) == gib + gib // 2
    # v1 reports the hierarchical count as total_inactive_file (and its own as inactive_file): the total wins
    stat_v1 = f"cache {gib}\ninactive_file 0\ntotal_inactive_file {gib // 4}\n"
    assert cgroup_headroom(f"{4 * gib}\n", f"{3 * gib}\n", stat_v1) == gib + gib // 4
    assert cgroup_headroom(f"{4 * gib}\n", f"{3 * gib}\n") == gib  # no memory.stat: the plain difference
    assert cgroup_headroom(f"{gib}\n", f"{2 * gib}\n") == 0  # over the limit: nothing left, never negative
    assert cgroup_headroom("max\n", f"{gib}\n") is None
    assert cgroup_headroom("9223372036854771712\n", f"{gib}\n") is None


def test_memory_cgroup_dirs():
    v2 = memory_cgroup_dirs("0::/user.slice/job\n", "/cg")
    assert v2 == [(Path("/cg/user.slice/job"), "memory.max", "memory.current"),
                  (Path("/cg/user.slice"), "memory.max", "memory.current"),
                  (Path("/cg"), "memory.max", "memory.current")]
    v1 = memory_cgroup_dirs("5:devices:/x\n4:memory:/api/abc\n1:cpu,cpuacct:/\n", "/cg")
    assert [d for d, *_ in v1] == [Path("/cg/memory/api/abc"), Path("/cg/memory/api"), Path("/cg/memory")]
    assert v1[0][1:] == ("memory.limit_in_bytes", "memory.usage_in_bytes")
    assert memory_cgroup_dirs("4:memory:/\n", "/cg") == [(Path("/cg/memory"), "memory.limit_in_bytes",
                                                          "memory.usage_in_bytes")]
    assert memory_cgroup_dirs("3:cpu:/a\n", "/cg") == []


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cpu_available_is_the_smallest_of_meminfo_and_every_cgroup_level(tmp_path):
    proc, cg = tmp_path / "proc", tmp_path / "cg"
    mib = 1 << 20
    write(proc / "meminfo", "MemTotal: 8388608 kB\nMemAvailable: 4194304 kB\n")  # 4 GiB available on the host
    write(proc / "self" / "cgroup", "4:memory:/api/job\n")
    # the job's own cgroup: no limit; its parent: 1 GiB limit with 700 MiB charged; the root: no limit
    write(cg / "memory" / "api" / "job" / "memory.limit_in_bytes", "9223372036854771712\n")
    write(cg / "memory" / "api" / "job" / "memory.usage_in_bytes", f"{300 * mib}\n")
    write(cg / "memory" / "api" / "memory.limit_in_bytes", f"{1024 * mib}\n")
    write(cg / "memory" / "api" / "memory.usage_in_bytes", f"{700 * mib}\n")
    write(cg / "memory" / "memory.limit_in_bytes", "9223372036854771712\n")
    write(cg / "memory" / "memory.usage_in_bytes", f"{5000 * mib}\n")
    assert cpu_available_bytes(proc, cg) == 324 * mib  # the parent's limit binds the job
    # a generous cgroup: MemAvailable is the smaller
    write(cg / "memory" / "api" / "memory.limit_in_bytes", f"{64 << 30}\n")
    assert cpu_available_bytes(proc, cg) == 4 << 30
    # no /proc/meminfo: the free physical pages (os.sysconf); they change as other processes run, so
    # compared with a reading taken just after, within 1 GiB
    (proc / "meminfo").unlink()
    got = cpu_available_bytes(proc, cg)
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert got is not None and abs(got - free) < 1 << 30
    # still bounded by the cgroup
    write(cg / "memory" / "api" / "memory.limit_in_bytes", f"{1024 * mib}\n")
    assert cpu_available_bytes(proc, cg) == 324 * mib


# --------------------------------------------------------------------------- fit and describe


def test_members_that_fit():
    assert members_that_fit(100, 1000) == 8  # 0.8 * 1000 / 100
    assert members_that_fit(100, 1000, fixed=250) == 5  # (800 - 250) // 100
    assert members_that_fit(100, 1000, fraction=1.0) == 10
    assert members_that_fit(101, 1000, fraction=1.0) == 9
    assert members_that_fit(900, 1000) == 0  # not even one fits in 80%
    assert members_that_fit(100, 1000, fixed=900) == 0  # the fixed part alone exceeds 80%: 0, not negative
    for args, kw, problem in [((0, 10), {}, "per_member"), ((1, -1), {}, "available"),
                              ((1, 10), {"fraction": 0.0}, "fraction"), ((1, 10), {"fraction": 1.5}, "fraction"),
                              ((1, 10), {"fixed": -1}, "fixed")]:
        with pytest.raises(ValueError, match=problem):
            members_that_fit(*args, **kw)


def test_describe_in_mib():
    mib = 1 << 20
    est = MemoryEstimate(params=mib, grads=mib, optimizer=0, saved=2 * mib, batch=mib // 2, backward=4 * mib)
    assert est.total == 8 * mib + mib // 2
    assert est.describe() == "8.5 MiB (params 1.0, grads 1.0, momentum 0.0, saved 2.0, batch 0.5, backward 4.0)"


def test_bad_loss_is_refused():
    x, y = batch()
    with pytest.raises(ValueError, match="unknown loss"):
        member_training_bytes(mlp(), x, y, loss="hinge", num_classes=C, momentum=0.9)

"""The measurement benchmark's two approaches compute the same numbers (its correctness half; the
speed half is for `make bench`, never asserted in a test)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import bench_measurement


def test_measurement_benchmark_agrees_with_the_common_approach():
    out = bench_measurement.main(["--n", "3000", "--baseline-n", "600", "--p", "48", "--repeat", "1"])
    # 27 metrics of both approaches in float64 on the same 600 samples: the notebook's formulas
    # (balanced subsample) and the toolkit's differ by rounding (measured 1e-14; the benchmark's own bar is 1e-8)
    assert out["max_rel_diff"] < 1e-11
    assert len(out["ratios"]) == 1  # one paired round timed (speed itself is never asserted)
    assert out["identity_residual"] < 1e-12  # the printed residual is measure's, at float64 rounding


def test_resume_check_script_on_the_cpu(tmp_path):
    """The device's resume check, at toy size on the CPU: a run crashed after epoch 2's checkpoint and
    resumed records the same metrics as the uninterrupted run (CPU kernels are deterministic here)."""
    from benchmarks import check_gpu_resume

    report = check_gpu_resume.main([str(tmp_path), "--dataset", "digits", "--model", "mlp", "--per-class", "20"])
    assert report["epochs_res"] == report["epochs_ref"] == [0, 1, 2, 3, 4]
    assert set(report["identical_keys"]) == {"train_error", "loss", "nc1", "l_perp", "identity_residual"}
    assert (tmp_path / "resume_check.json").is_file()


def test_resume_check_reports_nothing_identical_when_epochs_differ():
    """zip() of the two runs stops at the shorter one: a resumed run missing an epoch must not pass."""
    from benchmarks.check_gpu_resume import KEYS, compare

    ref = [dict.fromkeys(KEYS, 1.0) | {"epoch": e} for e in range(5)]
    same = compare(ref, [dict(r) for r in ref])
    assert same["same_epochs"] and same["identical_keys"] == list(KEYS[:-1])
    short = compare(ref, [dict(r) for r in ref[:3]])
    assert not short["same_epochs"] and short["identical_keys"] == []
    assert short["epochs_res"] == [0, 1, 2] and len(short["loss"]) == 3
    changed = [dict(r) for r in ref]
    changed[4]["nc1"] = 2.0
    assert "nc1" not in compare(ref, changed)["identical_keys"]


def test_crash_after_checkpoint_restores_save_checkpoint(tmp_path):
    from benchmarks.check_gpu_resume import Killed, crash_after_checkpoint
    from empirical import runs

    original = runs.save_checkpoint
    with crash_after_checkpoint(1, before_save=True):
        runs.save_checkpoint(tmp_path, {"epoch": 0})
        try:
            runs.save_checkpoint(tmp_path, {"epoch": 1})
        except Killed:
            pass
        else:
            raise AssertionError("no crash at epoch 1")
    assert runs.save_checkpoint is original
    assert runs.load_checkpoint(tmp_path)["epoch"] == 0  # crashed before epoch 1's checkpoint was written


# Every benchmark `make bench` runs, at toy size, as `make bench` runs it (its own process): it must run to its
# result line after any change to the packages (speed is never asserted; the benchmarks' own correctness
# numbers are, where they print one).
BENCH_SMOKE = {
    "bench_theory": (["--n", "2000", "--p", "32", "--classes", "5", "--baseline-samples", "200",
                      "--skip-certificate"], "| theory.ClassStatsAccumulator"),
    "bench_simulate": (["--trajectories", "2", "--baseline", "1", "--classes", "3", "--per-class", "10",
                        "--t-max", "10", "--num-times", "5", "--reduced-per-class", "10", "--reduced-t-max", "10",
                        "--dim", "8"], "compile (1st call - 2nd call)"),
    "bench_schema": (["--lines", "50", "--repeats", "1"], "median ratio read / jsonschema"),
    "bench_many_classes": (["--config", "20,16,500", "--field"], "| 20 | 16 | 500 | balanced |"),
    "bench_layers": (["--dataset", "digits", "--per-class", "20", "--repeat", "1"],
                     "max probe identity residual over the layers"),
    "bench_sweep": (["--epochs", "1", "--resnet-epochs", "0", "--repeats", "1", "--no-gpu",
                     "--out", "{tmp}/sweep.json"], "bookkeeping time, every epoch / by time"),
    # rung (a) is the exact flow: its closed-form fit has R^2 = 1 (a rung that did not run prints "not run")
    "bench_ladder": (["--lrs", "0.4", "--batch-sizes", "64", "--out", "{tmp}/ladder"], "| 0.4 | 64 | (a) | 1.0000 |"),
}


def test_the_toy_runs_cover_make_bench():
    make = (Path(__file__).parents[1] / "Makefile").read_text().split("\nbench:", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"benchmarks\.(\w+)", make)) == {*BENCH_SMOKE, "bench_measurement"}


@pytest.mark.parametrize("name", sorted(BENCH_SMOKE))
def test_every_make_bench_benchmark_runs_at_toy_size(name, tmp_path):
    args, marker = BENCH_SMOKE[name]
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *[a.format(tmp=tmp_path) for a in args]],
                          capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert marker in proc.stdout, proc.stdout[-2000:]
    if name == "bench_theory":  # every route's Sigma_W against float64 references: float64 rounding, measured 1.6e-15
        diffs = re.findall(r"\| (\S+) vs (?:theory|float64)", proc.stdout)
        scale = float(re.search(r"max \|Sigma_W\| = (\S+);", proc.stdout).group(1))
        assert len(diffs) == 3 and all(float(d) <= 1e-12 * scale for d in diffs), diffs
    if name == "bench_layers":  # the probe decomposition's identity, at float64 rounding on every layer
        assert float(re.search(r"identity residual over the layers: (\S+)", proc.stdout).group(1)) < 1e-12
    if name == "bench_simulate":  # the solver at rtol 1e-10 against the closed form (math §6.3; measured 2e-13)
        assert float(re.search(r"vmap vs closed form\s+(\S+)", proc.stdout).group(1)) < 1e-8
    if name == "bench_sweep":  # every strategy's members are their single runs, bit for bit (CPU)
        rows = json.loads((tmp_path / "sweep.json").read_text())["cpu_mlp"]
        diffs = [row[s]["final_metrics_max_rel_diff"] for row in rows for s in ("threaded", "interleaved")]
        assert diffs and all(d == 0.0 for d in diffs)

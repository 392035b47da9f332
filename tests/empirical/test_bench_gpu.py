"""benchmarks/bench_gpu.py end to end in its CPU smoke mode (the GPU run cannot be tested here).

Smoke tests only: in ``--cpu-smoke`` mode the "CUDA" side of every comparison is the CPU again, so a
``pass`` of ``theory_cuda`` / ``measure_cuda`` here compares the CPU with itself and is no numerical
evidence about CUDA; these tests check that every section runs, records its row (with the card),
computes its derived numbers consistently and survives failures and a spent budget.  The numbers
that count come from the run on a lent GPU (benchmarks/RESULTS.md)."""

from __future__ import annotations

import json

import pytest

from benchmarks import bench_gpu


def read_lines(out):
    return [json.loads(line) for line in (out / "gpu_results.jsonl").read_text().splitlines()]


def test_cpu_smoke_runs_and_records_every_section(tmp_path, capsys):
    out = tmp_path / "bench"
    assert bench_gpu.main(["--cpu-smoke", "--out", str(out), "--epochs", "2"]) == 0
    rows = read_lines(out)
    sections = [r["section"] for r in rows]
    assert sections == ["env", "theory_cuda", "measure_cuda", "measure_cuda", "train", "measure_overhead", "projection"]
    assert all(r["card"] and r["card"] == rows[0]["card"] for r in rows)  # the card with every number
    by = {r["section"]: r for r in rows}
    assert by["env"]["smoke"] is True and by["env"]["torch"]
    # smoke only: CPU against CPU, so "pass" just shows the comparison code runs end to end
    assert by["theory_cuda"]["status"] == "pass" and by["theory_cuda"]["compared"] >= 20
    assert [r["status"] for r in rows if r["section"] == "measure_cuda"] == ["pass", "info"]
    train = by["train"]
    assert train["status"] == "ok" and train["variant"] == "compile=none" and len(train["epoch_times_s"]) == 2
    assert 0 < train["steady_epoch_median_s"] and train["images_per_s"] > 0 and train["first_epoch_s"] > 0
    assert train["epoch_s_60k"] == pytest.approx(train["steady_epoch_median_s"] * 60000 / train["images_per_epoch"])
    assert train["ratio_to_target"] == pytest.approx(train["epoch_s_60k"] / 1.5)
    assert by["measure_overhead"]["t_measure_s"] > 0 and len(by["measure_overhead"]["measure_times_s"]) == 3
    proj = by["projection"]
    assert proj["measured_epochs"] == 51 and proj["overhead"] == pytest.approx(
        51 * proj["t_measure_s"] / (350 * proj["t_epoch_s"]))
    table = (out / "gpu_results.md").read_text()
    assert "| train epoch" in table and "overhead at paper cadence" in table
    assert capsys.readouterr().out.rstrip().endswith(table.rstrip())  # the table is printed last
    assert sorted(p.name for p in out.iterdir()) == ["gpu_results.jsonl", "gpu_results.md"]  # runs elsewhere


def test_budget_and_failures_are_recorded(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("cuSOLVER exploded")

    monkeypatch.setattr(bench_gpu, "run_theory_check", broken)
    out = tmp_path / "b"
    # a spent budget: no section starts, each says why, the table is still written
    assert bench_gpu.main(["--cpu-smoke", "--out", str(out), "--budget-s", "0"]) == 0
    rows = read_lines(out)
    assert rows and all(r["status"] == "skipped" for r in rows) and (out / "gpu_results.md").is_file()
    out2 = tmp_path / "c"
    assert bench_gpu.main(["--cpu-smoke", "--out", str(out2), "--variants", "none", "--epochs", "1"]) == 0
    rows = read_lines(out2)
    failed = next(r for r in rows if r["section"] == "theory_cuda")
    assert failed["status"] == "error" and "cuSOLVER exploded" in failed["error"] and "Traceback" in failed["traceback"]
    assert any(r["section"] == "train" and r["status"] == "ok" for r in rows)  # the next sections still ran
    assert "error" in (out2 / "gpu_results.md").read_text()

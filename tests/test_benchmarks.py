"""The measurement benchmark's two approaches compute the same numbers (its correctness half; the
speed half is for `make bench`, never asserted in a test)."""

from benchmarks import bench_measurement


def test_measurement_benchmark_agrees_with_the_common_approach():
    out = bench_measurement.main(["--n", "3000", "--baseline-n", "600", "--p", "48", "--repeat", "1"])
    # 27 metrics of both approaches in float64 on the same 600 samples: the notebook's formulas
    # (balanced subsample) and the toolkit's differ by rounding, ~1e-13; the benchmark's bar is 1e-8
    assert out["max_rel_diff"] < 1e-8
    assert out["ratio"] > 0 and len(out["ratios"]) == 1


def test_resume_check_script_on_the_cpu(tmp_path):
    """The device's resume check, at toy size on the CPU: a run crashed after epoch 2's checkpoint and
    resumed records the same metrics as the uninterrupted run (CPU kernels are deterministic here)."""
    from benchmarks import check_gpu_resume

    report = check_gpu_resume.main([str(tmp_path), "--dataset", "digits", "--model", "mlp", "--per-class", "20"])
    assert report["epochs_res"] == report["epochs_ref"] == [0, 1, 2, 3, 4]
    assert set(report["identical_keys"]) == {"train_error", "loss", "nc1", "l_perp", "identity_residual"}
    assert (tmp_path / "resume_check.json").is_file()

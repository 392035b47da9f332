"""The measurement benchmark's two approaches compute the same numbers (its correctness half; the
speed half is for `make bench`, never asserted in a test)."""

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

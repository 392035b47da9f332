"""Sweeps: K members trained at once (stacked into one batched model, or interleaved) equal K single runs;
the automatic strategy choice; divergence, resume (also switching strategy), bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch

from benchmarks.check_gpu_resume import Killed, crash_after_checkpoint
from empirical.cli import EXIT_BAD_INPUT, main
from empirical.config import TrainConfig
from empirical.loading import load_run
from empirical.runs import read_config, read_metrics
from empirical.sweep import ENGINES, SWEEP_FILE, SweepSpec, candidate_strategies, cpu_workers, parse_lrs, run_sweep, select_lr
from empirical.training import TIMING_KEYS, train

EPOCHS = 4
#: Relative tolerance of a member against its single run after a few epochs.  The batched (vmap)
#: matrix products and the stacked SGD update round differently from the single model's in float32
#: (unit round-off 6e-8); a few epochs of SGD amplify that.  Measured: at most 2.2e-7 relative over
#: every metric and epoch of this configuration (BatchNorm MLP, 4 epochs, both lrs, two seeds); 2e-6
#: leaves a factor ~10 for other BLAS builds.  Errors (train / test / NC4) are counts: equal, or one
#: sample flipped by round-off at a decision boundary (n_test = n_train = 120 here).
REL = 2e-6


def base(out, **over) -> TrainConfig:
    kw = dict(dataset="gaussian", model="mlp", per_class=30, epochs=EPOCHS, lr=0.05, batch_size=40,
              data_kwargs={"dim": 16, "num_classes": 4, "separation": 2.0},
              model_kwargs={"widths": [32, 16], "batch_norm": True}, measure_epochs=list(range(EPOCHS + 1)),
              out=str(out), progress=False, num_threads=1, checkpoint_every=1)
    kw.update(over)
    return TrainConfig(**kw)


SPEC = dict(lrs=[0.05, 0.2], weight_decays=[5e-4], seeds=[0, 1])


def strip(records):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "s"
    run_sweep(SweepSpec(base(out), **SPEC, strategy="stacked"), out, figures=True)
    return out


@pytest.fixture(scope="module")
def interleaved(tmp_path_factory):
    out = tmp_path_factory.mktemp("interleaved") / "s"
    run_sweep(SweepSpec(base(out), **SPEC, strategy="interleaved"), out, figures=False)
    return out


@pytest.fixture(scope="module")
def threaded(tmp_path_factory):
    out = tmp_path_factory.mktemp("threaded") / "s"
    run_sweep(SweepSpec(base(out), **SPEC, strategy="threaded"), out, figures=False)
    return out


def assert_close(member, single, n_train):
    assert [r["epoch"] for r in member] == [r["epoch"] for r in single]
    for a, b in zip(member, single):
        assert a["step"] == b["step"] and a["lr"] == b["lr"] and a["lr_weighted_steps"] == b["lr_weighted_steps"]
        for key, v in b.items():
            if key in TIMING_KEYS or not isinstance(v, float):
                continue
            if key in ("train_error", "train_error_running", "nc4", "test_error"):
                assert abs(a[key] - v) <= 1.0 / n_train + 1e-12, (a["epoch"], key)
            else:
                assert math.isclose(a[key], v, rel_tol=REL, abs_tol=1e-12), (a["epoch"], key, a[key], v)


@pytest.mark.parametrize("lr, seed", [(0.2, 1), (0.05, 0)])
def test_member_equals_single_run(sweep, tmp_path, lr, seed):
    name = f"lr{lr:g}-wd0.0005-seed{seed}"
    single = tmp_path / "single"
    train(base(single, lr=lr, seed=seed))
    member, ref = read_metrics(sweep / name), read_metrics(single)
    # same initial weights, same data: epoch 0 is identical, float for float
    assert strip(member[:1]) == strip(ref[:1])
    assert_close(member, ref, n_train=4 * 30)
    # the member's directory is a normal run: same config as the single run but the folder
    a, b = read_config(sweep / name)["config"], read_config(single)["config"]
    assert {k: v for k, v in a.items() if k != "out"} == {k: v for k, v in b.items() if k != "out"}


@pytest.mark.parametrize("strategy", ["interleaved", "threaded"])
@pytest.mark.parametrize("lr, seed", [(0.2, 1), (0.05, 0)])
def test_interleaved_member_is_its_single_run_exactly(request, tmp_path, lr, seed, strategy):
    """An interleaved member runs its single run's own step (same module, optimiser, batches), in turn or on a
    worker thread at the same thread count: on the CPU every metric of every epoch is equal, float for float
    (only the wall-clock keys differ)."""
    out = request.getfixturevalue(strategy)
    single = tmp_path / "single"
    train(base(single, lr=lr, seed=seed))
    member = read_metrics(out / f"lr{lr:g}-wd0.0005-seed{seed}")
    assert len(member) == EPOCHS + 1 and strip(member) == strip(read_metrics(single))
    env = read_config(out / f"lr{lr:g}-wd0.0005-seed{seed}")["environment"]
    assert env["sweep_strategy"] == strategy and env["sgd"] != "stacked"
    s = json.loads((out / SWEEP_FILE).read_text())
    assert s["strategy"] == strategy and s["spec"]["strategy_trial"] == {"requested": strategy}


def test_threaded_workers_follow_the_cores_and_the_thread_count():
    import os

    cores = len(os.sched_getaffinity(0))
    assert cpu_workers(base("x", num_threads=1), 4) == min(4, cores)
    assert cpu_workers(base("x", num_threads=1), 1) == 1
    assert cpu_workers(base("x", num_threads=None), 4) == 1  # all cores per member: one at a time
    assert cpu_workers(base("x", num_threads=cores + 1), 4) == 1


def test_auto_strategy_takes_the_faster_in_its_trial(tmp_path):
    out = tmp_path / "a"
    run_sweep(SweepSpec(base(out, measure_epochs=[0, EPOCHS]), lrs=[0.05, 0.2], weight_decays=[5e-4], seeds=[0]),
              out, figures=False)
    s = json.loads((out / SWEEP_FILE).read_text())
    trial = s["spec"]["strategy_trial"]
    times = trial["trial_seconds_per_step"]
    assert set(times) == set(candidate_strategies([base(out)] * 2, torch.device("cpu"))) >= {"stacked", "interleaved"}
    assert all(t > 0 for t in times.values()), trial
    assert s["strategy"] == min(times, key=times.get) and trial["members"] == 2 and trial["requested"] == "auto"
    for m in s["members"]:
        assert m["status"] == "finished"
        assert read_config(out / m["run_dir"])["environment"]["sweep_strategy"] == s["strategy"]


def test_sweep_file_figure_and_member_runs(sweep):
    s = json.loads((sweep / SWEEP_FILE).read_text())
    assert s["status"] == "finished" and len(s["members"]) == 4
    assert all(m["status"] == "finished" and m["last_measured_epoch"] == EPOCHS for m in s["members"])
    # the paper's rule: the lr with the best final test accuracy (mean over its seeds)
    acc = {lr: sum(1 - m["final_test_error"] for m in s["members"] if m["lr"] == lr) / 2 for lr in SPEC["lrs"]}
    assert s["selected"]["lr"] == max(acc, key=acc.get)
    assert (sweep / "accuracy_vs_lr.png").stat().st_size > 1000
    member = sweep / s["members"][0]["run_dir"]
    assert (member / "figures" / "summary.png").is_file()
    run = load_run(member)  # the member's last.pt is a single-run checkpoint
    assert run.epoch == EPOCHS and not run.model.training


@pytest.mark.parametrize("strategy", sorted(ENGINES))
def test_diverging_member_stops_alone(tmp_path, strategy):
    out = tmp_path / "d"
    run_sweep(SweepSpec(base(out, measure_epochs=[0, 2, 4]), lrs=[0.05, 1e6], weight_decays=[5e-4], seeds=[0],
                        strategy=strategy), out, figures=False)
    s = json.loads((out / SWEEP_FILE).read_text())
    status = {m["lr"]: m for m in s["members"]}
    assert status[1e6]["status"] == "diverged" and "non-finite" in status[1e6]["stopped"]
    assert status[0.05]["status"] == "finished" and status[0.05]["last_measured_epoch"] == EPOCHS
    assert s["selected"]["lr"] == 0.05
    # the survivor is unaffected: same as its single run
    train(base(tmp_path / "one", measure_epochs=[0, 2, 4]))
    assert_close(read_metrics(out / "lr0.05-wd0.0005-seed0"), read_metrics(tmp_path / "one"), n_train=120)


def test_killed_sweep_resumes_as_a_whole(tmp_path, sweep):
    out = tmp_path / "k"
    spec = SweepSpec(base(out, checkpoint_every=2, checkpoint_every_s=0.0), **SPEC, max_members_per_chunk=2,
                     strategy="stacked")
    with pytest.raises(Killed), crash_after_checkpoint(EPOCHS, before_save=True):
        run_sweep(spec, out, figures=False)
    # killed before the first chunk's last checkpoint: it measured every epoch, its checkpoint is at
    # epoch 2; the second chunk never started
    names = [m["run_dir"] for m in json.loads((out / SWEEP_FILE).read_text())["members"]]
    assert json.loads((out / SWEEP_FILE).read_text())["status"] == "running"
    assert [r["epoch"] for r in read_metrics(out / names[0])] == list(range(EPOCHS + 1))
    with open(out / names[0] / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 9, "trai')  # a write torn by the kill is dropped
    assert main(["sweep", "--out", str(out), "--resume", "--no-progress", "--no-figures"]) == 0
    s = json.loads((out / SWEEP_FILE).read_text())
    assert s["status"] == "finished" and all(m["status"] == "finished" for m in s["members"])
    for name in names:  # epochs measured before the kill are skipped, not re-measured; chunks of 2 = one of 4
        resumed, whole = read_metrics(out / name), read_metrics(sweep / name)
        assert [r["epoch"] for r in resumed] == list(range(EPOCHS + 1))
        assert_close(resumed, whole, n_train=120)


@pytest.mark.parametrize("switch", [None, "stacked"])
def test_killed_interleaved_sweep_resumes_and_may_switch_strategy(tmp_path, interleaved, switch):
    """Both engines read and write the same chunk checkpoint: an interleaved sweep killed after its epoch-2
    checkpoint resumes to exactly the uninterrupted run, or, switched to ``stacked``, to within round-off."""
    out = tmp_path / "k"
    spec = SweepSpec(base(out, checkpoint_every=2, checkpoint_every_s=0.0), **SPEC, strategy="interleaved")
    with pytest.raises(Killed), crash_after_checkpoint(2):  # killed right after the epoch-2 checkpoint
        run_sweep(spec, out, figures=False)
    args = [] if switch is None else ["--strategy", switch]
    assert main(["sweep", "--out", str(out), "--resume", "--no-progress", "--no-figures", *args]) == 0
    s = json.loads((out / SWEEP_FILE).read_text())
    assert s["status"] == "finished" and s["strategy"] == (switch or "interleaved")
    for m in s["members"]:
        resumed, whole = read_metrics(out / m["run_dir"]), read_metrics(interleaved / m["run_dir"])
        assert [r["epoch"] for r in resumed] == list(range(EPOCHS + 1))
        assert read_config(out / m["run_dir"])["environment"]["sweep_strategy"] == "interleaved"  # as started
        if switch is None:
            assert strip(resumed) == strip(whole)
        else:  # epochs 3 and 4 trained stacked from the interleaved epoch-2 state
            assert strip(resumed[:3]) == strip(whole[:3])
            assert_close(resumed, whole, n_train=120)


@pytest.mark.parametrize("args, message", [
    (["--lrs", "0.1,-1"], "positive and finite"),
    (["--lrs", "inf"], "positive and finite"),
    (["--lrs", ","], "empty"),
    (["--lrs", "0.1,0.1"], "duplicate"),
    (["--lrs", "0.1", "--seeds", "1,1"], "duplicate"),
    (["--lrs", "0.1", "--weight-decays", "-1"], "weight decays"),
    (["--lrs", "0.1,x"], "cannot parse --lrs"),
    (["--lrs", "0.1", "--max-members-per-chunk", "0"], "max-members-per-chunk"),
    (["--lrs", "0.1", "--model-arg", "nosuchkw=1"], "nosuchkw"),
    ([], "--lrs"),
    (["--lrs", "0.1", "--strategy", "fastest"], "unknown sweep strategy"),
    # 2 x 131072^2 weights: ~200 GB with gradients and momentum, found on the meta device (nothing allocated)
    (["--lrs", "0.1", "--model-arg", "widths=[131072,131072]"], "not even one sweep member"),
])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, args, message):
    out = tmp_path / "bad"
    code = main(["sweep", "--dataset", "gaussian", "--epochs", "1", "--out", str(out), "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_existing_sweep_is_not_overwritten(sweep, capsys):
    before = (sweep / SWEEP_FILE).read_bytes()
    code = main(["sweep", "--dataset", "gaussian", "--epochs", "1", "--lrs", "0.1", "--out", str(sweep)])
    assert code == EXIT_BAD_INPUT and "--resume" in capsys.readouterr().err
    assert (sweep / SWEEP_FILE).read_bytes() == before
    code = main(["sweep", "--out", str(sweep), "--resume", "--lrs", "0.3", "--no-figures"])
    assert code == EXIT_BAD_INPUT and "lrs" in capsys.readouterr().err
    # without --lrs the stored members are resumed, but a changed option is still refused, not ignored
    code = main(["sweep", "--out", str(sweep), "--resume", "--epochs", "9", "--no-figures"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and "['epochs']" in err and len(err.strip().splitlines()) == 1
    assert (sweep / SWEEP_FILE).read_bytes() == before


def test_lr_grid_and_selection():
    lrs = parse_lrs("paper")
    assert len(lrs) == 25 and lrs[0] == pytest.approx(1e-4) and lrs[-1] == pytest.approx(0.25)
    assert lrs[16] == pytest.approx(0.0184, rel=2e-3)  # the notebook's tuned lr is in the grid (0-based 16)
    members = [dict(lr=0.1, final_test_error=0.2, status="finished"), dict(lr=0.2, final_test_error=0.1, status="finished"),
               dict(lr=0.3, final_test_error=0.0, status="diverged")]
    assert select_lr(members)["lr"] == 0.2


def test_failed_compile_falls_back_to_the_eager_step(tmp_path, monkeypatch, sweep):
    """compile requested but failing (as on a machine without a working compiler): one warning, then
    the eager step, BatchNorm buffers restored; the members equal the eager sweep's exactly."""
    from empirical.step import CompileFallbackWarning

    def broken(fn, **kw):
        def call(*a, **k):
            raise RuntimeError("no compiler here")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    out = tmp_path / "c"
    with pytest.warns(CompileFallbackWarning, match="no compiler here"):
        run_sweep(SweepSpec(base(out, compile="default"), **SPEC, strategy="stacked"), out, figures=False)
    for m in json.loads((sweep / SWEEP_FILE).read_text())["members"]:
        assert strip(read_metrics(out / m["run_dir"])) == strip(read_metrics(sweep / m["run_dir"]))


def test_sweep_refuses_torchrun(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="without torchrun"):
        run_sweep(SweepSpec(base(tmp_path / "t"), **SPEC), tmp_path / "t")
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("strategy", sorted(ENGINES))
def test_sweep_killed_before_its_first_checkpoint_restarts_with_monotone_clocks(tmp_path, strategy):
    """No chunk checkpoint yet (the first one is due at epoch 3): the resumed sweep trains again from the
    start, skips the epochs already measured, and its time totals never go back (as a single run's)."""
    out = tmp_path / "f"
    spec = SweepSpec(base(out, checkpoint_every=3, checkpoint_every_s=0.0), lrs=[0.05, 0.2], weight_decays=[5e-4],
                     seeds=[0], strategy=strategy)
    with pytest.raises(Killed), crash_after_checkpoint(3, before_save=True):
        run_sweep(spec, out, figures=False)
    assert not (out / "chunks" / "00" / "checkpoints" / "last.pt").exists()
    run_sweep(None, out, resume=True, figures=False)
    for m in json.loads((out / SWEEP_FILE).read_text())["members"]:
        recs = read_metrics(out / m["run_dir"])
        assert [r["epoch"] for r in recs] == list(range(EPOCHS + 1)) and m["status"] == "finished"
        for key in ("train_time_s", "measure_time_total_s"):
            values = [r[key] for r in recs]
            assert values == sorted(values), (key, values)

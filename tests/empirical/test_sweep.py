"""Sweeps: K members trained at once (threaded, the CPU's default, or interleaved) equal K single runs exactly;
the engines satisfy the training loop's interface; divergence, resume (also switching strategy, and a sweep
stored with a removed strategy), bad input."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks.check_gpu_resume import Killed, crash_after_checkpoint
from empirical.cli import EXIT_BAD_INPUT, main
from empirical.config import TrainConfig
from empirical.distributed import SINGLE
from empirical.loading import load_run
from empirical.runs import load_checkpoint, read_config, read_metrics
from empirical.sweep import (
    ENGINES,
    SWEEP_FILE,
    InterleavedEngine,
    SweepSpec,
    ThreadedEngine,
    cpu_workers,
    parse_lrs,
    run_sweep,
    select_lr,
)
from empirical.training import TIMING_KEYS, Engine, Member, SingleEngine, train

EPOCHS = 4


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
    """The default strategy (on the CPU: threaded; one thread per member, so as many workers as cores)."""
    out = tmp_path_factory.mktemp("sweep") / "s"
    run_sweep(SweepSpec(base(out), **SPEC), out, figures=True)
    return out


@pytest.fixture(scope="module")
def interleaved(tmp_path_factory):
    out = tmp_path_factory.mktemp("interleaved") / "s"
    run_sweep(SweepSpec(base(out), **SPEC, strategy="interleaved"), out, figures=False)
    return out


@pytest.mark.parametrize("strategy, fixture", [("interleaved", "interleaved"), ("threaded", "sweep")])
@pytest.mark.parametrize("lr, seed", [(0.2, 1), (0.05, 0)])
def test_member_is_its_single_run_exactly(request, tmp_path, lr, seed, strategy, fixture):
    """A member runs its single run's own step (same module, optimiser, batches), in turn or on a worker
    thread at the same thread count: on the CPU every metric of every epoch is equal, float for float
    (only the wall-clock keys differ), and its directory is a normal run with the single run's config."""
    out = request.getfixturevalue(fixture)
    single = tmp_path / "single"
    train(base(single, lr=lr, seed=seed))
    name = f"lr{lr:g}-wd0.0005-seed{seed}"
    member = read_metrics(out / name)
    assert len(member) == EPOCHS + 1 and strip(member) == strip(read_metrics(single))
    a, b = read_config(out / name), read_config(single)
    assert {k: v for k, v in a["config"].items() if k != "out"} == {k: v for k, v in b["config"].items() if k != "out"}
    assert a["environment"]["sweep_strategy"] == strategy and a["environment"]["sgd"] == "default"
    s = json.loads((out / SWEEP_FILE).read_text())
    assert s["strategy"] == s["spec"]["strategy"] == strategy and "strategy_trial" not in s["spec"]


def test_engines_satisfy_the_engine_protocol(tmp_path):
    """``empirical.training.Engine`` lists every member the training loop uses; the single run's engine and
    both sweep engines have them all, and an object lacking one (here ``writer``) does not pass."""
    cfgs = [base(tmp_path / f"m{k}", lr=0.05 * (k + 1)).resolved() for k in range(2)]
    single = SingleEngine(Member(cfgs[0]), torch.device("cpu"), SINGLE)
    engines = [single] + [cls([Member(c) for c in cfgs], torch.device("cpu"), tmp_path / cls.strategy)
                          for cls in (InterleavedEngine, ThreadedEngine)]
    for engine in engines:
        assert isinstance(engine, Engine), type(engine)
    for engine in engines[1:]:
        engine.close()
    del single.writer
    assert not isinstance(single, Engine)
    assert set(ENGINES) == {"threaded", "interleaved"}


def test_threaded_workers_follow_the_cores_and_the_thread_count():
    import os

    cores = len(os.sched_getaffinity(0))
    assert cpu_workers(base("x", num_threads=1), 4) == min(4, cores)
    assert cpu_workers(base("x", num_threads=1), 1) == 1
    assert cpu_workers(base("x", num_threads=None), 4) == 1  # all cores per member: one at a time
    assert cpu_workers(base("x", num_threads=cores + 1), 4) == 1


def plain_paths(value, path=""):
    """The paths in a checkpoint whose value is not a tensor or a plain value (number, string, None)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in plain_paths(v, f"{path}/{k}")]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in plain_paths(v, f"{path}[{i}]")]
    return [] if isinstance(value, (torch.Tensor, int, float, str, bool, type(None))) else [path]


def test_chunk_checkpoint_holds_only_tensors_and_plain_values(sweep):
    """The chunk checkpoint is each member's single-run checkpoint (torch's own model and optimizer state
    dicts) plus ``stopped``, and the epoch: nothing the sweep builds itself.  The members' RNG states are
    empirical.state's (``rng``), the single-run format's part, left out here."""
    ckpt = load_checkpoint(sweep / "chunks" / "00")
    assert sorted(ckpt) == ["epoch", "members"] and ckpt["epoch"] == EPOCHS and len(ckpt["members"]) == 4
    for member in ckpt["members"]:
        assert {"model", "optimizer", "stopped", "rng"} <= set(member)
        assert plain_paths({k: v for k, v in member.items() if k != "rng"}) == []
        assert set(member["optimizer"]) == {"state", "param_groups"}  # torch.optim.SGD.state_dict()


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
    assert strip(read_metrics(out / "lr0.05-wd0.0005-seed0")) == strip(read_metrics(tmp_path / "one"))


def test_killed_sweep_resumes_as_a_whole(tmp_path, sweep):
    """Killed before its first chunk's last checkpoint, resumed by the CLI; the sweep is stored as an earlier
    version stored it, with the removed strategy 'stacked': it continues with the default (threaded)."""
    out = tmp_path / "k"
    spec = SweepSpec(base(out, checkpoint_every=2, checkpoint_every_s=0.0), **SPEC, max_members_per_chunk=2)
    with pytest.raises(Killed), crash_after_checkpoint(EPOCHS, before_save=True):
        run_sweep(spec, out, figures=False)
    # killed before the first chunk's last checkpoint: it measured every epoch, its checkpoint is at
    # epoch 2; the second chunk never started
    names = [m["run_dir"] for m in json.loads((out / SWEEP_FILE).read_text())["members"]]
    assert json.loads((out / SWEEP_FILE).read_text())["status"] == "running"
    assert [r["epoch"] for r in read_metrics(out / names[0])] == list(range(EPOCHS + 1))
    with open(out / names[0] / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 9, "trai')  # a write torn by the kill is dropped
    stored = json.loads((out / SWEEP_FILE).read_text())
    stored["strategy"] = stored["spec"]["strategy"] = "stacked"
    (out / SWEEP_FILE).write_text(json.dumps(stored))
    assert main(["sweep", "--out", str(out), "--resume", "--no-progress", "--no-figures"]) == 0
    s = json.loads((out / SWEEP_FILE).read_text())
    assert s["status"] == "finished" and all(m["status"] == "finished" for m in s["members"])
    assert s["strategy"] == "threaded"
    for name in names:  # epochs measured before the kill are skipped, not re-measured; chunks of 2 = one of 4
        resumed, whole = read_metrics(out / name), read_metrics(sweep / name)
        assert [r["epoch"] for r in resumed] == list(range(EPOCHS + 1))
        assert strip(resumed) == strip(whole)


@pytest.mark.parametrize("switch", [None, "threaded"])
def test_killed_interleaved_sweep_resumes_and_may_switch_strategy(tmp_path, interleaved, switch):
    """Both engines read and write the same chunk checkpoint: an interleaved sweep killed after its epoch-2
    checkpoint resumes to exactly the uninterrupted run, also when switched to ``threaded``."""
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
        assert strip(resumed) == strip(whole)


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
    (["--lrs", "0.1", "--strategy", "stacked"], "unknown sweep strategy"),  # removed
    (["--lrs", "0.1", "--strategy", "auto"], "unknown sweep strategy"),  # removed
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
    members = [
        dict(lr=0.1, final_test_error=0.2, status="finished"),
        dict(lr=0.2, final_test_error=0.1, status="finished"),
        dict(lr=0.3, final_test_error=0.0, status="diverged"),
    ]
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
        run_sweep(SweepSpec(base(out, compile="default"), **SPEC), out, figures=False)
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


def test_sweep_members_measure_layers_as_their_single_runs(tmp_path):
    """A member with --measure-layers writes the same config.json ``layers`` entry and the same per-layer records
    as its single run (bit for bit: the member runs the single run's step and measurement)."""
    opts = dict(measure_layers="all-blocks", epochs=2, measure_epochs=[0, 2])
    out = tmp_path / "s"
    run_sweep(SweepSpec(base(out, **opts), lrs=[0.05], weight_decays=[5e-4], seeds=[0]), out, figures=False)
    member = out / "lr0.05-wd0.0005-seed0"
    train(base(tmp_path / "one", **opts))
    assert read_config(member)["layers"] == read_config(tmp_path / "one")["layers"]
    assert read_config(member)["layers"]["names"]  # the MLP's hidden layers were picked
    got, want = read_metrics(member), read_metrics(tmp_path / "one")
    assert [r["layers"] for r in got] == [r["layers"] for r in want]


def test_sweep_refuses_unknown_layer_names_before_writing(tmp_path):
    """A --measure-layers name that is not a module stops the sweep in one line before sweep.json is written, so the
    same command with the name fixed runs (no folder left to delete)."""
    out = tmp_path / "s"
    with pytest.raises(ValueError, match="nope"):
        run_sweep(SweepSpec(base(out, measure_layers=["nope"]), lrs=[0.05], weight_decays=[5e-4], seeds=[0]), out,
                  figures=False)
    assert not out.exists()


def test_sweep_without_layers_runs_as_a_single_run_does(tmp_path):
    """An empty --measure-layers means "no layers" for a sweep as for a single run (the sweep's early check once
    refused it)."""
    out = tmp_path / "s"
    run_sweep(SweepSpec(base(out, measure_layers="", epochs=1, measure_epochs=[1]), lrs=[0.05], weight_decays=[5e-4],
                        seeds=[0]), out, figures=False)
    member = out / "lr0.05-wd0.0005-seed0"
    assert read_config(member).get("layers") is None and "layers" not in read_metrics(member)[-1]

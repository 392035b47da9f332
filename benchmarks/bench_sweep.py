"""Benchmark: a sweep of K models trained at once against K sequential single runs, in the same run.

``python -m benchmarks.bench_sweep [--epochs 30] [--repeats 1] [--out results.json]``

* **CPU** (always): K = 4 MLPs (the ``digits-mlp`` preset: scikit-learn digits, 130 per class,
  64-256-256-64 with BatchNorm, one thread) at learning rates 0.05, 0.1, 0.2, 0.4, measured at the
  paper's schedule rescaled to ``--epochs``: :func:`empirical.sweep.run_sweep` (one stacked model,
  ``vmap``) against four :func:`empirical.training.train` runs one after the other.  Wall time of
  each (everything: data, model, training, measurement, checkpoints), model-epochs per second, and
  the ratio.  It also prints the bookkeeping overhead of the single runs: wall time beyond
  training + measurement (``time_s - train_time_s - measure_time_total_s`` of the last record,
  i.e. data loading, model building, checkpoints, metrics lines), and the largest relative
  difference of a member's final metrics from its single run's (float32 round-off).
* **CUDA** (only when a GPU is present): K = 8 ResNet18 on Fashion-MNIST (``--gpu-per-class``,
  ``--gpu-epochs``, at least 2; ``--data-root``) at 8 learning rates of the paper's grid against one
  single run of the same options: model-epochs per second from the last epoch's time (``epoch_time_s``
  of the last record; the first epoch compiles), and the ratio (the issue's target: at least 3x).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from empirical.config import PRESETS, TrainConfig
from empirical.runs import read_metrics
from empirical.schedule import lr_grid
from empirical.sweep import SweepSpec, run_sweep
from empirical.training import train

CPU_LRS = [0.05, 0.1, 0.2, 0.4]
COMPARED = ("train_error", "loss", "nc1", "nc3", "l_perp")


def _summary(run_dir: Path, wall: float) -> dict:
    last = read_metrics(run_dir)[-1]
    work = last["train_time_s"] + last["measure_time_total_s"]
    return {"wall_s": wall, "time_s": last["time_s"], "train_s": last["train_time_s"],
            "measure_s": last["measure_time_total_s"], "overhead_s": last["time_s"] - work,
            "overhead_ratio": last["time_s"] / work}


def bench_cpu(epochs: int, root: Path) -> dict:
    base = TrainConfig(**{**PRESETS["digits-mlp"], "epochs": epochs, "progress": False, "device": "cpu",
                          "checkpoint_every_s": 300.0})
    # warm-up (imports, lazy initialisation, the digits file), not timed
    train(dataclasses.replace(base, epochs=1, measure_epochs=[0, 1], out=str(root / "warm-up")))
    singles = []
    t_all = time.perf_counter()
    for lr in CPU_LRS:
        out = root / f"single-{lr:g}"
        t0 = time.perf_counter()
        train(dataclasses.replace(base, lr=lr, out=str(out)))
        singles.append(_summary(out, time.perf_counter() - t0))
    seq_wall = time.perf_counter() - t_all
    sweep_dir = root / "sweep"
    t0 = time.perf_counter()
    run_sweep(SweepSpec(dataclasses.replace(base, out=str(sweep_dir)), lrs=CPU_LRS, weight_decays=[base.weight_decay],
                        seeds=[base.seed]), sweep_dir, figures=False)
    sweep_wall = time.perf_counter() - t0
    members = [_summary(sweep_dir / f"lr{lr:.6g}-wd{base.weight_decay:.6g}-seed0", sweep_wall) for lr in CPU_LRS]
    worst = 0.0
    for lr in CPU_LRS:
        a = read_metrics(sweep_dir / f"lr{lr:.6g}-wd{base.weight_decay:.6g}-seed0")[-1]
        b = read_metrics(root / f"single-{lr:g}")[-1]
        for k in COMPARED:
            if b[k]:
                worst = max(worst, abs(a[k] - b[k]) / abs(b[k]))
    K = len(CPU_LRS)
    return {
        "K": K, "epochs": epochs, "threads": base.num_threads, "cpu_cores": torch.get_num_threads(),
        "sequential_wall_s": seq_wall, "sweep_wall_s": sweep_wall,
        "sequential_model_epochs_per_s": K * epochs / seq_wall, "sweep_model_epochs_per_s": K * epochs / sweep_wall,
        "speedup": seq_wall / sweep_wall,
        "sequential_train_s": sum(s["train_s"] for s in singles), "sweep_train_s": members[0]["train_s"],
        "sequential_measure_s": sum(s["measure_s"] for s in singles), "sweep_measure_s": sum(m["measure_s"] for m in members),
        "single_overhead_ratio_max": max(s["overhead_ratio"] for s in singles),
        "sweep_overhead_ratio": sweep_wall / (members[0]["train_s"] + sum(m["measure_s"] for m in members)),
        "single_overhead_s": [round(s["overhead_s"], 3) for s in singles],
        "final_metrics_max_rel_diff": worst,
    }


def bench_checkpoints(epochs: int, root: Path) -> dict:
    """Bookkeeping of one single run (digits MLP): checkpoints every epoch (the old default) against
    by time (300 s) and at the end (the new default); wall time beyond training + measurement."""
    base = TrainConfig(**{**PRESETS["digits-mlp"], "epochs": epochs, "progress": False, "device": "cpu"})
    out = {}
    for name, kw in (("every_epoch", {"checkpoint_every": 1}), ("by_time", {})):
        run_dir = root / f"ckpt-{name}"
        t0 = time.perf_counter()
        train(dataclasses.replace(base, out=str(run_dir), **kw))
        out[name] = _summary(run_dir, time.perf_counter() - t0)
        out[name]["wall_ratio"] = out[name]["wall_s"] / (out[name]["train_s"] + out[name]["measure_s"])
    return out


def bench_cuda(root: Path, per_class: int, epochs: int, data_root: str | None, K: int = 8) -> dict:
    """K ResNet18 members on Fashion-MNIST against one single run (the last epoch's time; the first compiles)."""
    grid = [float(v) for v in lr_grid()]
    lrs = grid[16 - K // 2: 16 + K - K // 2]  # K values around the notebook's 0.0184 (grid entry 16)
    base = TrainConfig(dataset="fashion-mnist", model="resnet18", per_class=per_class, epochs=epochs, lr=0.0184,
                       data_root=data_root, measure_epochs=[0, epochs], progress=False, device="cuda")
    single_dir = root / "gpu-single"
    t0 = time.perf_counter()
    train(dataclasses.replace(base, out=str(single_dir)))
    single_wall = time.perf_counter() - t0
    sweep_dir = root / "gpu-sweep"
    t0 = time.perf_counter()
    run_sweep(SweepSpec(dataclasses.replace(base, out=str(sweep_dir)), lrs=lrs, weight_decays=[base.weight_decay],
                        seeds=[0]), sweep_dir, figures=False)
    sweep_wall = time.perf_counter() - t0

    # measured epochs are 0 and the last: epoch_time_s of the last record is the last epoch's time,
    # train_time_s / epochs the mean over all epochs (the compiling first one included)
    recs = read_metrics(single_dir)
    single_epoch = recs[-1]["train_time_s"] / epochs
    member = next(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.startswith("lr"))
    mrecs = read_metrics(member)
    sweep_epoch = mrecs[-1]["train_time_s"] / epochs
    s = json.loads((sweep_dir / "sweep.json").read_text())
    return {
        "device": torch.cuda.get_device_name(0), "K": K, "epochs": epochs, "per_class": per_class,
        "single_wall_s": single_wall, "sweep_wall_s": sweep_wall,
        "single_epoch_s_mean": single_epoch, "sweep_epoch_s_mean": sweep_epoch,
        "last_epoch_s_single": recs[-1]["epoch_time_s"], "last_epoch_s_sweep": mrecs[-1]["epoch_time_s"],
        "single_model_epochs_per_s": 1.0 / recs[-1]["epoch_time_s"], "sweep_model_epochs_per_s": K / mrecs[-1]["epoch_time_s"],
        "throughput_ratio_last_epoch": K * recs[-1]["epoch_time_s"] / mrecs[-1]["epoch_time_s"],
        "chunk_size": s["spec"]["max_members_per_chunk"],
        "compile_mode_sweep": json.loads((member / "config.json").read_text())["environment"]["compile_mode"],
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=1, help="repeat the CPU comparison; the median ratio is printed")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--gpu-per-class", type=int, default=5000)
    ap.add_argument("--gpu-epochs", type=int, default=3)
    ap.add_argument("--no-gpu", action="store_true")
    args = ap.parse_args(argv)
    if args.gpu_epochs < 2:
        ap.error("--gpu-epochs must be >= 2 (the first epoch compiles; the last one is timed)")
    results: dict = {"cpu": []}
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        for i in range(args.repeats):
            results["cpu"].append(bench_cpu(args.epochs, Path(tmp) / f"cpu{i}"))
        results["checkpoints"] = bench_checkpoints(args.epochs, Path(tmp))
        if torch.cuda.is_available() and not args.no_gpu:
            results["cuda"] = bench_cuda(Path(tmp), args.gpu_per_class, args.gpu_epochs, args.data_root)
    print(f"CPU ({torch.get_num_threads()} torch threads available; runs use {results['cpu'][0]['threads']}): "
          f"K = {len(CPU_LRS)} digits MLPs, {args.epochs} epochs")
    print("| what | sequential single runs | sweep (stacked, vmap) |")
    print("|---|---|---|")
    for r in results["cpu"]:
        print(f"| wall time, s | {r['sequential_wall_s']:.2f} | {r['sweep_wall_s']:.2f} |")
        print(f"| training, s | {r['sequential_train_s']:.2f} | {r['sweep_train_s']:.2f} |")
        print(f"| measurement, s | {r['sequential_measure_s']:.2f} | {r['sweep_measure_s']:.2f} |")
        print(f"| model-epochs / s | {r['sequential_model_epochs_per_s']:.2f} | {r['sweep_model_epochs_per_s']:.2f} |")
    ratios = [r["speedup"] for r in results["cpu"]]
    print(f"sweep speed-up (sequential wall / sweep wall): {statistics.median(ratios):.2f}x "
          f"(runs: {', '.join(f'{x:.2f}' for x in ratios)})")
    r = results["cpu"][0]
    print(f"single-run wall time / (training + measurement): max {r['single_overhead_ratio_max']:.3f} "
          f"(overhead s per run: {r['single_overhead_s']}); sweep: {r['sweep_overhead_ratio']:.3f}")
    ck = results["checkpoints"]
    beyond = {name: c["wall_s"] - c["train_s"] - c["measure_s"] for name, c in ck.items()}
    print(f"single run (digits MLP, {args.epochs} epochs), bookkeeping: checkpoints every epoch against by time (300 s) + at the end")
    print("| checkpoints | wall, s | beyond training + measurement, s | wall / (training + measurement) |")
    print("|---|---|---|---|")
    for name, c in ck.items():
        print(f"| {name.replace('_', ' ')} | {c['wall_s']:.2f} | {beyond[name]:.3f} | {c['wall_ratio']:.3f} |")
    print(f"bookkeeping time, every epoch / by time: {beyond['every_epoch'] / max(beyond['by_time'], 1e-9):.2f}x")
    print(f"member vs single run, final {', '.join(COMPARED)}: max relative difference {r['final_metrics_max_rel_diff']:.2e}")
    if "cuda" in results:
        c = results["cuda"]
        print(f"CUDA ({c['device']}): K = {c['K']} ResNet18, Fashion-MNIST {c['per_class']}/class, {c['epochs']} epochs, "
              f"chunk {c['chunk_size']}, compile {c['compile_mode_sweep']}")
        print("| what | single run | sweep (stacked, vmap) |")
        print("|---|---|---|")
        print(f"| wall time, s | {c['single_wall_s']:.2f} | {c['sweep_wall_s']:.2f} |")
        print(f"| last epoch, s | {c['last_epoch_s_single']:.3f} | {c['last_epoch_s_sweep']:.3f} |")
        print(f"| mean epoch (first included), s | {c['single_epoch_s_mean']:.3f} | {c['sweep_epoch_s_mean']:.3f} |")
        print(f"| model-epochs / s (last epoch) | {c['single_model_epochs_per_s']:.2f} | {c['sweep_model_epochs_per_s']:.2f} |")
        print(f"sweep throughput ratio (model-epochs / s, last epoch): {c['throughput_ratio_last_epoch']:.2f}x (target >= 3)")
    else:
        print("CUDA: not available here; the K = 8 ResNet18 comparison did not run")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()

"""Benchmark: a sweep of K models trained at once, by each strategy, against K single runs, in the same run.

``python -m benchmarks.bench_sweep [--epochs 30] [--resnet-epochs 3] [--repeats 1] [--out results.json]``

* **CPU** (always), in one thread (the ``digits-mlp`` preset's):
  - K = 4 MLPs (the ``digits-mlp`` preset: scikit-learn digits, 130 per class, 64-256-256-64 with
    BatchNorm) at learning rates 0.05, 0.1, 0.2, 0.4, ``--epochs`` epochs (0 skips them), measured at the
    paper's schedule rescaled;
  - K = 4 ResNet18s on the same data (``--resnet-epochs``; 0 skips them), measured at epoch 0 and the last;

  each as four :func:`empirical.training.train` runs one after the other, then one sweep per strategy
  (:func:`empirical.sweep.run_sweep`, ``"threaded"``: each member's own step on worker threads, one member
  per core; ``"interleaved"``: the same in turn).  Wall time of each (everything: data, model, training,
  measurement, checkpoints), training time, model-epochs per second and the ratio to the sequential runs;
  the largest relative difference of a member's final metrics from its single run's.
* **Bookkeeping** of a single run (digits MLP, ``--epochs``): checkpoints every epoch against by time (300 s)
  and at the end; wall time beyond training + measurement.
* **CUDA** (only when a GPU is present): K = 8 ResNet18 on Fashion-MNIST (``--gpu-per-class``,
  ``--gpu-epochs``, at least 2; ``--data-root``) at 8 learning rates of the paper's grid, interleaved on
  streams (the CUDA strategy), against one single run of the same options:
  model-epochs per second from the last epoch's time
  (``epoch_time_s`` of the last record; the first epoch compiles), and the ratio (issue 10's target: >= 3x).
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
from empirical.sweep import ENGINES, SweepSpec, run_sweep
from empirical.training import train

CPU_LRS = [0.05, 0.1, 0.2, 0.4]
COMPARED = ("train_error", "loss", "nc1", "nc3", "l_perp")
STRATEGIES = tuple(ENGINES)
#: The strategies that run on CUDA ("threaded" is for the CPU).
CUDA_STRATEGIES = ("interleaved",)


def _summary(run_dir: Path, wall: float) -> dict:
    last = read_metrics(run_dir)[-1]
    work = last["train_time_s"] + last["measure_time_total_s"]
    return {"wall_s": wall, "time_s": last["time_s"], "train_s": last["train_time_s"],
            "measure_s": last["measure_time_total_s"], "overhead_s": last["time_s"] - work,
            "overhead_ratio": last["time_s"] / work}


def _member_dir(sweep_dir: Path, cfg: TrainConfig) -> Path:
    return sweep_dir / f"lr{cfg.lr:.6g}-wd{cfg.weight_decay:.6g}-seed{cfg.seed}"


def _max_rel_diff(a: dict, b: dict) -> float:
    worst = 0.0
    for k in COMPARED:
        if b.get(k) and a.get(k) is not None:
            worst = max(worst, abs(a[k] - b[k]) / abs(b[k]))
    return worst


def compare_cpu(name: str, base: TrainConfig, lrs: list[float], root: Path) -> dict:
    """K single runs one after the other, then one sweep per strategy, of the same members."""
    # warm-up (imports, lazy initialisation, the data file, first allocations), not timed
    train(dataclasses.replace(base, epochs=1, measure_epochs=[0, 1], out=str(root / f"{name}-warm-up")))
    cfgs = [dataclasses.replace(base, lr=lr) for lr in lrs]
    singles = []
    t_all = time.perf_counter()
    for c in cfgs:
        out = root / f"{name}-single-{c.lr:g}"
        t0 = time.perf_counter()
        train(dataclasses.replace(c, out=str(out)))
        singles.append(_summary(out, time.perf_counter() - t0))
    K, epochs = len(lrs), base.epochs
    seq_wall = time.perf_counter() - t_all
    res = {"model": base.model, "K": K, "epochs": epochs, "threads": base.num_threads,
           "sequential": {"wall_s": seq_wall, "train_s": sum(s["train_s"] for s in singles),
                          "measure_s": sum(s["measure_s"] for s in singles),
                          "model_epochs_per_s": K * epochs / seq_wall,
                          "overhead_ratio_max": max(s["overhead_ratio"] for s in singles),
                          "overhead_s": [round(s["overhead_s"], 3) for s in singles]}}
    for strategy in STRATEGIES:
        sweep_dir = root / f"{name}-{strategy}"
        t0 = time.perf_counter()
        run_sweep(SweepSpec(dataclasses.replace(base, out=str(sweep_dir)), lrs=lrs, weight_decays=[base.weight_decay],
                            seeds=[base.seed], strategy=strategy), sweep_dir, figures=False)
        wall = time.perf_counter() - t0
        members = [_summary(_member_dir(sweep_dir, c), wall) for c in cfgs]
        train_s, measure_s = members[0]["train_s"], sum(m["measure_s"] for m in members)
        res[strategy] = {
            "wall_s": wall,
            "train_s": train_s,
            "measure_s": measure_s,
            "model_epochs_per_s": K * epochs / wall,
            "speedup_wall": seq_wall / wall,
            "speedup_train": res["sequential"]["train_s"] / train_s,
            "overhead_ratio": wall / (train_s + measure_s),
            "final_metrics_max_rel_diff": max(
                _max_rel_diff(
                    read_metrics(_member_dir(sweep_dir, c))[-1], read_metrics(root / f"{name}-single-{c.lr:g}")[-1]
                )
                for c in cfgs
            ),
        }
    return res


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
    """K ResNet18 members on Fashion-MNIST by each strategy against one single run (the last epoch's time;
    the first compiles)."""
    grid = [float(v) for v in lr_grid()]
    lrs = grid[16 - K // 2: 16 + K - K // 2]  # K values around the notebook's 0.0184 (grid entry 16)
    base = TrainConfig(dataset="fashion-mnist", model="resnet18", per_class=per_class, epochs=epochs, lr=0.0184,
                       data_root=data_root, measure_epochs=[0, epochs], progress=False, device="cuda")
    single_dir = root / "gpu-single"
    t0 = time.perf_counter()
    train(dataclasses.replace(base, out=str(single_dir)))
    single_wall = time.perf_counter() - t0
    recs = read_metrics(single_dir)
    res = {"device": torch.cuda.get_device_name(0), "K": K, "epochs": epochs, "per_class": per_class,
           "single": {"wall_s": single_wall, "epoch_s_mean": recs[-1]["train_time_s"] / epochs,
                      "last_epoch_s": recs[-1]["epoch_time_s"], "model_epochs_per_s": 1.0 / recs[-1]["epoch_time_s"]}}
    for strategy in CUDA_STRATEGIES:
        sweep_dir = root / f"gpu-{strategy}"
        t0 = time.perf_counter()
        try:
            run_sweep(
                SweepSpec(
                    dataclasses.replace(base, out=str(sweep_dir)),
                    lrs=lrs,
                    weight_decays=[base.weight_decay],
                    seeds=[0],
                    strategy=strategy,
                ),
                sweep_dir,
                figures=False,
            )
        except Exception as exc:  # noqa: BLE001 - one strategy failing on this GPU must not hide the other's numbers
            res[strategy] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            continue
        wall = time.perf_counter() - t0
        member = _member_dir(sweep_dir, dataclasses.replace(base, lr=lrs[0]))
        mrecs = read_metrics(member)
        s = json.loads((sweep_dir / "sweep.json").read_text())
        res[strategy] = {
            "wall_s": wall,
            "epoch_s_mean": mrecs[-1]["train_time_s"] / epochs,
            "last_epoch_s": mrecs[-1]["epoch_time_s"],
            "model_epochs_per_s": K / mrecs[-1]["epoch_time_s"],
            "throughput_ratio_last_epoch": K * recs[-1]["epoch_time_s"] / mrecs[-1]["epoch_time_s"],
            "chunk_size": s["spec"]["max_members_per_chunk"],
            "compile_mode": json.loads((member / "config.json").read_text())["environment"]["compile_mode"],
            "final_metrics_max_rel_diff_lr0": _max_rel_diff(mrecs[-1], recs[-1]) if lrs[0] == base.lr else None,
        }
    return res


def print_cpu(r: dict) -> None:
    seq = r["sequential"]
    print(f"CPU, {r['threads']} torch thread(s): K = {r['K']} digits {r['model']}, {r['epochs']} epochs")
    print("| what | sequential single runs | " + " | ".join(f"sweep, {s}" for s in STRATEGIES) + " |")
    print("|---|---|" + "---|" * len(STRATEGIES))
    rows = (
        ("wall time, s", "wall_s", ".2f"),
        ("training, s", "train_s", ".2f"),
        ("measurement, s", "measure_s", ".2f"),
        ("model-epochs / s", "model_epochs_per_s", ".2f"),
    )
    for label, key, fmt in rows:
        print(f"| {label} | {format(seq[key], fmt)} | " + " | ".join(format(r[s][key], fmt) for s in STRATEGIES) + " |")
    print("| speed-up, wall (training) | 1 | " + " | ".join(
        f"{r[s]['speedup_wall']:.2f}x ({r[s]['speedup_train']:.2f}x)" for s in STRATEGIES) + " |")
    print("| member vs single run, max rel. diff of final metrics | 0 | " + " | ".join(
        f"{r[s]['final_metrics_max_rel_diff']:.1e}" for s in STRATEGIES) + " |")
    print(f"single-run wall / (training + measurement): max {seq['overhead_ratio_max']:.3f} "
          f"(overhead s per run: {seq['overhead_s']})")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=30,
                    help="epochs of the MLP comparison and the bookkeeping run (0: skip both; default: %(default)s)")
    ap.add_argument("--resnet-epochs", type=int, default=3,
                    help="epochs of the ResNet18 comparison (0: skip it; default: %(default)s)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="repeat the CPU comparisons; the median ratios are printed (default: %(default)s)")
    ap.add_argument("--out", default=None, help="write the results as JSON here (default: not written)")
    ap.add_argument("--data-root", default=None, help="folder of the Fashion-MNIST files (default: the loader's)")
    ap.add_argument("--gpu-per-class", type=int, default=5000, help="CUDA comparison: samples per "
                                                                    "class (default: %(default)s)")
    ap.add_argument("--gpu-epochs", type=int, default=3, help="CUDA comparison: epochs, >= 2 (default: %(default)s)")
    ap.add_argument("--no-gpu", action="store_true", help="skip the CUDA comparison (default: "
                                                          "run it when CUDA is present)")
    ap.add_argument("--gpu-only", action="store_true", help="skip the CPU comparisons (default: run them)")
    args = ap.parse_args(argv)
    if args.gpu_epochs < 2:
        ap.error("--gpu-epochs must be >= 2 (the first epoch compiles; the last one is timed)")
    mlp = TrainConfig(**{**PRESETS["digits-mlp"], "epochs": args.epochs, "progress": False, "device": "cpu",
                         "checkpoint_every_s": 300.0})
    resnet = TrainConfig(dataset="digits", model="resnet18", per_class=130, epochs=args.resnet_epochs, progress=False,
                         device="cpu", num_threads=1, measure_epochs=[0, args.resnet_epochs])
    results: dict = {"cpu_mlp": [], "cpu_resnet18": []}
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        if not args.gpu_only:
            for i in range(args.repeats):
                if args.epochs > 0:
                    results["cpu_mlp"].append(compare_cpu("mlp", mlp, CPU_LRS, Path(tmp) / f"mlp{i}"))
                if args.resnet_epochs > 0:
                    results["cpu_resnet18"].append(compare_cpu("resnet18", resnet, [0.005, 0.01, 0.02, 0.04],
                                                               Path(tmp) / f"resnet{i}"))
            if args.epochs > 0:
                results["checkpoints"] = bench_checkpoints(args.epochs, Path(tmp))
        if torch.cuda.is_available() and not args.no_gpu:
            results["cuda"] = bench_cuda(Path(tmp), args.gpu_per_class, args.gpu_epochs, args.data_root)
    for key in ("cpu_mlp", "cpu_resnet18"):
        for r in results[key]:
            print_cpu(r)
        if len(results[key]) > 1:
            print(f"median speed-up over {len(results[key])} repeats: " + ", ".join(
                f"{s} {statistics.median(r[s]['speedup_wall'] for r in results[key]):.2f}x" for s in STRATEGIES))
    if "checkpoints" in results:
        ck = results["checkpoints"]
        beyond = {name: c["wall_s"] - c["train_s"] - c["measure_s"] for name, c in ck.items()}
        print(f"single run (digits MLP, {args.epochs} epochs), bookkeeping: checkpoints every epoch against by time "
              "(300 s) + at the end")
        print("| checkpoints | wall, s | beyond training + measurement, s | wall / (training + measurement) |")
        print("|---|---|---|---|")
        for name, c in ck.items():
            print(f"| {name.replace('_', ' ')} | {c['wall_s']:.2f} | {beyond[name]:.3f} | {c['wall_ratio']:.3f} |")
        print(f"bookkeeping time, every epoch / by time: {beyond['every_epoch'] / max(beyond['by_time'], 1e-9):.2f}x")
    if "cuda" in results:
        c = results["cuda"]
        print(
            f"CUDA ({c['device']}): K = {c['K']} ResNet18, Fashion-MNIST {c['per_class']}/class, {c['epochs']} epochs"
        )
        print("| what | single run | " + " | ".join(f"sweep, {s}" for s in CUDA_STRATEGIES) + " |")
        print("|---|---|" + "---|" * len(CUDA_STRATEGIES))
        for label, key in (
            ("wall time, s", "wall_s"),
            ("last epoch, s", "last_epoch_s"),
            ("mean epoch (first included), s", "epoch_s_mean"),
            ("model-epochs / s (last epoch)", "model_epochs_per_s"),
        ):
            print(f"| {label} | {c['single'][key]:.3f} | " + " | ".join(
                "failed" if "error" in c[s] else f"{c[s][key]:.3f}" for s in CUDA_STRATEGIES) + " |")
        print(
            "| throughput ratio (target >= 3) | 1 | "
            + " | ".join(
                "failed" if "error" in c[s] else f"{c[s]['throughput_ratio_last_epoch']:.2f}x" for s in CUDA_STRATEGIES
            )
            + " |"
        )
        for s in CUDA_STRATEGIES:
            if "error" in c[s]:
                print(f"{s} failed: {c[s]['error']}")
            else:
                print(f"{s}: chunk {c[s]['chunk_size']}, compile {c[s]['compile_mode']}")
    else:
        print("CUDA: not available here; the K = 8 ResNet18 comparison did not run")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()

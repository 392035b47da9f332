"""Benchmark: layer-wise measurement of a ResNet18 at every block, in one pass, against the last layer alone.

``python -m benchmarks.bench_layers [--dataset fashion-mnist] [--per-class 100] [--repeat 3] [--threads 2]``

On the CPU, with empirical's own ResNet18 (``build_model("resnet18")``, untrained: the cost does not depend on the
weights) and a balanced subset of the dataset (Fashion-MNIST padded to 32 x 32 by default, ``--dataset digits`` for
sklearn's 8 x 8 digits), the benchmark times, in the same run and on the same data,

* **last layer**: :func:`empirical.measure` (one eval pass, the whole metrics record of the classifier's input);
* **every block**: the same call with ``layers=LayerTap(model, block_names(model))`` (the 8 residual blocks, global
  average pooled: ``p`` = 64, 64, 128, 128, 256, 256, 512, 512), i.e. ``train --measure-layers all-blocks``;

alternately, ``--repeat`` times each, and reports the best time of each, their ratio (target: at most 1.5) and the
median ratio of the back-to-back pairs (the shared machine's speed drifts between rounds).
The extra cost per block is the pooling in the hook, the float64 statistics (``O(n p^2)``), one ``p x p``
eigendecomposition for the probe, and two sweeps over the kept features (CDNV deviations, probe loss and NC4);
the forward pass is shared.
"""

from __future__ import annotations

import argparse
import time

import torch

from empirical.data import load_dataset
from empirical.layers import LayerTap, block_names
from empirical.measurement import measure
from empirical.models import build_model

TARGET_RATIO = 1.5


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(dataset: str = "fashion-mnist", per_class: int = 100, repeat: int = 3, batch_size: int = 500,
        data_root: str | None = None) -> dict:
    """Best times of the last-layer measurement and of the every-block measurement, and their ratio."""
    data = load_dataset(dataset, per_class=per_class, data_root=data_root)
    C = int(data.num_classes)
    torch.manual_seed(0)
    model = build_model("resnet18", num_classes=C, input_shape=tuple(data.x.shape[1:]))
    names = block_names(model)

    def last() -> dict:
        return measure(model, data.x, data.y, C, weight_decay=5e-4, batch_size=batch_size)

    def every() -> dict:
        return measure(model, data.x, data.y, C, weight_decay=5e-4, batch_size=batch_size,
                       layers=LayerTap(model, names))

    record = every()  # warm-up (allocator, thread pool) and the record the figures would read
    times: dict[str, list[float]] = {"last": [], "every": []}
    for _ in range(repeat):
        times["last"].append(_timed(last))
        times["every"].append(_timed(every))
    best = {k: min(v) for k, v in times.items()}
    paired = sorted(e / t for t, e in zip(times["last"], times["every"]))
    return {"dataset": dataset, "n": int(data.x.shape[0]), "input": list(data.x.shape[1:]), "layers": names,
            "dims": [record["layers"][n]["dim"] for n in names], "last_s": best["last"], "every_s": best["every"],
            "ratio": best["every"] / best["last"], "paired_median": paired[len(paired) // 2],
            "paired_range": (paired[0], paired[-1]), "all_last_s": times["last"], "all_every_s": times["every"],
            "max_identity_residual": max(record["layers"][n]["identity_residual"] for n in names)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist (default) or digits")
    ap.add_argument("--per-class", type=int, default=100, help="training samples per class (default 100)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions of each (best kept; default 3)")
    ap.add_argument("--batch-size", type=int, default=500, help="evaluation batch size (default 500)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--data-root", default=None, help="dataset folder (default: $NC_DATA_ROOT or system folders)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = run(args.dataset, args.per_class, args.repeat, args.batch_size, args.data_root)
    print(f"ResNet18 on {out['dataset']} (n = {out['n']}, input {out['input']}), {torch.get_num_threads()} threads, "
          f"best of {args.repeat}")
    print(f"  last layer only:          {out['last_s']:.3f} s")
    print(f"  every block ({len(out['layers'])} layers): {out['every_s']:.3f} s   dims {out['dims']}")
    verdict = "met" if out["ratio"] <= TARGET_RATIO else "NOT met"
    lo, hi = out["paired_range"]
    print(f"  ratio every / last = {out['ratio']:.3f} of the best times (target <= {TARGET_RATIO}: {verdict}); "
          f"median of the {args.repeat} back-to-back pairs {out['paired_median']:.3f} (range {lo:.3f}-{hi:.3f})")
    print(f"  max probe identity residual over the layers: {out['max_identity_residual']:.2e}")
    return out


if __name__ == "__main__":
    main()

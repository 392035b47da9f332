"""Device check: ``--resume`` of a compiled run (CUDA graphs on a GPU) after a crash.

``python -m benchmarks.check_gpu_resume OUT [--dataset fashion-mnist --data-root data --model resnet18
--per-class 500]``

Trains a reference run of 4 epochs (measured at 0-4), then the same run crashed by an exception
raised right after epoch 2's checkpoint is written, resumed from that checkpoint in the same
process; writes ``OUT/resume_check.json`` with the metrics of both runs side by side and prints
whether they agree.  On a GPU ``compile="auto"`` is ``reduce-overhead``, so this covers reloading
a checkpoint under CUDA graphs and the fused optimiser's state; on the CPU it runs eagerly
(tests/empirical/test_resume.py covers the CPU in deterministic mode).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from empirical import runs
from empirical.train import TrainConfig, train

KEYS = ("train_error", "loss", "nc1", "l_perp", "identity_residual", "train_time_s")


class Killed(Exception):
    pass


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--per-class", type=int, default=500)
    args = ap.parse_args(argv)
    base = dict(dataset=args.dataset, data_root=args.data_root, model=args.model, per_class=args.per_class,
                epochs=4, lr=0.0184, measure_epochs=[0, 1, 2, 3, 4], progress=False)
    tmp = tempfile.mkdtemp(prefix="resume_check_")
    ref_dir, res_dir = os.path.join(tmp, "ref"), os.path.join(tmp, "res")
    t0 = time.time()
    train(TrainConfig(**base, out=ref_dir))
    original = runs.save_checkpoint

    def crash_after_epoch_2(run_dir, state):
        original(run_dir, state)
        if state["epoch"] == 2:
            raise Killed()

    runs.save_checkpoint = crash_after_epoch_2
    try:
        train(TrainConfig(**base, out=res_dir))
    except Killed:
        pass
    finally:
        runs.save_checkpoint = original
    train(TrainConfig(out=res_dir), resume=True)
    ref, res = runs.read_metrics(ref_dir), runs.read_metrics(res_dir)
    env = runs.read_config(res_dir)["environment"]
    report = {"epochs_ref": [r["epoch"] for r in ref], "epochs_res": [r["epoch"] for r in res],
              "device": env.get("cuda_device_name") or env.get("device"), "compile_mode": env.get("compile_mode"),
              "wall_s": time.time() - t0}
    for k in KEYS:
        report[k] = [(a["epoch"], a.get(k), b.get(k)) for a, b in zip(ref, res)]
    same = [k for k in KEYS[:-1] if all(a == b for _, a, b in report[k])]
    report["identical_keys"] = same
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "resume_check.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(f"{report['device']}, compile {report['compile_mode']}: epochs {report['epochs_res']} "
          f"(reference {report['epochs_ref']}); identical after resume: {same}")
    return report


if __name__ == "__main__":
    main()

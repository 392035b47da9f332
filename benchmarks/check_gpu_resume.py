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
from contextlib import contextmanager

from empirical import runs
from empirical.training import TrainConfig, train

KEYS = ("train_error", "loss", "nc1", "l_perp", "identity_residual", "train_time_s")


class Killed(Exception):
    """The simulated crash raised by :func:`crash_after_checkpoint`."""


@contextmanager
def crash_after_checkpoint(epoch: int, before_save: bool = False):
    """Inside the block, a training run crashes (raises :class:`Killed`) at ``epoch``'s checkpoint.

    ``before_save=False``: right after the checkpoint of ``epoch`` is written (a kill after the
    epoch was saved); ``before_save=True``: just before it is written, i.e. after the epoch's
    metrics line but with the checkpoint still at the previous epoch (a kill between metrics and
    checkpoint).  Patches :func:`empirical.runs.save_checkpoint` (the training loop calls it
    through the module) and restores it on leaving the block.  Shared by this check and the tests
    (tests/empirical/test_resume.py, test_step.py).
    """
    original = runs.save_checkpoint

    def patched(run_dir, state, writer=None):
        if state["epoch"] == epoch and before_save:
            raise Killed(epoch)
        path = original(run_dir, state, writer)
        if state["epoch"] == epoch:
            raise Killed(epoch)
        return path

    runs.save_checkpoint = patched
    try:
        yield
    finally:
        runs.save_checkpoint = original


def compare(ref: list[dict], res: list[dict]) -> dict:
    """The two runs' records side by side: ``epochs_ref`` / ``epochs_res``, ``same_epochs``, per key of
    :data:`KEYS` the ``(epoch, reference, resumed)`` triples of the epochs both measured (in order), and
    ``identical_keys``: the keys (but the wall-clock one) equal at every epoch, empty unless both runs
    measured exactly the same epochs."""
    out = {"epochs_ref": [r["epoch"] for r in ref], "epochs_res": [r["epoch"] for r in res]}
    same_epochs = out["epochs_ref"] == out["epochs_res"]
    out["same_epochs"] = same_epochs
    for k in KEYS:  # zip stops at the shorter list: only meaningful with same_epochs
        out[k] = [(a["epoch"], a.get(k), b.get(k)) for a, b in zip(ref, res)]
    out["identical_keys"] = [k for k in KEYS[:-1] if same_epochs and all(a == b for _, a, b in out[k])]
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--per-class", type=int, default=500)
    args = ap.parse_args(argv)
    base = dict(dataset=args.dataset, data_root=args.data_root, model=args.model, per_class=args.per_class,
                epochs=4, lr=0.0184, measure_epochs=[0, 1, 2, 3, 4], progress=False, checkpoint_every=1)
    tmp = tempfile.mkdtemp(prefix="resume_check_")
    ref_dir, res_dir = os.path.join(tmp, "ref"), os.path.join(tmp, "res")
    t0 = time.time()
    train(TrainConfig(**base, out=ref_dir))
    try:
        with crash_after_checkpoint(2):
            train(TrainConfig(**base, out=res_dir))
    except Killed:
        pass
    else:
        raise RuntimeError("the run was not crashed after epoch 2's checkpoint")
    train(TrainConfig(out=res_dir), resume=True)
    ref, res = runs.read_metrics(ref_dir), runs.read_metrics(res_dir)
    env = runs.read_config(res_dir)["environment"]
    report = {"device": env.get("cuda_device_name") or env.get("device"), "compile_mode": env.get("compile_mode"),
              "wall_s": time.time() - t0, **compare(ref, res)}
    same, same_epochs = report["identical_keys"], report["same_epochs"]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "resume_check.json"), "w") as f:
        json.dump(report, f, indent=1)
    if not same_epochs:
        print(f"MISMATCH: the resumed run measured epochs {report['epochs_res']}, the reference "
              f"{report['epochs_ref']}; no key is reported identical")
    print(f"{report['device']}, compile {report['compile_mode']}: epochs {report['epochs_res']} "
          f"(reference {report['epochs_ref']}); identical after resume: {same}")
    return report


if __name__ == "__main__":
    main()

"""The calibration ladder's table: how each verdict of the theory degrades from the exact flow to the UFM as the
learning rate and the batch size grow (math §6.5, §7.4; issue "theory against training you can trust").

``python -m benchmarks.bench_ladder [--lrs 0.1,0.4] [--batch-sizes 32,128] [--out runs/ladder-table]``

For each (learning rate, batch size) the rungs (a) exact projected flow, (b) free gradient flow, (c) UFM full batch
with the optimiser, (d) UFM at the batch size are planned as the ladder of a digits run with the ``digits-mlp``
preset's protocol (C = 10, 130 per class, SGD momentum 0.9, weight decay 5e-4, 350 epochs, lr / 10 at epochs 116 and
233, the paper's measured epochs) and that learning rate and batch size, run (:func:`paper_checks.ladder.run_rungs`)
and read by the same ``compare`` and claims as any run (:func:`paper_checks.ladder.ladder_rows`).  Prints one
Markdown table (a row per setting and rung) and the wall time; rungs already in ``--out`` with the same plan are
reused.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from empirical.config import PRESETS, TrainConfig
from paper_checks.ladder import ladder_rows, plan_ladder, run_rungs

COLUMNS = ("fit min R^2", "beta", "s N/kappa", "forward (fitted map)", "forward (derived clock)", "L_NC1 fit",
           "L_NC2/3 fit", "L_perp ratio at C wd/2, wd/2, 0", "max/min SNR", "claims passed (of 5 MSE-theory)")


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.3g}%"


def _num(v, fmt=".3g") -> str:
    return "n/a" if v is None else format(v, fmt)


def run_config(lr: float, batch_size: int) -> dict:
    """The config.json of a digits-mlp run at this learning rate and batch size (the ladder copies it)."""
    cfg = TrainConfig(**{**PRESETS["digits-mlp"], "lr": lr, "batch_size": batch_size}).resolved()
    return {"config": {**cfg.to_dict(), "num_classes": 10}}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--lrs", default="0.1,0.4", help="comma-separated learning rates")
    ap.add_argument("--batch-sizes", default="32,128", help="comma-separated batch sizes")
    ap.add_argument("--out", default="runs/ladder-table", help="folder of the rungs' run directories")
    ns = ap.parse_args(argv)
    lrs = [float(v) for v in ns.lrs.split(",")]
    batches = [int(v) for v in ns.batch_sizes.split(",")]
    lines = ["| lr | batch | rung | " + " | ".join(COLUMNS) + " |", "|" + "---|" * (3 + len(COLUMNS))]
    t0 = time.perf_counter()
    for lr in lrs:
        for batch in batches:
            config = run_config(lr, batch)
            cfg = config["config"]
            records = [{"epoch": e, "class_counts": [130] * 10} for e in cfg["measure_epochs"]]
            plan = plan_ladder(config, records)
            t = time.perf_counter()
            skipped: dict[str, str] = {}
            dirs = run_rungs(plan, Path(ns.out) / f"lr{lr:g}-b{batch}", skipped=skipped)
            rows = ladder_rows(dirs)
            print(f"lr {lr:g}, batch {batch}: {time.perf_counter() - t:.1f} s"
                  + "".join(f"; rung ({r}) not run: {why}" for r, why in skipped.items()), flush=True)
            for r, why in skipped.items():
                lines.append(f"| {lr:g} | {batch} | ({r}) | not run: {why} |" + " |" * (len(COLUMNS) - 1))
            for r in rows:
                perp = ", ".join(_num(r.get(k)) for k in ("perp_opt", "perp_nb", "perp_0"))
                passed = sum(v == "pass" for v in r["claims"].values())
                lines.append(
                    f"| {lr:g} | {batch} | ({r['rung']}) | {_num(r.get('fit_r2_min'), '.4f')} "
                    f"| {_num(r.get('beta'))} | "
                    f"{_num(r.get('clock_ratio'))} | {_pct(r.get('forward_fitted'))} | "
                    f"{_pct(r.get('forward_derived'))} | {_pct(r.get('l_nc1_fit'))} | {_pct(r.get('l_nc23_fit'))} | "
                    f"{perp} | {_num(r.get('ratio_first'))} -> {_num(r.get('ratio_last'))} | {passed} |")
    print("\n".join(lines))
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

"""Command line: ``python -m paper_checks [options]`` (the main job, :mod:`paper_checks.main`),
``python -m paper_checks compare LOG`` (one run against the theory, :mod:`paper_checks.compare`) and
``python -m paper_checks grid`` (:mod:`paper_checks.grid`); each one's options are in its ``--help`` (the grid's
exit status too).  The main job exits 1 when a stage raised, a claim is ``error`` or a verification claim fails
(``--strict``: any claim), 2 for usage errors; ``compare`` exits 0 on success, 2 when the log cannot be read or an
option does not fit it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from empirical.runs import RunError

from ._cli import OneLineParser, add_comparison_options
from .compare import TIME_CHOICES, compare_output_dir, compare_run
from .grid import main as grid_main
from .main import QUICK_EPOCHS, MainOptions, UsageError, run_main

#: The subcommands, listed by ``python -m paper_checks --help``.
SUBCOMMANDS = """subcommands (python -m paper_checks SUBCOMMAND --help):
  compare LOG   theory against observation for one run or log: fit, forward ODE, compare.json, figures
  grid          a grid of runs (datasets x networks x losses): every claim on each, the paper's numbers"""


def _main_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m paper_checks",
        description="Check the claims of Han, Papyan & Donoho, 'Neural Collapse Under MSE Loss' (ICLR 2022)\n"
                    "end to end: symbolic certificate, simulated dynamics, a training run, theory vs observation.",
        epilog=SUBCOMMANDS, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="reports/default", help="report directory (default: %(default)s)")
    g = p.add_argument_group("training (empirical)")
    g.add_argument("--run-dir", help="reuse this finished run directory instead of training")
    g.add_argument("--preset", help="empirical preset (default digits-mlp when no --dataset/--model)")
    g.add_argument("--dataset", help="e.g. digits, fashion-mnist, mnist, cifar10, svhn, stl10, gaussian")
    g.add_argument("--model", help="e.g. mlp, resnet18, vgg11, densenet40")
    g.add_argument("--epochs", type=int, help="training epochs (default: the preset's, else 350)")
    g.add_argument("--per-class", type=int,
                   help="balanced subset: N examples per class (default: the preset's, else the whole training split)")
    g.add_argument("--lr", type=float, help="learning rate (default: the preset's or the paper's 0.0184)")
    g.add_argument("--batch-size", type=int, help="training batch size (default: the preset's, else 128)")
    g.add_argument("--weight-decay", type=float, help="SGD weight decay (default: the preset's, else 5e-4)")
    g.add_argument("--data-root", help="folder of the dataset files (default: $NC_DATA_ROOT, else the system folders)")
    g.add_argument("--device", help="auto, cpu, cuda, cuda:1, ... (default: auto)")
    g.add_argument("--seed", type=int, default=0, help="training seed (default: %(default)s)")
    g.add_argument("--resume", action="store_true", help="continue the training run in OUT/run from its checkpoint")
    g.add_argument("--skip-training", action="store_true", help="no training run: symbolic + dynamics claims only")
    g = p.add_argument_group("simulation (simulate)")
    g.add_argument("--t-max", type=float, help="flow time of the projected-flow simulation (default: 1e5)")
    g.add_argument("--retraction-t-max", type=float, help="flow time of the retraction contrast "
                                                          "(default: min(--t-max, 2e3))")
    g.add_argument("--sim-flow", default="features", choices=["features", "matrix", "reduced"],
                   help="which projected-flow integrator (default: %(default)s, the feature-level flow of math §6.1)")
    g.add_argument("--sim-classes", type=int, default=4, help="classes C of the simulation (default: %(default)s)")
    g.add_argument("--sim-per-class", type=int, default=6,
                   help="examples per class N of the simulation (default: %(default)s)")
    g.add_argument("--sim-dim", type=int, default=9,
                   help="feature dimension p of the simulation (default: %(default)s)")
    g.add_argument("--skip-simulation", action="store_true", help="no simulation: the dynamics claims are n/a")
    g = p.add_argument_group("comparison")
    add_comparison_options(g, TIME_CHOICES)
    g.add_argument("--ladder", default="on", choices=["on", "off"],
                   help="run the calibration ladder beside the run (math §7.4: exact flow, free flow, UFM full batch "
                        "and at the run's batch size) and report its verdicts beside the run's (default: %(default)s)")
    g = p.add_argument_group("general")
    g.add_argument("--quick", action="store_true",
                   help=f"small sizes: the first {QUICK_EPOCHS} epochs of the full schedule (same learning-rate "
                        "milestones), reduced flow, quick certificate")
    g.add_argument("--certificate", default="auto", choices=["auto", "full", "quick", "skip"],
                   help="symbolic certificate size (auto: full, or quick with --quick; default: %(default)s)")
    g.add_argument("--no-progress", action="store_true", help="no per-epoch training progress bar")
    g.add_argument("--strict", action="store_true",
                   help="exit 1 when an empirical claim fails too (default: only symbolic/dynamics claims and errors)")
    return p


def _compare_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m paper_checks compare",
                      description="Fit the closed-form SNR dynamics to a log and compare theory with observation; "
                                  "writes compare.json and figures.  Works with whatever the log holds (only 'epoch' "
                                  "is required): a part that needs a missing key is n/a, named in the output.")
    p.add_argument("log", metavar="LOG", help="a run directory, a metrics.jsonl file or a CSV file (one row per epoch)")
    add_comparison_options(p, TIME_CHOICES)
    p.add_argument("--linear", action="store_true", help="linear time map (beta = 1) as the primary fit")
    p.add_argument("--out", help="output directory (default: the run directory, or for a file LOG a folder "
                                 "LOG-STEM-compare beside it)")
    p.add_argument("--no-figures", action="store_true", help="write compare.json only")
    return p


def _fmt(stats) -> str:
    return "-" if stats is None or stats.median is None else f"{stats.median:.3g}"


def print_comparison(res, where) -> None:
    """The comparison in a few lines (the same numbers as compare.json)."""
    print(res.notes[0])  # the time axis
    if res.fit is None:  # one message naming every missing key and every part it makes n/a
        for note in res.notes[1:]:
            print(note)
        print(f"wrote {where}/compare.json")
        return
    f = res.fit.to_dict()
    print(f"fit window: {res.fit_window['reason']} ({len(res.fit_window['epochs'])} epochs)")
    print(f"time map: G(omega_j) = b_j + s * {f['time_key']}^beta with s = {f['scale_s']:.6g}, beta = {f['beta']:.4g}"
          + (f"; s N / kappa of the linear map = {res.clock_ratio():.4g} (1 on the projected flow, math §6.5)"
             if res.clock_ratio() is not None else ""))
    print(
        "R^2 (log omega) per singular value: " + ", ".join("-" if v is None else f"{v:.3f}" for v in f["r2_log_omega"])
    )
    r = res.snr_ratio
    print(f"max/min ratio: observed {r.observed_first:.4g} -> {r.observed_last:.4g}, "
          f"fitted {r.predicted_first:.4g} -> {r.predicted_last:.4g}")
    if res.quantities:
        print(f"{'quantity':<10} {'med rel err (fit)':>18} {'med rel err (at SNR)':>21} {'med rel err (forward)':>22}  "
              "lambda")
    for key, q in res.quantities.items():
        print(f"{key:<10} {_fmt(q.rel_error_fit):>18} {_fmt(q.rel_error_at_measured_snr):>21} "
              f"{_fmt(q.rel_error_forward):>22}  {'0' if q.at_lambda_zero else 'the run (not 0: see notes)'}")
    fw = res.forward
    print(f"forward ODE from epoch {fw.start_epoch}: median max_j rel error of omega {_fmt(fw.snr_rel_error)} "
          "(fitted time map)" + (f", {_fmt(res.forward_derived.snr_rel_error)} on the derived flow clock"
                                 if res.forward_derived is not None else ""))
    for part, why in res.unavailable.items():
        print(f"n/a: {part}: {why}")
    for note in res.notes[1:]:
        print(f"note: {note}")
    print(f"wrote {where}/compare.json")


def _run_compare(argv: Sequence[str]) -> int:
    ns = _compare_parser().parse_args(argv)
    try:
        res = compare_run(ns.log, out=ns.out, time=ns.time, early_epoch=ns.early_epoch,
                          fit_from_epoch=ns.fit_from, fit_exponent=not ns.linear, figures=not ns.no_figures,
                          tpt_threshold=ns.tpt_threshold)
    except (FileNotFoundError, ValueError, RunError) as exc:
        print(f"python -m paper_checks compare: error: {exc}", file=sys.stderr)
        return 2
    print_comparison(res, ns.out or compare_output_dir(ns.log))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compare":
        return _run_compare(argv[1:])
    if argv and argv[0] == "grid":
        return grid_main(argv[1:])
    ns = _main_parser().parse_args(argv)
    # every option of the main parser is a MainOptions field of the same name, but --no-progress
    options = vars(ns)
    opts = MainOptions(progress=not options.pop("no_progress"), **options)
    try:
        return run_main(opts)
    except UsageError as exc:
        print(f"python -m paper_checks: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""CLI: ``python -m simulate --num-classes C --per-class N --dim p --t-max T --flow FLOW --out DIR``.

Writes DIR/trajectory.npz (times, omega, closed_form_omega, every metric), DIR/summary.json, DIR/figures/*.png and
the run directory files DIR/config.json and DIR/metrics.jsonl (run format, docs/run_format.md: one line per saved
time, ``lr_weighted_steps`` = ``flow_time`` = t; read by ``python -m paper_checks compare DIR``; not for an ensemble).
An invalid argument prints one line naming it and exits with status 2 (no traceback).  What the flow leaves
undefined (the SNR once the free flow has collapsed the features) is printed as such, with one line saying why.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from theory._validation import OneLineParser
from theory.laws import KAPPA

from ._checks import SizeError, check_sizes
from ._solve import NORMS, SOLVERS, SolverOptions
from .plots import make_figures
from .run import ENSEMBLE_FLOWS, FLOWS, class_counts_of, simulate
from .run_dir import write_run_dir


def _number(kind, low, *, strict: bool = False):
    """A parser of ``kind`` (int or float) values ``>= low`` (``> low`` when ``strict``), floats finite."""
    word = "an integer" if kind is int else "a number"
    bound = f">= {low}" if kind is int else f"a finite number {'>' if strict else '>='} {low}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {word}, got {text!r}") from None
        if not (math.isfinite(value) and (value > low if strict else value >= low)):
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value
    return parse


_positive_float = _number(float, 0, strict=True)
_nonnegative_float = _number(float, 0)


def _class_counts(text: str) -> list[int]:
    try:
        return [int(c) for c in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _kappa(text: str):
    if text in KAPPA:
        return text
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected one of {list(KAPPA)} or a finite number > 0, "
                                         f"got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(prog="python -m simulate", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num-classes", "--classes", dest="num_classes", type=_number(int, 2), required=True,
                    help="number of classes C (>= 2)")
    ap.add_argument("--per-class", type=_number(int, 2), default=None,
                    help="examples per class N (>= 2); or --class-counts")
    ap.add_argument("--class-counts", type=_class_counts, default=None,
                    help="a run's class counts, comma-separated (C integers; unequal ones with --flow free only)")
    ap.add_argument("--dim", type=_number(int, 1), required=True, help="feature dimension p, C-1 <= p <= C(N-1)")
    ap.add_argument("--t-max", type=_positive_float, required=True, help="final time (> 0)")
    ap.add_argument("--flow", choices=FLOWS, default="reduced",
                    help="reduced: the singular-value ODE (math §6.2); matrix: the SNR-matrix ODE and features: the "
                         "projected feature flow (math §6.1); retraction: Euler steps re-whitened (math §6.1 "
                         "'Contrast'); free: W, b and features trained jointly (math §4) (default: %(default)s)")
    ap.add_argument("--seed", type=_number(int, 0), default=0,
                    help="seed of the initial condition (default: %(default)s)")
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument("--ensemble", type=_number(int, 1), default=1,
                    help=f"K initial conditions at once (flows {ENSEMBLE_FLOWS}) (default: %(default)s)")
    ap.add_argument("--kappa", type=_kappa, default="projected",
                    help="time scale: projected | sum | means | a number > 0 (math §6.3) (default: %(default)s)")
    ap.add_argument("--num-times", type=_number(int, 3), default=60, help="saved times (>= 3) (default: %(default)s)")
    ap.add_argument("--rtol", type=_positive_float, default=1e-8,
                    help="solver's relative tolerance (default: %(default)s)")
    ap.add_argument("--atol", type=_positive_float, default=1e-10,
                    help="solver's absolute tolerance (default: %(default)s)")
    ap.add_argument("--max-steps", type=_number(int, 1), default=1_000_000,
                    help="solver step budget (default: %(default)s)")
    ap.add_argument("--error-norm", choices=sorted(NORMS), default="rms",
                    help="norm of the solver's error estimate (default: %(default)s)")
    ap.add_argument("--rank", type=_number(int, 0), default=None,
                    help="initial rank of the centred class means (<= C-1; default: full rank)")
    ap.add_argument("--solver", choices=sorted(SOLVERS), default="tsit5",
                    help="Runge-Kutta method of the ODE solver (default: %(default)s)")
    ap.add_argument("--step", type=_positive_float, default=0.5,
                    help="retraction flow: Euler step size (> 0) (default: %(default)s)")
    ap.add_argument("--lam", type=_nonnegative_float, default=1e-3,
                    help="free flow: ridge lambda on W, b (>= 0) (default: %(default)s)")
    ap.add_argument("--lam-h", type=_nonnegative_float, default=0.0,
                    help="free flow: weight decay on the features (default: %(default)s)")
    ap.add_argument("--no-figures", action="store_true", help="write no figures")
    return ap


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the arguments together (sizes against each other, the output path); errors exit 2."""
    ap = build_parser()
    args = ap.parse_args(argv)
    C = args.num_classes
    if args.class_counts is None and args.per_class is None:
        ap.error("one of the arguments --per-class --class-counts is required")
    try:
        counts = class_counts_of(args.flow, C, args.per_class, args.class_counts)
        check_sizes(C, counts[0], args.dim, None if len(set(counts)) == 1 else counts)  # as simulate() checks
    except SizeError as exc:
        ap.error(f"argument --{exc.argument}: {exc.requirement}")
    except ValueError as exc:
        ap.error(f"argument --class-counts: {exc}")
    if args.rank is not None and args.rank > C - 1:
        ap.error(f"argument --rank: must be <= C-1 = {C - 1}, got {args.rank}")
    if args.out.exists() and not args.out.is_dir():
        ap.error(f"argument --out: {args.out} exists and is not a directory")
    return args


def _fmt(value, spec: str) -> str:
    """``value`` formatted with ``spec``, or ``undefined`` for a missing (None / NaN) value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "undefined"
    return format(value, spec)


def summary_line(flow: str, s: dict, out: Path) -> str:
    """The one-line result of a run: what is defined is printed, the rest reads ``undefined``."""
    omega = s["final_omega"]
    omega_text = "undefined" if any(w is None for w in omega) else str([round(w, 4) for w in omega])
    return (f"{flow}: t={s['final_time']:g}  omega={omega_text}  max/min={_fmt(s['max_min_ratio_final'], '.6g')}  "
            f"NC1={_fmt(s['final'].get('nc1'), '.3e')}  "
            f"closed-form max rel err={_fmt(s['closed_form_max_rel_error'], '.2e')}  -> {out}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.ensemble > 1 and args.flow not in ENSEMBLE_FLOWS:
        print(f"note: --ensemble with flow {args.flow!r} runs the members one after another", file=sys.stderr)
    opts = {}
    if args.rank is not None:
        opts["rank"] = args.rank
    if args.flow == "retraction":
        opts["step"] = args.step
    if args.flow == "free":
        opts.update(lam=args.lam, lam_h=args.lam_h)
    options = SolverOptions(rtol=args.rtol, atol=args.atol, solver=args.solver, max_steps=args.max_steps,
                            error_norm=args.error_norm)
    try:
        traj = simulate(args.flow, num_classes=args.num_classes, per_class=args.per_class,
                        class_counts=args.class_counts, dim=args.dim,
                        t_max=args.t_max, seed=args.seed, num_times=args.num_times, ensemble=args.ensemble,
                        kappa=args.kappa, options=options, **opts)
    except ValueError as exc:  # anything the parser could not see (kept one line, status 2)
        print(f"python -m simulate: error: {exc}", file=sys.stderr)
        return 2
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    traj.to_npz(out / "trajectory.npz")
    summary = traj.summary()
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if not args.no_figures:
        make_figures(traj, out / "figures")
    if traj.ensemble:
        print("note: no run directory (config.json, metrics.jsonl) for an ensemble: one run per directory",
              file=sys.stderr)
    else:
        write_run_dir(traj, out)
    print(summary_line(args.flow, summary, out))
    for note in traj.notes:
        print(f"note: {note} (trajectory.npz and summary.json: NaN / null; metrics.jsonl: the SNR on the range of "
              "Sigma_W where it has one, snr_support = 'range', null with a warning where Sigma_W is zero)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

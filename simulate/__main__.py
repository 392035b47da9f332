"""CLI: ``python -m simulate --classes C --per-class N --dim p --t-max T --flow FLOW --out DIR``.

Writes DIR/trajectory.npz (times, omega, closed_form_omega, every metric), DIR/summary.json and DIR/figures/*.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._solve import SOLVERS
from .run import ENSEMBLE_FLOWS, FLOWS, run


def _kappa(s: str):
    try:
        return float(s)
    except ValueError:
        return s


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m simulate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classes", type=int, required=True, help="number of classes C")
    ap.add_argument("--per-class", type=int, required=True, help="examples per class N")
    ap.add_argument("--dim", type=int, required=True, help="feature dimension p")
    ap.add_argument("--t-max", type=float, required=True, help="final time")
    ap.add_argument("--flow", choices=FLOWS, default="reduced")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument("--ensemble", type=int, default=1, help=f"K initial conditions at once (flows {ENSEMBLE_FLOWS})")
    ap.add_argument("--kappa", type=_kappa, default="projected", help="projected | sum | means | a number")
    ap.add_argument("--num-times", type=int, default=60)
    ap.add_argument("--rtol", type=float, default=1e-8)
    ap.add_argument("--atol", type=float, default=1e-10)
    ap.add_argument("--rank", type=int, default=None, help="initial rank of the centred class means (<= C-1)")
    ap.add_argument("--solver", choices=sorted(SOLVERS), default="tsit5")
    ap.add_argument("--step", type=float, default=0.5, help="retraction flow: Euler step size")
    ap.add_argument("--lam", type=float, default=1e-3, help="free flow: ridge lambda on W, b")
    ap.add_argument("--lam-h", type=float, default=0.0, help="free flow: weight decay on the features")
    ap.add_argument("--no-figures", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.ensemble > 1 and args.flow not in ENSEMBLE_FLOWS:
        print(f"note: --ensemble with flow {args.flow!r} runs the members one after another", file=sys.stderr)
    opts = {"solver": args.solver}
    if args.rank is not None:
        opts["rank"] = args.rank
    if args.flow == "retraction":
        opts["step"] = args.step
    if args.flow == "free":
        opts.update(lam=args.lam, lam_h=args.lam_h)
    traj = run(args.flow, classes=args.classes, per_class=args.per_class, dim=args.dim, t_max=args.t_max,
               seed=args.seed, num_times=args.num_times, ensemble=args.ensemble, kappa=args.kappa, rtol=args.rtol,
               atol=args.atol, **opts)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    traj.to_npz(out / "trajectory.npz")
    summary = traj.summary()
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if not args.no_figures:
        from .plots import make_figures

        make_figures(traj, out / "figures")
    s = summary
    print(f"{args.flow}: t={s['final_time']:g}  omega={[round(w, 4) for w in s['final_omega']]}  "
          f"max/min={s['max_min_ratio_final']:.6g}  NC1={s['final']['nc1']:.3e}  "
          f"closed-form max rel err={s['closed_form_max_rel_error']:.2e}  -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

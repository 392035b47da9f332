"""Grid claims: the paper's numbers across many (dataset, network, loss) runs (math §7.3): test accuracy
improving through the terminal phase, MSE against cross-entropy, and ``L_perp / (L_NC1 + L_NC2/3)`` across the
MSE runs at the three readings of lambda.  Runs without a terminal phase are listed with the reason and left out
of the terminal-phase statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from empirical.runs import terminal_phase_start

from ..compare import column
from .empirical import _perp_ratios_before_first_decay, perp_ratios
from .registry import Claim, NotApplicable, claim, evaluate
from .tolerances import TOLERANCES as tol

__all__ = ["GridRun", "GridEvidence", "grid_claims", "PAPER_TPT_IMPROVEMENT_PP"]

#: math §7.3: improvement in test accuracy from the first to the last terminal-phase epoch, percentage points.
PAPER_TPT_IMPROVEMENT_PP = {"median": 0.962, "mean": 1.833, "pairs": 15}


@dataclass
class GridRun:
    """One trained run of the grid: identity and its metrics log (sorted by epoch)."""

    dataset: str
    model: str
    loss: str
    records: Sequence[dict[str, Any]]
    mse_scale: tuple[float, float] = (1.0, 1.0)  # Hui & Belkin's (k, M) of an MSE run (math §3.6)

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.model}-{self.loss}"


@dataclass
class GridEvidence:
    runs: list[GridRun] = field(default_factory=list)
    tpt_threshold: float = 0.0

    def tpt_start(self, run: GridRun, skipped: dict[str, str]) -> int | None:
        """The first row of ``run``'s terminal phase; None, with the reason put in ``skipped``, when it has none
        before its last measured epoch."""
        k = terminal_phase_start(list(run.records), self.tpt_threshold)
        if k is None or k >= len(run.records) - 1:
            skipped[run.name] = f"no terminal phase at threshold {self.tpt_threshold:g}"
            return None
        return k


@claim("grid.test_accuracy_improves_in_tpt",
       "Test accuracy keeps improving through the terminal phase (the paper: median 0.962, mean 1.833 percentage "
       "points from the first zero-training-error epoch to the last, over its 15 dataset-network pairs)",
       "math §7.3", "median improvement over the MSE runs > 0 percentage points (the paper's values are reported)",
       check="100 * (test_error at the terminal phase's first epoch - at the last) per MSE run with a terminal phase",
       headline=lambda m: (f"median {m['median_pp']:.3g} pp, mean {m['mean_pp']:.3g} pp over {m['runs']} runs "
                           f"(paper {m['paper']['median']} / {m['paper']['mean']} over {m['paper']['pairs']})"))
def _tpt_improvement(ev: GridEvidence):
    gains: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for r in ev.runs:
        if r.loss != "mse" or (k := ev.tpt_start(r, skipped)) is None:
            continue
        err = column(r.records, "test_error")
        if np.isfinite(err[k]) and np.isfinite(err[-1]):
            gains[r.name] = 100.0 * float(err[k] - err[-1])
        else:
            skipped[r.name] = "no test error logged"
    if not gains:
        raise NotApplicable("no MSE run of the grid has a terminal phase" + (f" ({skipped})" if skipped else ""))
    v = np.array(list(gains.values()))
    return float(np.median(v)) > 0, {"median_pp": float(np.median(v)), "mean_pp": float(np.mean(v)),
                                     "runs": len(gains), "per_run_pp": gains, "left_out": skipped,
                                     "tpt_threshold": ev.tpt_threshold, "paper": PAPER_TPT_IMPROVEMENT_PP}


@claim("grid.mse_ce_comparable",
       "Networks trained with MSE reach test accuracy comparable to the same networks trained with cross-entropy",
       "math §7.2, §7.3 (abstract)", f"median over pairs of |acc_MSE - acc_CE| <= {tol['mse_ce_comparable_pp']:g} "
       "percentage points (the paper gives no number: a stated choice)",
       check="final test accuracy of each (dataset, network) trained with both losses",
       headline=lambda m: (f"median |MSE - CE| {m['median_abs_gap_pp']:.3g} pp over {m['pairs']} pairs; MSE better "
                           f"in {m['mse_better']} of them"))
def _mse_vs_ce(ev: GridEvidence):
    final: dict[tuple[str, str], dict[str, float]] = {}
    for r in ev.runs:
        err = column(r.records, "test_error")
        if np.any(np.isfinite(err)):
            final.setdefault((r.dataset, r.model), {})[r.loss] = 100.0 * (1.0 - float(err[np.isfinite(err)][-1]))
    pairs = {f"{d}-{m}": v for (d, m), v in final.items() if "mse" in v and "ce" in v}
    if not pairs:
        raise NotApplicable("no (dataset, network) of the grid was trained with both MSE and CE")
    gaps = {k: v["mse"] - v["ce"] for k, v in pairs.items()}
    med = float(np.median(np.abs(list(gaps.values()))))
    return med <= tol["mse_ce_comparable_pp"], {
        "median_abs_gap_pp": med, "pairs": len(pairs), "mse_better": int(sum(g > 0 for g in gaps.values())),
        "test_accuracy_pct": pairs, "mse_minus_ce_pp": gaps}


@claim("grid.l_perp_negligible_across_runs",
       "Across the grid, L_perp is negligible against L_NC1 + L_NC2/3 through the terminal phase of the MSE runs",
       "math §4, §7.3", f"max over MSE runs of the terminal-phase max ratio <= {tol['perp_ratio_max']:g} at the "
       "optimiser's lambda = C*wd/2 (the notebook's wd/2, lambda = 0 and the phase before the first lr decay reported)",
       check="L_perp / (L_NC1 + L_NC2/3) per MSE run over its terminal phase and before its first learning-rate decay, "
             "at the three lambdas",
       headline=lambda m: "terminal phase, max over runs: " + "; ".join(
           f"{k} {v:.3g}" for k, v in m["max_over_runs_terminal_phase"].items() if v is not None)
           + "; before the first lr decay: " + "; ".join(
           f"{k} {v:.3g}" for k, v in m["max_over_runs_before_first_decay"].items() if v is not None))
def _perp_across(ev: GridEvidence):
    per_run, skipped = {}, {}
    for r in ev.runs:
        if r.loss != "mse":
            continue
        if tuple(r.mse_scale) != (1.0, 1.0):
            skipped[r.name] = (f"rescaled MSE (mse_scale {r.mse_scale[0]:g},{r.mse_scale[1]:g}): outside the "
                               "plain-MSE decomposition this claim reads (math §3.6)")
            continue
        if (k := ev.tpt_start(r, skipped)) is not None:
            per_run[r.name] = {"terminal_phase": perp_ratios(r.records, slice(k, None)),
                               "before_first_lr_decay": _perp_ratios_before_first_decay(r.records)}
    if not per_run:
        raise NotApplicable("no MSE run of the grid has a terminal phase" + (f" ({skipped})" if skipped else ""))

    def worst(phase: str) -> dict[str, float | None]:
        out = {}
        for label in ("optimiser C*wd/2", "notebook wd/2", "lambda = 0"):
            vals = [entry["max"] for v in per_run.values() if (entry := v[phase].get(label))]
            out[label] = max(vals) if vals else None
        return out

    tp = worst("terminal_phase")
    if tp["optimiser C*wd/2"] is None:
        raise NotApplicable("no MSE run logged l_perp, l_nc1 and l_nc23 in its terminal phase")
    return tp["optimiser C*wd/2"] <= tol["perp_ratio_max"], {
        "max_over_runs_terminal_phase": tp, "max_over_runs_before_first_decay": worst("before_first_lr_decay"),
        "per_run": per_run, "left_out": skipped, "tpt_threshold": ev.tpt_threshold}


def grid_claims(runs: Sequence[GridRun], *, tpt_threshold: float = 0.0) -> list[Claim]:
    """The ``grid.*`` claims on the trained runs of a grid."""
    return evaluate("grid", GridEvidence(list(runs), tpt_threshold))

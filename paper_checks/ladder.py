"""The calibration ladder (math §6.5, §7.4): the same comparison with the theory on systems between the exact flow
and a network, so that a verdict on the network says whose gap it is (the theory's idealisations or the
comparison's).  The rungs (:data:`RUNGS`): (a) the exact projected flow; (b) the free gradient flow of
``(W, b, H)`` with the run's ridges, the continuous-time limit of (c) (math §6.5 items 1-2); (c) the UFM trained
full batch with the run's optimiser, as many steps as (d); (d) the UFM at the run's batch size, schedule and
measured epochs; (e) the run itself.  Each is a run directory in the run format, read by
:func:`paper_checks.compare.compare_records` and :func:`paper_checks.claims.empirical_claims` unchanged;
:func:`ladder_rows` puts their verdicts in one table.  The UFM and flow rungs are scaled to at most
``max_samples`` training samples (the run's class proportions kept) and the table says so.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import theory
from empirical.runs import terminal_phase_start
from empirical.schedule import lr_at

from .claims import empirical_claims
from .claims.empirical import perp_ratios
from .compare import class_counts, compare_records, read_log, run_loss, run_mse_scale

__all__ = ["RUNGS", "LadderPlan", "ladder_beside", "ladder_rows", "ladder_sentence", "ladder_table_markdown",
           "plan_ladder", "run_ladder", "run_rungs"]

#: rung -> what it is (math §7.4)
RUNGS = {
    "a": "exact projected flow (simulate)",
    "b": "free gradient flow of W, b, H (simulate)",
    "c": "UFM, full batch, the run's optimiser",
    "d": "UFM, the run's batch size",
    "e": "the network (this run)",
}

#: Training samples of the UFM and flow rungs at most (the run's class proportions kept): about 30 s on 2 cores.
MAX_SAMPLES = 2000
#: Feature dimension of the UFM and flow rungs (p >= C - 1 for every C the toolkit trains).
LADDER_DIM = 64
#: Saved times of the flow rungs (log-spaced, as the flows save them).
FLOW_TIMES = 40
#: Wall-time bound of a flow rung (a flow takes 15-30 s here, mostly JAX's start and compilation; twice that on a
#: loaded machine): a rung past it is reported as not run, with this reason, and the others go on.  (The stall at 0%
#: CPU once seen here was a deadlock of batched LAPACK calls in jaxlib's CPU runtime, avoided in simulate.metrics.)
FLOW_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class LadderPlan:
    """The rungs' sizes and optimiser, derived from one run's config (:func:`plan_ladder`)."""

    num_classes: int
    dataset: str
    per_class: int | None  # the UFM's balanced subset (None: the whole training set, as the run)
    num_samples: int  # the UFM's training samples
    flow_per_class: int  # the flows' N (balanced)
    dim: int
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    epochs: int
    lr_milestones: list[int]
    lr_gamma: float
    measure_epochs: list[int]
    seed: int
    data_kwargs: dict[str, Any]
    flow_t_max: float
    lam: float
    scaled: str | None  # a sentence when the rungs are smaller than the run
    data_root: str | None = None
    notes: list[str] = field(default_factory=list)


def plan_ladder(config: dict[str, Any], records: Sequence[dict[str, Any]], *, max_samples: int = MAX_SAMPLES,
                dim: int = LADDER_DIM) -> LadderPlan:
    """The ladder of the run whose ``config.json`` and log are given (a run of ``empirical train``).

    ``ValueError`` when the run's config lacks what the rungs must copy (dataset, optimiser, schedule), e.g. a log
    written by ``NCMonitor`` or another tool: its ladder cannot be set beside it.
    """
    cfg = config.get("config", {})
    need = ("dataset", "lr", "momentum", "weight_decay", "batch_size", "epochs")
    lacking = [k for k in need if cfg.get(k) is None]
    if lacking:
        raise ValueError(f"the run's config lacks {', '.join(lacking)}: the ladder copies the run's data and optimiser")
    counts = class_counts(records)
    C = int(cfg.get("num_classes") or (len(counts) if counts else 0))
    if C < 2:
        raise ValueError("the run's number of classes is unknown (no class_counts, no num_classes)")
    n_run = int(sum(counts)) if counts else C * int(cfg.get("per_class") or 0)
    per_class, scaled = cfg.get("per_class"), None
    if n_run > max_samples:
        per_class = max(2, max_samples // C)
        scaled = (f"the UFM and flow rungs use {per_class} samples per class ({per_class * C} in all) where the run "
                  f"has {n_run}, to stay within about 30 s on two CPU cores")
    n = per_class * C if per_class else n_run
    batch = min(int(cfg["batch_size"]), n)
    if batch < int(cfg["batch_size"]):
        scaled = (scaled or "") + f"; batch size {batch} (the run's {cfg['batch_size']} exceeds the rungs' samples)"
    epochs = int(cfg["epochs"])
    milestones = [int(m) for m in (cfg.get("lr_milestones") or [])]
    measured = sorted({int(r["epoch"]) for r in records})
    per_epoch = _steps_per_epoch(n, batch, bool(cfg.get("drop_last", True)))
    steps = per_epoch * epochs
    # sum_k eta_k over the run: the trainer's own step schedule (empirical.schedule.lr_at, 1-based epochs)
    lr_sum = per_epoch * sum(lr_at(e, float(cfg["lr"]), milestones, float(cfg.get("lr_gamma", 0.1)))
                             for e in range(1, epochs + 1))
    momentum = float(cfg["momentum"])
    lam = theory.lam_from_weight_decay(float(cfg["weight_decay"]), reduction="mean", num_classes=C)
    t_max = theory.flow_time_per_lr(reduction="mean", num_classes=C, momentum=momentum) * lr_sum
    return LadderPlan(
        num_classes=C, dataset=str(cfg["dataset"]), per_class=int(per_class) if per_class else None, num_samples=n,
        flow_per_class=max(2, round(n / C)), dim=int(dim), lr=float(cfg["lr"]), momentum=momentum,
        weight_decay=float(cfg["weight_decay"]), batch_size=batch, epochs=epochs, lr_milestones=milestones,
        lr_gamma=float(cfg.get("lr_gamma", 0.1)), measure_epochs=measured, seed=int(cfg.get("seed", 0)),
        data_kwargs=dict(cfg.get("data_kwargs") or {}), flow_t_max=float(t_max), lam=float(lam), scaled=scaled,
        data_root=cfg.get("data_root"), notes=[f"{steps} optimiser steps per UFM run"])


def _steps_per_epoch(n: int, batch: int, drop_last: bool) -> int:
    return n // batch if drop_last else math.ceil(n / batch)


# ----------------------------------------------------------------------------- running the rungs


def _train_ufm(plan: LadderPlan, out: Path, *, full_batch: bool, progress: bool) -> Path:
    """Rung (c) or (d): ``empirical`` trains the UFM with the run's optimiser (full batch: as many steps as (d))."""
    from empirical.config import TrainConfig
    from empirical.training import train

    k = _steps_per_epoch(plan.num_samples, plan.batch_size, True) if full_batch else 1
    cfg = TrainConfig(
        dataset=plan.dataset, model="ufm", out=str(out), per_class=plan.per_class, epochs=plan.epochs * k,
        lr=plan.lr, momentum=plan.momentum, weight_decay=plan.weight_decay,
        batch_size=plan.num_samples if full_batch else plan.batch_size, drop_last=not full_batch, loss="mse",
        lr_gamma=plan.lr_gamma, lr_milestones=[m * k for m in plan.lr_milestones],
        measure_epochs=[e * k for e in plan.measure_epochs], model_kwargs={"dim": plan.dim},
        data_kwargs=dict(plan.data_kwargs), data_root=plan.data_root, seed=plan.seed, device="cpu",
        progress=progress, checkpoint_every_s=0.0, num_threads=1)  # a tiny model: one thread is faster
    return Path(train(cfg))


def _run_flow(plan: LadderPlan, out: Path, flow: str) -> Path:
    """Rung (a) (the reduced ODE of the projected flow, exact) or (b) (the free flow with the run's ridges), written
    as a run directory by ``python -m simulate`` in a process of its own, bounded in time (:data:`FLOW_TIMEOUT_S`)."""
    cmd = [sys.executable, "-m", "simulate", "--flow", "reduced" if flow == "reduced" else "free",
           "--num-classes", str(plan.num_classes), "--per-class", str(plan.flow_per_class), "--dim", str(plan.dim),
           "--t-max", repr(plan.flow_t_max), "--num-times", str(FLOW_TIMES), "--seed", str(plan.seed), "--kappa", "1",
           "--out", str(out), "--no-figures"]
    if flow == "free":  # math §6.5: lambda = wd/alpha on W, b; lam_H = n * lambda on the features (free_loss's 1/n)
        n = plan.flow_per_class * plan.num_classes
        cmd += ["--lam", repr(plan.lam), "--lam-h", repr(n * plan.lam)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FLOW_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the {flow} flow did not finish within {FLOW_TIMEOUT_S:g} s") from None
    if proc.returncode != 0 or not (out / "metrics.jsonl").is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"ladder rung {'a' if flow == 'reduced' else 'b'}: python -m simulate failed: {tail[0]}")
    return out


def run_rungs(plan: LadderPlan, out: str | Path, *, rungs: str = "abcd", progress: bool = False,
              skipped: dict[str, str] | None = None) -> dict[str, Path]:
    """Run the rungs of ``plan`` into ``out/<rung>`` (each a run directory; one whose stored plan is this one is
    reused); returns ``{rung: run directory}``.  A flow rung that fails or exceeds :data:`FLOW_TIMEOUT_S` is left out,
    its reason put in ``skipped``."""
    out = Path(out)
    dirs: dict[str, Path] = {}
    for rung in rungs:
        if rung not in "abcd":
            raise ValueError(f"unknown ladder rung {rung!r}; choose from a, b, c, d")
        target = out / rung
        stored = target / "ladder_plan.json"
        if (target / "metrics.jsonl").is_file() and stored.is_file() and stored.read_text() == _plan_json(plan, rung):
            dirs[rung] = target
            continue
        shutil.rmtree(target, ignore_errors=True)
        if rung in "ab":
            try:
                dirs[rung] = _run_flow(plan, target, "reduced" if rung == "a" else "free")
            except RuntimeError as exc:  # reported in the table as not run, with why
                (skipped if skipped is not None else {})[rung] = str(exc)
                continue
        else:
            dirs[rung] = _train_ufm(plan, target, full_batch=(rung == "c"), progress=progress)
        stored.write_text(_plan_json(plan, rung))
    return dirs


def run_ladder(run_dir: str | Path, out: str | Path, *, max_samples: int = MAX_SAMPLES,
               skipped: dict[str, str] | None = None, loaded: tuple[Sequence[dict[str, Any]], dict[str, Any]] | None
               = None) -> tuple[LadderPlan, dict[str, Path]]:
    """The ladder of ``run_dir`` (:func:`plan_ladder`, :func:`run_rungs`) into ``out``; returns the plan and
    ``{rung: run directory}`` with ``"e"`` the run itself.  ``loaded``: the run's ``(records, config)`` when the
    caller has read them (the log is then not read a second time)."""
    records, config = loaded if loaded is not None else read_log(run_dir)
    plan = plan_ladder(config, records, max_samples=max_samples)
    return plan, {**run_rungs(plan, out, skipped=skipped), "e": Path(run_dir)}


def _plan_json(plan: LadderPlan, rung: str) -> str:
    return json.dumps({"rung": rung, **asdict(plan)}, sort_keys=True, default=str)


# ----------------------------------------------------------------------------- verdicts


def _med(stats) -> float | None:
    return None if stats is None else stats.median


#: A run already read and checked: ``(records, config, comparison, claims)`` (the main job's and the grid's
#: ``check_run``), so the ladder's row (e) is the run's own verdicts, not a second comparison of the same log.
Checked = tuple[Sequence[dict[str, Any]], dict[str, Any], Any, Sequence[Any]]


def rung_row(rung: str, run_dir: Path, *, tpt_threshold: float = 0.0, checked: Checked | None = None
             ) -> dict[str, Any]:
    """One rung's verdicts: the comparison's numbers and the MSE-theory claims' statuses (math §7.4)."""
    own = checked is not None and checked[2] is not None
    if checked is not None:  # the run's own log and claims; its comparison unless that failed (said in "clock")
        records, config, cmp, claim_list = checked
    else:
        records, config = read_log(run_dir)
    if not own:
        cmp = compare_records(records, time="auto", tpt_threshold=tpt_threshold, config=config)
    if checked is None:
        claim_list = empirical_claims(records, cmp, config=config, tpt_threshold=tpt_threshold)
    claims = {c.id.split(".", 1)[1]: c for c in claim_list}
    start = terminal_phase_start(list(records), tpt_threshold)  # the terminal phase, else every epoch (said so)
    tp = perp_ratios(records, slice(start if start is not None else 0, None))
    row: dict[str, Any] = {"rung": rung, "what": RUNGS[rung], "run_dir": str(run_dir), "loss": run_loss(config),
                           "terminal_phase": start is not None,
                           "clock": cmp.clock.axis if own or checked is None else
                           f"{cmp.clock.axis} (default options: the run's own comparison failed)",
                           "fit_epochs": len((cmp.fit_window or {}).get("epochs", []))}
    if cmp.fit is not None and cmp.forward is not None and cmp.snr_ratio is not None:
        f = cmp.fit.to_dict()
        row.update(fit_r2_min=f["r2_log_omega_min"], beta=f["beta"], clock_ratio=cmp.clock_ratio(),
                   forward_fitted=_med(cmp.forward.snr_rel_error),
                   forward_derived=_med(cmp.forward_derived.snr_rel_error) if cmp.forward_derived else None,
                   ratio_first=cmp.snr_ratio.observed_first_quarter_median,
                   ratio_last=cmp.snr_ratio.observed_last_quarter_median)
        for key in ("l_nc1", "l_nc23"):
            q = cmp.quantities.get(key)
            row[f"{key}_fit"] = _med(q.rel_error_fit) if q and q.at_lambda_zero else None
    for label, key in (("optimiser C*wd/2", "perp_opt"), ("notebook wd/2", "perp_nb"), ("lambda = 0", "perp_0")):
        row[key] = (tp.get(label) or {}).get("median")
    row["claims"] = {cid: claims[cid].status for cid in ("snr_follows_closed_form", "forward_prediction",
                                                         "decomposition_tracks_theory", "l_perp_negligible",
                                                         "snr_ratio_toward_1") if cid in claims}
    return row


def ladder_rows(dirs: dict[str, Path], *, tpt_threshold: float = 0.0, checked: Checked | None = None
                ) -> list[dict[str, Any]]:
    """:func:`rung_row` for every rung in ``dirs`` (a to e); ``checked``: the run's (rung e) own verdicts."""
    return [rung_row(r, dirs[r], tpt_threshold=tpt_threshold if r == "e" else 0.0,
                     checked=checked if r == "e" else None) for r in sorted(dirs)]


def _pct(v: float | None) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{100 * v:.3g}%"


def _num(v: float | None, fmt: str = ".3g") -> str:
    return "n/a" if v is None or not np.isfinite(v) else format(v, fmt)


def ladder_table_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The ladder's verdicts as one Markdown table (a row per rung)."""
    head = ("| rung | system | fit min R^2 | beta | s N/kappa | forward error (fitted map) | forward error (derived "
            "clock) | L_NC1 fit error | L_NC2/3 fit error | median L_perp/(L_NC1+L_NC2/3) at C wd/2, wd/2, 0 | max/min "
            "SNR (first -> last quarter) |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        perp = ", ".join(_num(r.get(k)) for k in ("perp_opt", "perp_nb", "perp_0"))
        perp += "" if r.get("terminal_phase", True) else " (all epochs: no terminal phase)"
        lines.append(
            f"| ({r['rung']}) | {r['what']} | {_num(r.get('fit_r2_min'), '.4f')} | {_num(r.get('beta'))} | "
            f"{_num(r.get('clock_ratio'))} | {_pct(r.get('forward_fitted'))} | {_pct(r.get('forward_derived'))} | "
            f"{_pct(r.get('l_nc1_fit'))} | {_pct(r.get('l_nc23_fit'))} | {perp} | "
            f"{_num(r.get('ratio_first'))} -> {_num(r.get('ratio_last'))} |")
    return "\n".join(lines)


def ladder_sentence(rows: Sequence[dict[str, Any]]) -> str:
    """Where the theory's idealisations stop holding, in one sentence from the rows."""
    by = {r["rung"]: r for r in rows}
    parts = []
    for rung, words in (("a", "on the exact flow"), ("b", "on the free gradient flow"),
                        ("c", "on the UFM trained full batch with this run's optimiser"),
                        ("d", "on the UFM at this run's learning rate and batch size"), ("e", "on this network")):
        if rung in by:
            parts.append(f"{words} the forward prediction misses by {_pct(by[rung].get('forward_fitted'))}")
    return "; ".join(parts) + " (median max_j relative error of the SNR singular values, fitted time map)."


def ladder_beside(run_dir: str | Path, out: str | Path, *, tpt_threshold: float = 0.0,
                  log=lambda msg: None, checked: Checked | None = None) -> dict[str, Any] | None:
    """The ladder of ``run_dir`` run into ``out`` (rungs reused when their plan is unchanged) and its verdicts beside
    the run's, as the reports show them: ``{"sentence", "table_md", "rows", "scaled", "dirs"}``.  None, with the
    reason passed to ``log``, when the run is not an MSE run or its config lacks what the rungs copy.  ``checked``:
    the run's own comparison and claims when the caller has them (row (e) then shows those verdicts)."""
    records, config = checked[:2] if checked is not None else read_log(run_dir)
    if run_loss(config) != "mse":
        log(f"skipped: the run's loss is {run_loss(config)}; the ladder calibrates the MSE theory")
        return None
    if run_mse_scale(config) != (1.0, 1.0):
        log("skipped: the run's MSE is rescaled (config.mse_scale); the ladder calibrates the plain MSE (math §3.6)")
        return None
    skipped: dict[str, str] = {}
    try:
        plan, dirs = run_ladder(run_dir, out, skipped=skipped, loaded=(records, config))
    except ValueError as exc:  # a log without a trainer's config (NCMonitor, another tool)
        log(f"skipped: {exc}")
        return None
    log(f"rungs a-d at C={plan.num_classes}, {plan.num_samples} samples, p={plan.dim}, lr {plan.lr}, batch "
        f"{plan.batch_size}" + (f" ({plan.scaled})" if plan.scaled else ""))
    rows = ladder_rows(dirs, tpt_threshold=tpt_threshold, checked=checked)
    for rung, why in skipped.items():
        log(f"rung ({rung}) not run: {why}")
    notes = "; ".join([plan.scaled or ""] + [f"rung ({r}) not run: {why}" for r, why in skipped.items()]).strip("; ")
    return {"sentence": ladder_sentence(rows), "table_md": ladder_table_markdown(rows), "rows": rows,
            "scaled": notes or None, "skipped": skipped, "dirs": {k: str(v) for k, v in dirs.items()}}

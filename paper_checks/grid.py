"""A grid of training runs, (dataset x network x loss), every claim checked on each, and the paper's numbers
across the grid (math §7.2, §7.3).

Each run trains into ``OUT/runs/<dataset>-<model>-<loss>/`` (finished runs skipped, killed ones resumed) and gets
its own report (``OUT/runs-reports/<name>/``); ``OUT`` gets ``grid.json`` (a row per run), ``claims.json`` (the grid
claims of :mod:`paper_checks.claims.grid`) and ``report.md`` / ``report.html`` in the paper's figure layout.  A
dataset whose files are missing is reported as skipped with the loader's message.  Training runs inline, or
through submitit's local executor (a worker per GPU) or SLURM; evaluation and the report run in this process.
The defaults (epochs, ``per_class``, learning rates, math §7.1) and the exit status are in ``grid --help``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from empirical.runs import TPT_THRESHOLD_DEFAULT, misfit_count, terminal_phase_start
from theory.jsonio import dumps

from . import _plot
from ._cli import OneLineParser, add_tpt_threshold
from .claims import Claim, counts, error_claim, exit_code, grid_claims
from .claims.grid import PAPER_TPT_IMPROVEMENT_PP, GridRun
from .compare import column, read_log
from .ladder import ladder_beside
from .main import (
    MainOptions,
    UsageError,
    check_common_options,
    check_dataset_available,
    check_model_known,
    check_run,
    publish_report,
    stored_run_finished,
    train_config,
)
from .report import claims_table, setup_view, write_pages, write_report

__all__ = ["GridOptions", "GridRunPlan", "plan_grid", "run_grid", "main", "LOSSES", "CE_LR", "SMALL_DATASET_EPOCHS"]

LOSSES = ("mse", "ce")
#: The notebook's tuned cross-entropy learning rate (MNIST / ResNet18; grid point 20 of the paper's sweep, math §7.1).
CE_LR = 0.0679
#: Default epochs of the embedded CPU datasets (the image datasets default to the paper's 350).
SMALL_DATASET_EPOCHS = {"digits": 60, "gaussian": 60}
PAPER_EPOCHS = 350
#: The quantities of the figure layout: (column title, metrics key or "perp_ratio", log scale).
QUANTITIES = (
    ("train error", "train_error", False),
    ("test error", "test_error", False),
    ("NC1", "nc1", True),
    ("NC2 equinorm (means)", "nc2_equinorm_means", True),
    ("NC2 max-angle (means)", "nc2_maxangle_means", True),
    ("NC3", "nc3", True),
    ("NC4", "nc4", False),
    ("L_perp / (L_NC1 + L_NC2/3)", "perp_ratio", True),
)
GRID_FILES = ("grid.json", "claims.json", "report.md", "report.html", "figures", "runs-reports", "FAILED.txt")


@dataclass
class GridOptions:
    datasets: list[str]
    models: list[str]
    losses: list[str]
    out: str = "reports/grid"
    epochs: int | None = None
    per_class: int | None = None
    lr: float | None = None
    device: str | None = None
    data_root: str | None = None
    seed: int = 0
    tpt_threshold: float = TPT_THRESHOLD_DEFAULT
    executor: str = "auto"  # auto | inline | local | slurm
    jobs: int | None = None
    slurm_partition: str | None = None
    timeout_min: int = 24 * 60
    slurm_array_parallelism: int = 16
    extra: dict[str, Any] | None = None  # more TrainConfig options for every run (tests: measure_epochs, widths)
    progress: bool = False
    ladder: str = "on"  # "off": no calibration ladder beside each MSE run (math §7.4)
    mse_scale: list[float] | None = None  # Hui & Belkin's [k, M] of the MSE runs (math §3.6); None: the plain MSE


@dataclass
class GridRunPlan:
    dataset: str
    model: str
    loss: str
    run_dir: Path
    config: Any = None  # empirical TrainConfig (None when skipped)
    action: str = "train"  # train | resume | finished | skip
    message: str = ""

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.model}-{self.loss}"


def _mse_scale(text: str | None) -> list[float] | None:
    """``--mse-scale k,M`` parsed (:func:`empirical.loss.parse_mse_scale`); a one-line :class:`UsageError`."""
    if text is None:
        return None
    from empirical.loss import parse_mse_scale

    try:
        return list(parse_mse_scale(text))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _split(text: str, what: str) -> list[str]:
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise UsageError(f"--{what}: empty list")
    if len(set(items)) != len(items):
        raise UsageError(f"--{what}: repeated names in {text!r}")
    return items


def plan_grid(opts: GridOptions) -> list[GridRunPlan]:
    """Validate every option and name and decide, per run, train / resume / finished / skip (raises UsageError)."""
    from empirical.data import get_spec  # torch: imported when a grid is planned

    for loss in opts.losses:
        if loss not in LOSSES:
            raise UsageError(f"--losses: unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
    for m in opts.models:
        check_model_known(m)
    for d in opts.datasets:
        try:
            get_spec(d)
        except ValueError as exc:
            raise UsageError(f"--datasets: {exc}") from None
    if opts.epochs is not None and opts.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {opts.epochs}")
    if opts.executor not in ("auto", "inline", "local", "slurm"):
        raise UsageError(f"--executor must be auto, inline, local or slurm, got {opts.executor!r}")
    if opts.jobs is not None and opts.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {opts.jobs}")
    out = Path(opts.out)
    check_common_options(opts.tpt_threshold, out)

    plans: list[GridRunPlan] = []
    for d in opts.datasets:
        spec = get_spec(d)
        try:
            check_dataset_available(spec.name, opts.data_root)
            missing = None
        except UsageError as exc:
            missing = str(exc)
        for m in opts.models:
            for loss in opts.losses:
                run_dir = out / "runs" / f"{spec.name}-{m}-{loss}"
                p = GridRunPlan(spec.name, m, loss, run_dir)
                plans.append(p)
                if missing is not None:
                    p.action, p.message = "skip", missing
                    continue
                p.config = _run_config(opts, spec.name, m, loss, run_dir)
                finished = stored_run_finished(run_dir, p.config.to_dict(), "choose another --out or remove that run")
                if finished is not None:
                    p.action = "finished" if finished else "resume"
    return plans


def _run_config(opts: GridOptions, dataset: str, model: str, loss: str, run_dir: Path):
    """The TrainConfig of one run: the main job's preset merge, then the grid's options (see the module doc)."""
    epochs = opts.epochs if opts.epochs is not None else SMALL_DATASET_EPOCHS.get(dataset, PAPER_EPOCHS)
    lr = opts.lr if opts.lr is not None else (CE_LR if loss == "ce" else None)
    extra = dict(opts.extra or {})
    extra["loss"] = loss
    if loss == "mse" and opts.mse_scale:
        extra["mse_scale"] = list(opts.mse_scale)
    mo = MainOptions(dataset=dataset, model=model, epochs=epochs, per_class=opts.per_class, lr=lr,
                     device=opts.device, data_root=opts.data_root, seed=opts.seed, progress=opts.progress, extra=extra)
    try:
        return train_config(mo, run_dir).resolved()
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{dataset}-{model}-{loss}: {str(exc).splitlines()[0]}") from None


# ----------------------------------------------------------------------------- training (executors)


def train_runs(configs: list[dict[str, Any]], resumes: list[bool], device: str | None = None) -> list[dict[str, Any]]:
    """Train the given runs one after another (the job of one worker); never raises for one run.

    Returns one ``{"run_dir", "status", "message"}`` per run: ``trained``, ``diverged`` (the loss became
    non-finite: an observation, its measured epochs are kept) or ``error`` (with the traceback).
    """
    from empirical.training import NonFiniteLossError, TrainConfig, train  # torch: imported when runs train

    results = []
    for cfg_dict, resume in zip(configs, resumes):
        cfg = TrainConfig.from_dict(dict(cfg_dict, device=device or cfg_dict.get("device", "auto")))
        try:
            train(cfg, resume=resume)
            results.append({"run_dir": cfg.out, "status": "trained", "message": ""})
        except NonFiniteLossError as exc:
            results.append({"run_dir": cfg.out, "status": "diverged", "message": str(exc)})
        except Exception as exc:  # noqa: BLE001 - one run's failure must not lose the others; reported as an error
            results.append({"run_dir": cfg.out, "status": "error",
                            "message": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"})
    return results


def _cuda_count() -> int:
    try:
        import torch  # imported when runs train, not with paper_checks

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def _job_results(job: Any, configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A submitit job's results; when the job itself died (killed worker, node failure), an ``error`` result for
    each of its runs with the scheduler's message, so the other jobs' runs are still reported."""
    try:
        return job.result()
    except Exception as exc:  # noqa: BLE001 - submitit raises its own failure types; reported per run
        msg = f"the {type(job).__name__} {getattr(job, 'job_id', '?')} failed: {type(exc).__name__}: {exc}"
        return [{"run_dir": c["out"], "status": "error", "message": msg} for c in configs]


def execute(plans: list[GridRunPlan], opts: GridOptions, log) -> dict[str, dict[str, Any]]:
    """Train every plan whose action is train / resume with the chosen executor; results by run directory."""
    todo = [p for p in plans if p.action in ("train", "resume")]
    if not todo:
        return {}
    configs = [p.config.to_dict() for p in todo]
    resumes = [p.action == "resume" for p in todo]
    gpus = _cuda_count()
    executor = opts.executor
    if executor == "auto":
        executor = "local" if gpus > 1 else "inline"
    log(f"    training {len(todo)} run(s) with the {executor} executor" + (f" on {gpus} GPU(s)" if gpus else ""))
    if executor == "inline":
        results = train_runs(configs, resumes)
    else:
        import submitit  # only the local and slurm executors need it

        folder = Path(opts.out) / "submitit"
        if executor == "local":
            workers = opts.jobs or max(1, gpus)
            shares = []
            for w in range(min(workers, len(todo))):
                share = list(range(w, len(todo), workers))  # a fixed round-robin share: no queue of our own
                local = submitit.LocalExecutor(folder=folder)
                params: dict[str, Any] = {"timeout_min": opts.timeout_min}
                if gpus:
                    params.update(gpus_per_node=1, visible_gpus=(w % gpus,))
                local.update_parameters(**params)
                shares.append((local.submit(train_runs, [configs[i] for i in share], [resumes[i] for i in share],
                                            "cuda" if gpus else None), [configs[i] for i in share]))
            results = [r for job, cfgs in shares for r in _job_results(job, cfgs)]
        else:  # slurm: one job per run, scheduled by SLURM
            ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
            ex.update_parameters(timeout_min=opts.timeout_min, gpus_per_node=1, tasks_per_node=1,
                                 slurm_array_parallelism=opts.slurm_array_parallelism,
                                 **({"slurm_partition": opts.slurm_partition} if opts.slurm_partition else {}))
            jobs = ex.map_array(train_runs, [[c] for c in configs], [[r] for r in resumes], ["cuda"] * len(configs))
            results = [r for job, c in zip(jobs, configs) for r in _job_results(job, [c])]
    return {str(Path(r["run_dir"])): r for r in results}


# ----------------------------------------------------------------------------- evaluation and report


def _evaluate_run(p: GridRunPlan, opts: GridOptions, report_dir: Path
                  ) -> tuple[list[Claim], list[dict[str, Any]], dict[str, Any] | None, Exception | None]:
    """The empirical claims of one run (:func:`paper_checks.main.check_run`), its report in ``report_dir``, its
    ladder, and the ladder's exception when it failed (the run's own claims stand, plus an ``error`` claim)."""
    records, config = read_log(p.run_dir)
    checked = check_run(p.run_dir, records, config, report_dir, tpt_threshold=opts.tpt_threshold)
    claims, ladder, failed = list(checked.claims), None, None
    if opts.ladder == "on":  # the pair's ladder (math §7.4), kept beside the runs so a re-run reuses it
        try:  # as the main job's calibration stage: a failure is an error claim, the run's claims stand
            ladder = ladder_beside(p.run_dir, Path(opts.out) / "ladders" / p.name, tpt_threshold=opts.tpt_threshold,
                                   checked=(records, config, checked.comparison, checked.claims))
        except Exception as exc:  # noqa: BLE001 - an error claim of this run and a failed report, not a crash
            failed = exc
            claims.append(error_claim(f"ladder.{p.name}", f"the calibration ladder beside {p.name} ran", "grid",
                                      f"{type(exc).__name__}: {exc}", traceback.format_exc(), "runs"))
    write_report(report_dir, claims, figures=checked.figures, title=f"Claims on {p.name}",
                 context={"run": str(p.run_dir), "terminal phase threshold": opts.tpt_threshold}, ladder=ladder)
    return claims, records, ladder, failed


def _row(p: GridRunPlan, opts: GridOptions, records: Sequence[dict[str, Any]] | None, claims: list[Claim],
         status: str, message: str) -> dict[str, Any]:
    cfg = p.config.to_dict() if p.config is not None else {}
    row: dict[str, Any] = {"dataset": p.dataset, "model": p.model, "loss": p.loss, "lr": cfg.get("lr"),
                           "epochs": cfg.get("epochs"), "per_class": cfg.get("per_class"), "status": status,
                           "message": message, "run_dir": str(p.run_dir), "tpt_threshold": opts.tpt_threshold}
    if records:
        k = terminal_phase_start(list(records), opts.tpt_threshold)
        tr, te = column(records, "train_error"), column(records, "test_error")
        row.update(final_train_error=float(tr[-1]) if np.isfinite(tr[-1]) else None,
                   final_test_error=float(te[-1]) if np.isfinite(te[-1]) else None,
                   last_epoch=int(records[-1].get("epoch", -1)),
                   terminal_phase_start_epoch=int(records[k]["epoch"]) if k is not None else None,
                   misfit_final=misfit_count(records[-1]))
    row["claims"] = counts(claims) if claims else None
    return row


def grid_figures(runs: list[GridRun], out_dir: Path) -> list[Path]:
    """The paper's layout, one figure per loss: a row per dataset, a column per quantity, a line per network."""
    plt = _plot.plt()
    paths = []
    datasets = list(dict.fromkeys(r.dataset for r in runs))
    for loss in dict.fromkeys(r.loss for r in runs):
        fig, axes = plt.subplots(len(datasets), len(QUANTITIES), figsize=(2.6 * len(QUANTITIES), 2.3 * len(datasets)),
                                 squeeze=False)
        for i, d in enumerate(datasets):
            for j, (title, key, log) in enumerate(QUANTITIES):
                ax = axes[i, j]
                for r in runs:
                    if r.dataset != d or r.loss != loss:
                        continue
                    ep = column(r.records, "epoch")
                    if key == "perp_ratio":
                        v = column(r.records, "l_perp") / (column(r.records, "l_nc1") + column(r.records, "l_nc23"))
                    else:
                        v = column(r.records, key)
                    ok = np.isfinite(v) & (ep > 0) & ((v > 0) if log else True)
                    if np.any(ok):
                        ax.plot(ep[ok], v[ok], "-", lw=1.2, label=r.model)
                ax.set_xscale("log")
                if log:
                    ax.set_yscale("log")
                if i == 0:
                    ax.set_title(title, fontsize=8)
                if j == 0:
                    ax.set_ylabel(d, fontsize=9)
                ax.tick_params(labelsize=6)
                if i == 0 and j == 0:
                    ax.legend(fontsize=6)
        fig.suptitle(
            f"{loss.upper()} (rows: datasets; columns: quantities against epoch; lines: networks)", fontsize=10
        )
        paths.append(_plot.save(fig, out_dir / f"grid_{loss}.png", dpi=80))
    return paths


def paper_numbers(claims: list[Claim]) -> list[dict[str, Any]]:
    """The paper's numbers across the grid beside ours (math §7.3), as blocks ``{"text", "table"?}`` for the
    report's templates."""
    by = {c.id: c for c in claims}
    blocks: list[dict[str, Any]] = []
    c = by.get("grid.test_accuracy_improves_in_tpt")
    if c is not None and c.status in ("pass", "fail"):
        m = c.to_dict()["measured"]
        blocks.append({"text": (
            f"Test-accuracy improvement from the first terminal-phase epoch to the last (MSE runs, threshold "
            f"{m['tpt_threshold']:g}): median {m['median_pp']:.3g} pp, mean {m['mean_pp']:.3g} pp over {m['runs']} "
            f"runs; the paper: median {PAPER_TPT_IMPROVEMENT_PP['median']}, mean {PAPER_TPT_IMPROVEMENT_PP['mean']} "
            f"over its {PAPER_TPT_IMPROVEMENT_PP['pairs']} pairs.")})
    elif c is not None:
        blocks.append({"text": f"Test-accuracy improvement through the terminal phase: n/a ({c.detail})."})
    c = by.get("grid.mse_ce_comparable")
    if c is not None and c.status in ("pass", "fail"):
        m = c.to_dict()["measured"]
        rows = [[k, f"{v['mse']:.2f}", f"{v['ce']:.2f}", f"{m['mse_minus_ce_pp'][k]:+.2f}"]
                for k, v in m["test_accuracy_pct"].items()]
        blocks.append({"text": "Test accuracy at the last epoch, MSE against cross-entropy:",
                       "table": {"header": ["pair", "MSE test acc. (%)", "CE test acc. (%)", "MSE - CE (pp)"],
                                 "rows": rows}})
    elif c is not None:
        blocks.append({"text": f"MSE against CE: n/a ({c.detail})."})
    c = by.get("grid.l_perp_negligible_across_runs")
    if c is not None and c.status in ("pass", "fail"):
        m = c.to_dict()["measured"]
        labels = ("optimiser C*wd/2", "notebook wd/2", "lambda = 0")
        rows = [[name, phase.replace("_", " ")] + ["-" if not vals or not vals.get(lab) else f"{vals[lab]['max']:.3g}"
                                                   for lab in labels]
                for name, phases in m["per_run"].items() for phase, vals in phases.items()]
        blocks.append({"text": ("L_perp / (L_NC1 + L_NC2/3) (max over epochs) at the three lambdas: \"negligible\" "
                                "depends on lambda and on the phase of training."),
                       "table": {"header": ["run", "phase", *labels], "rows": rows}})
    return blocks


def _run_cells(r: dict[str, Any]) -> list[str]:
    """One row of the runs table: dataset, model, loss, lr, status (with the first line of its message), ..."""
    def fmt(v):
        return "-" if v is None else f"{v:.4g}"

    cl = r.get("claims") or {}
    status = r["status"] + (f": {r['message'].splitlines()[0][:120]}" if r.get("message") else "")
    return [r["dataset"], r["model"], r["loss"], fmt(r.get("lr")), status, fmt(r.get("final_train_error")),
            fmt(r.get("final_test_error")), str(r.get("terminal_phase_start_epoch", "-")),
            str(r.get("misfit_final", "-")),
            "/".join(str(cl.get(s, 0)) for s in ("pass", "fail", "n/a", "error")) if cl else "-"]


def write_grid_report(out: Path, rows: list[dict[str, Any]], claims: list[Claim], figures: list[Path],
                      context: dict[str, Any]) -> None:
    """``grid.json``, ``claims.json``, ``report.md`` and the self-contained ``report.html`` into ``out``: the
    report's base template (:mod:`paper_checks._page`) with the runs table and the paper's numbers after the
    verdict."""
    (out / "grid.json").write_text(dumps(rows) + "\n")
    runs = {"header": ["dataset", "model", "loss", "lr", "status", "final train err", "final test err", "TPT start",
                       "misfit", "claims pass/fail/n-a/error"], "rows": [_run_cells(r) for r in rows]}
    write_pages(out, claims, "grid", {"title": "NC-MSE grid of runs", "runs": runs,
                                      "paper_numbers": paper_numbers(claims), "setup": setup_view(context)}, figures)


def run_grid(opts: GridOptions) -> int:
    """Plan, train, evaluate and report the grid; returns the exit code: 0, or 1 on an error claim, a run error,
    or when no run was trained or evaluated (every dataset missing)."""
    plans = plan_grid(opts)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    for p in plans:
        log(f"    {p.name}: {p.action}" + (f" ({p.message.splitlines()[0]})" if p.message else ""))
    results = execute(plans, opts, log)
    staging = out / ".report-staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    rows, runs, all_claims = [], [], []
    errors: list[tuple[str, BaseException]] = []
    for p in plans:
        res = results.get(str(p.run_dir), {})
        status = {"finished": "finished", "skip": "skipped"}.get(p.action, res.get("status", p.action))
        message = p.message or res.get("message", "")
        claims: list[Claim] = []
        records, ladder = None, None
        if p.action != "skip" and (p.run_dir / "metrics.jsonl").is_file():
            try:
                claims, records, ladder, failed = _evaluate_run(p, opts, staging / "runs-reports" / p.name)
                runs.append(GridRun(p.dataset, p.model, p.loss, records, p.config.mse_scale))
                if failed is not None:
                    errors.append((f"ladder {p.name}", failed))
            except Exception as exc:  # noqa: BLE001 - reported as this run's error; the other runs go on
                errors.append((f"evaluate {p.name}", exc))
                status, message = "error", f"evaluation: {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        if status == "error" and not any(c.status == "error" for c in claims):
            claims.append(error_claim(f"run.{p.name}", f"the run {p.name} trained and was evaluated", "grid",
                                      message.splitlines()[0] if message else "error", message, "runs"))
        rows.append(_row(p, opts, records, claims, status, message))
        if ladder is not None:  # the pair's calibrated verdict: forward error per rung (math §7.4)
            rows[-1]["ladder"] = {"sentence": ladder["sentence"],
                                  "forward_error": {r["rung"]: r.get("forward_fitted") for r in ladder["rows"]}}
        all_claims += [c for c in claims if c.group == "runs"]
        log(f"    {p.name}: {status}" + (f", claims {counts(claims)}" if claims else ""))
    gclaims = grid_claims(runs, tpt_threshold=opts.tpt_threshold) if runs else []
    figures = grid_figures(runs, staging / "figures") if runs else []
    context = {"command": "python -m paper_checks grid " + " ".join(sys.argv[2:]) if sys.argv else "",
               "terminal phase": f"training error <= {opts.tpt_threshold:g} from its first epoch to the end",
               "runs": f"{len(rows)} planned, {sum(r['status'] in ('trained', 'finished') for r in rows)} trained or "
                       f"finished, {sum(r['status'] == 'skipped' for r in rows)} skipped",
               "wall time (s)": round(time.perf_counter() - t0, 1)}
    write_grid_report(staging, rows, gclaims + all_claims, figures, context)
    print(claims_table(gclaims + all_claims) if (gclaims or all_claims) else "no grid claims (no run trained)")
    where = publish_report(out, staging, errors, files=GRID_FILES)
    print(f"grid report: {where / 'report.html'}  ({len(rows)} runs, wall time {time.perf_counter() - t0:.1f} s)")
    worst = exit_code(gclaims + all_claims)
    if not runs:  # every run skipped (or failed): a grid of no run is no result
        print("grid: no run was trained or evaluated (see the skipped runs above): exit status 1", file=sys.stderr)
        return 1
    return 1 if worst or any(r["status"] == "error" for r in rows) else 0


# ----------------------------------------------------------------------------- command line

#: What ``grid --help`` says of the exit status (:func:`run_grid`).
EXIT_STATUS = ("exit status: 0; 1 when a claim is an error, a run failed, or no run was trained or evaluated "
               "(every dataset missing: a grid of no run is no result); 2 for usage errors")


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m paper_checks grid", description=__doc__.split("\n\n")[0],
                      epilog=EXIT_STATUS)
    p.add_argument("--datasets", required=True, help="comma-separated, e.g. fashion-mnist,mnist,cifar10,svhn,stl10")
    p.add_argument("--models", required=True, help="comma-separated, e.g. vgg11,resnet18,densenet40")
    p.add_argument("--losses", default="mse,ce", help="comma-separated subset of mse,ce (default: %(default)s)")
    p.add_argument("--mse-scale", help="k,M of Hui & Belkin's rescaled MSE for the MSE runs (math §3.6; default: "
                                       "1,1, the plain MSE); a rescaled run gets no ladder (math §3.6)")
    p.add_argument("--out", default="reports/grid", help="the grid's folder: runs, report (default: %(default)s)")
    p.add_argument("--epochs", type=int, help=f"training epochs (default: {PAPER_EPOCHS}, the paper's; "
                                              f"{SMALL_DATASET_EPOCHS} for the CPU datasets)")
    p.add_argument("--per-class", type=int, help="balanced subset size N (default: the paper's per dataset)")
    p.add_argument("--lr", type=float,
                   help="one learning rate for every run, overriding the defaults: MSE runs take the rate of the "
                        "pair's preset when there is one (digits-mlp: 0.4), else the notebook's tuned 0.0184; "
                        f"CE runs the notebook's tuned {CE_LR} (math §7.1)")
    p.add_argument("--device", help="auto, cpu, cuda, ... (default: auto)")
    p.add_argument("--data-root", help="folder of the dataset files (default: $NC_DATA_ROOT, else the system folders)")
    p.add_argument("--seed", type=int, default=0, help="training seed of every run (default: %(default)s)")
    add_tpt_threshold(p)
    p.add_argument("--executor", default="auto", choices=["auto", "inline", "local", "slurm"],
                   help="auto: local with one worker per GPU when there are several GPUs, else inline "
                        "(default: %(default)s)")
    p.add_argument("--jobs", type=int, help="local executor: parallel workers (default: one per GPU, else 1)")
    p.add_argument("--slurm-partition", help="slurm executor: the partition (default: the cluster's)")
    p.add_argument("--timeout-min", type=int, default=24 * 60,
                   help="slurm executor: time limit of a job in minutes (default: %(default)s)")
    p.add_argument("--slurm-array-parallelism", type=int, default=16,
                   help="slurm executor: jobs of the array running at once (default: %(default)s)")
    p.add_argument("--ladder", default="on", choices=["on", "off"],
                   help="the calibration ladder beside each MSE run (math §7.4; default: %(default)s)")
    return p


def main(argv: Sequence[str]) -> int:
    ns = _parser().parse_args(list(argv))
    try:
        lists = {k: _split(getattr(ns, k), k) for k in ("datasets", "models", "losses")}
        opts = GridOptions(**{**vars(ns), **lists, "mse_scale": _mse_scale(ns.mse_scale)})
        return run_grid(opts)
    except UsageError as exc:
        print(f"python -m paper_checks grid: error: {exc}", file=sys.stderr)
        return 2

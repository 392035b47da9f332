"""The project's main job: every checkable claim of the paper, run end to end, with a report.

Stages, each a function below (printed as it starts and ends, with its wall time): the symbolic certificate,
the simulation, the training run, theory against the run, the calibration ladder, the report.  Every option,
name and data file is checked first (:func:`validate`: a one-line :class:`UsageError`, exit code 2).  A stage
that raises does not stop the job: it becomes an ``error`` claim with its traceback (the report stage, which writes
the claims, only sets the exit code).  The report is staged and
replaces the one in ``OUT`` only when complete (:func:`publish_report`); a rerun into ``OUT`` continues its
training run (``OUT/run``) when the options are the same, and refuses with one line when they differ.

Exit code: 1 when a stage raised, a claim is ``error`` or a verification claim fails (with ``--strict``, any failed
claim), else 0; ``n/a`` never changes it (:func:`paper_checks.claims.exit_code`).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from empirical.config import PRESETS, TrainConfig, merge_preset, merged_options
from empirical.runs import TPT_THRESHOLD_DEFAULT, check_tpt_threshold, read_config, read_metrics
from empirical.schedule import lr_milestones
from theory.jsonio import dumps
from theory.symbolic import run_certificate

from .claims import Claim, dynamics_claims, empirical_claims, error_claim, exit_code, retraction_claims, symbolic_claims
from .compare import compare_run, config_value, read_log
from .ladder import ladder_beside
from .report import claims_table, simulation_figures, training_figures, write_report

__all__ = ["MainOptions", "UsageError", "run_main", "validate", "Stages", "exit_code", "REPORT_FILES"]

DEFAULT_PRESET = "digits-mlp"
#: --quick trains the first QUICK_EPOCHS epochs of the full schedule.
QUICK_EPOCHS = 80
#: Euler step of the retraction contrast; it also runs at half this step for the O(step) check (math §9 item 19).
RETRACTION_STEP = 0.5


@dataclass
class MainOptions:
    """Options of the main job (see ``python -m paper_checks --help``)."""

    out: str = "reports/default"
    # training
    run_dir: str | None = None
    preset: str | None = None
    dataset: str | None = None
    model: str | None = None
    epochs: int | None = None
    per_class: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    weight_decay: float | None = None
    data_root: str | None = None
    device: str | None = None
    seed: int = 0
    resume: bool = False
    # simulation
    t_max: float | None = None
    sim_classes: int = 4
    sim_per_class: int = 6
    sim_dim: int = 9
    sim_flow: str = "features"
    retraction_t_max: float | None = None
    # comparison
    time: str = "auto"
    early_epoch: int | None = None
    fit_from: int | None = None
    tpt_threshold: float = TPT_THRESHOLD_DEFAULT
    # general
    quick: bool = False
    certificate: str = "auto"  # auto (full unless quick) | full | quick | skip
    skip_simulation: bool = False
    skip_training: bool = False
    progress: bool = True
    strict: bool = False  # exit 1 when an empirical claim fails too
    ladder: str = "on"  # "off": no calibration ladder beside the run (math §7.4)
    extra: dict[str, Any] = field(default_factory=dict)


class Stages:
    """Stage lines on stderr, ``[k/n] name ...`` then ``done in X s`` or ``FAILED`` (kept in ``errors``)."""

    def __init__(self, total: int):
        self.total = total
        self.k = 0
        self.t0 = time.perf_counter()
        self.times: dict[str, float] = {}
        self.errors: list[tuple[str, BaseException]] = []
        self.tracebacks: dict[str, str] = {}

    def log(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.k += 1
        start = time.perf_counter()
        self.log(f"[{self.k}/{self.total}] {name} ...")
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - reported as a failed claim, the job goes on
            self.errors.append((name, exc))
            self.tracebacks[name] = traceback.format_exc()
            self.log(f"[{self.k}/{self.total}] {name} FAILED after {time.perf_counter() - start:.1f} s: "
                     f"{type(exc).__name__}: {exc}")
            self.log(traceback.format_exc(limit=6))
        else:
            self.log(f"[{self.k}/{self.total}] {name} done in {time.perf_counter() - start:.1f} s")
        finally:
            self.times[name] = round(time.perf_counter() - start, 2)


def train_config(opts: MainOptions, run_dir: Path):
    """The :class:`empirical.config.TrainConfig` of the main job: the shared preset merge of
    ``empirical.config.merge_preset`` (defaults < preset < explicit options), with the main job's choices:
    the default preset when nothing is named, the (dataset, network) pair's protocol preset when there is one,
    ``--quick``'s truncated schedule, and the paper's balanced subset size for the dataset."""
    preset = opts.preset
    if preset is None and opts.dataset is None and opts.model is None:
        preset = DEFAULT_PRESET
    if preset is None and opts.dataset is not None:
        # The protocol preset of this (dataset, network) pair when there is one: the paper's, else the toolkit's.
        model = opts.model or TrainConfig.model
        preset = next((c for c in (f"paper-{opts.dataset}-{model}", f"{opts.dataset}-{model}") if c in PRESETS), None)
    explicit: dict[str, Any] = {k: getattr(opts, k) for k in ("dataset", "model", "epochs", "per_class", "lr",
                                                               "batch_size", "weight_decay", "data_root", "device")}
    preset_values = merged_options(preset)  # raises "unknown preset ..." itself
    if opts.quick and opts.epochs is None:
        # The first QUICK_EPOCHS epochs of the full schedule (same learning-rate milestones), so the
        # run reaches zero training error and spends most of its epochs in the terminal phase.
        full = int(preset_values.get("epochs", TrainConfig.epochs))
        if preset_values.get("lr_milestones") is None:
            explicit["lr_milestones"] = lr_milestones(full)
        explicit["epochs"] = min(full, QUICK_EPOCHS)
    if opts.per_class is None and preset_values.get("per_class") is None and opts.dataset is not None:
        # Balanced subsets of the paper's (PNAS 2020) size N per class, math §7.1, when the dataset has one.
        from empirical.data import get_spec  # torch: imported when a dataset is named

        try:
            explicit["per_class"] = get_spec(opts.dataset).paper_per_class
        except (KeyError, ValueError):
            pass
    return merge_preset(preset, **explicit, seed=opts.seed, out=str(run_dir), progress=opts.progress, **opts.extra)


class UsageError(ValueError):
    """Bad options or input, found before any stage runs (one line; exit code 2)."""


#: The files and folder of a report in ``OUT`` (the training run ``OUT/run`` is not part of it).
REPORT_FILES = ("claims.json", "report.md", "report.html", "compare.json", "simulation.json", "certificate.json",
                "certificate.md", "figures", "FAILED.txt")
FAILED_DIR = "failed-report"
STAGING_DIR = ".report-staging"

#: Options of a training run that decide what it computes: a run in OUT/run is continued only if they match.
SCIENCE_OPTIONS = ("dataset", "model", "per_class", "epochs", "lr", "momentum", "weight_decay", "batch_size",
                   "loss", "lr_gamma", "lr_milestones", "measure_epochs", "seed", "model_kwargs", "data_kwargs",
                   "image_size", "drop_last")


def check_dataset_available(name: str, data_root: str | None) -> None:
    """Raise ``UsageError`` when dataset ``name`` is unknown or its files are not on this machine (the loader's
    message, which names every folder it looked in)."""
    from empirical.data import get_spec  # torch: imported when a dataset is checked
    from empirical.data.sources import locate

    try:
        spec = get_spec(name)
        if spec.kind == "files":
            for split in spec.files:
                locate(spec, split, data_root)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc).splitlines()[0] if isinstance(exc, ValueError) else str(exc)) from None


def check_model_known(name: str) -> None:
    from empirical.models import check_model  # torch: imported when a model is checked

    try:
        check_model(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_common_options(tpt_threshold: float, out: Path) -> None:
    """The checks the main job and the grid share: ``--tpt-threshold`` and ``--out`` (a one-line UsageError)."""
    try:
        check_tpt_threshold(tpt_threshold)
    except ValueError as exc:
        raise UsageError(f"--tpt-threshold: {exc}") from None
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")


def stored_run_finished(target: Path, wanted: dict[str, Any], remedy: str) -> bool | None:
    """Whether the training run in ``target`` is finished (None: no run there), after checking that it was run
    with the options ``wanted`` (else a UsageError ending with ``remedy``)."""
    if not (target / "config.json").is_file():
        if (target / "metrics.jsonl").exists():
            raise UsageError(f"{target} holds a metrics log without config.json: {remedy}")
        return None
    try:
        stored = read_config(target).get("config", {})
    except Exception as exc:  # noqa: BLE001 - a corrupt config is the user's folder, not a toolkit bug
        raise UsageError(f"{target}: {exc}") from None
    diff = [f"{k} {stored.get(k)!r} (stored) != {wanted.get(k)!r} (asked)" for k in SCIENCE_OPTIONS
            if k in stored and k in wanted and stored.get(k) != wanted.get(k)]
    if diff:
        raise UsageError(f"{target} holds a training run with other options ({'; '.join(diff)}): {remedy}")
    done = {int(r["epoch"]) for r in read_metrics(target) if "epoch" in r}
    return int(stored.get("epochs", -1)) in done


@dataclass
class Plan:
    """What :func:`validate` decided: the training config (None without training) and what to do with OUT/run."""

    train_config: Any = None
    training: str = "none"  # none | reuse-run-dir | new | resume | reuse-finished
    run_dir: Path | None = None  # --run-dir, for reuse-run-dir


def validate(opts: MainOptions) -> Plan:
    """Check every option, name and data file before any stage runs; raise :class:`UsageError` (one line)."""
    out = Path(opts.out)
    check_common_options(opts.tpt_threshold, out)
    for name in ("t_max", "retraction_t_max"):
        v = getattr(opts, name)
        if v is not None and not (v > 0):
            raise UsageError(f"--{name.replace('_', '-')} must be > 0, got {v}")
    if not opts.skip_simulation:  # the simulator's own size rules (C >= 2, N >= 2, C-1 <= p <= C(N-1))
        from simulate import check_sizes  # imports JAX, which the stage needs anyway

        try:
            check_sizes(opts.sim_classes, opts.sim_per_class, opts.sim_dim)
        except ValueError as exc:
            raise UsageError(f"--sim-classes/--sim-per-class/--sim-dim: {exc}") from None
    if opts.run_dir is not None:
        run_dir = Path(opts.run_dir)
        if not (run_dir / "metrics.jsonl").is_file():
            raise UsageError(f"--run-dir {run_dir} has no metrics.jsonl")
        return Plan(training="reuse-run-dir", run_dir=run_dir)
    if opts.skip_training:
        return Plan()
    try:
        cfg = train_config(opts, out / "run").resolved()
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    check_model_known(cfg.model)
    check_dataset_available(cfg.dataset, cfg.data_root)
    target = out / "run"
    if opts.resume and not (target / "config.json").is_file():
        raise UsageError(f"--resume: {target} holds no training run to continue")
    finished = stored_run_finished(target, cfg.to_dict(), "choose another --out, or pass --run-dir to check that "
                                                          "run as it is")
    return Plan(cfg, "new" if finished is None else "reuse-finished" if finished else "resume")


@dataclass
class RunCheck:
    """What :func:`check_run` found on one run: its empirical claims, the comparison with the theory (None, with
    the reason, when the log cannot be compared) and the figures."""

    claims: list[Claim]
    comparison: Any
    comparison_error: str | None
    figures: list[Path]


def check_run(run_dir: Path, records: list[dict[str, Any]], config: dict[str, Any], out: Path, *,
              tpt_threshold: float = TPT_THRESHOLD_DEFAULT, **options: Any) -> RunCheck:
    """Theory against one run (the main job's and the grid's): :func:`paper_checks.compare.compare_run` into
    ``out`` with ``options`` (a log that cannot be compared makes the comparison claims n/a), every ``empirical.*``
    claim, and the run's figures in ``out/figures``."""
    comparison, comparison_error = None, None
    try:
        comparison = compare_run(run_dir, out=out, loaded=(records, config), tpt_threshold=tpt_threshold, **options)
    except ValueError as exc:  # no SNR values, too few usable epochs, ...
        comparison_error = str(exc)
    claims = empirical_claims(records, comparison, config=config, tpt_threshold=tpt_threshold,
                              comparison_error=comparison_error)
    figures = training_figures(records, Path(out) / "figures", tpt_threshold=tpt_threshold)
    figures += [Path(f) for f in (comparison.figures if comparison is not None else [])]
    return RunCheck(claims, comparison, comparison_error, figures)


@dataclass
class _Job:
    """What the stages of one main job share: the options, the staging folder, the stage log, and what the stages
    add up (claims, figures, the report's context lines)."""

    opts: MainOptions
    staging: Path
    stages: Stages
    claims: list[Claim] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    checked: Any = None  # the run's (records, config, comparison, claims), for the ladder's row (e)


def run_main(opts: MainOptions) -> int:
    """Run the main job; returns the exit code (see the module docstring)."""
    plan = validate(opts)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    staging = out / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    job = _Job(opts, staging, Stages(6), context={
        "command": " ".join(["python -m paper_checks"] + sys.argv[1:]) if sys.argv else "",
        "terminal phase": f"training error <= {opts.tpt_threshold:g} from its first epoch to the end "
                          "(--tpt-threshold; 0 = exactly zero, the paper's definition)"})
    t_start = time.perf_counter()
    certificate_stage(job)  # 1.
    simulation_stage(job)  # 2.
    run_dir = training_stage(job, plan, out)  # 3.
    comparison_stage(job, run_dir)  # 4.
    ladder = ladder_stage(job, run_dir, out)  # 5.
    job.claims += stage_error_claims(job.stages)  # stages 1-5; the report's own failure sets the exit code below
    report_stage(job, ladder, t_start)  # 6.
    print(claims_table(job.claims))
    where = publish_report(out, staging, job.stages.errors)
    print(f"report: {where / 'report.html'}  (wall time {time.perf_counter() - t_start:.1f} s)")
    observed = [c.id for c in job.claims if c.status == "fail" and not c.verification]
    if observed and not opts.strict:
        print(f"note: {len(observed)} empirical claim(s) not supported by this run (see the report): "
              + ", ".join(observed))
    return max(exit_code(job.claims, strict=opts.strict), int(bool(job.stages.errors)))


def certificate_stage(job: _Job) -> None:
    """1. The symbolic certificate (math §3-§6): its claims, ``certificate.json`` and ``certificate.md``."""
    mode = job.opts.certificate if job.opts.certificate != "auto" else "quick" if job.opts.quick else "full"
    with job.stages(f"symbolic certificate ({mode})"):
        if mode == "skip":
            job.stages.log("    skipped (--certificate skip)")
            return
        cert = run_certificate(quick=(mode == "quick"))
        job.claims += symbolic_claims(cert)
        (job.staging / "certificate.json").write_text(dumps(cert.to_json()))
        (job.staging / "certificate.md").write_text(cert.markdown())
        job.context["symbolic certificate"] = (
            f"{mode}: {sum(c['passed'] for c in cert.checks)}/{len(cert.checks)} checks")


def simulation_stage(job: _Job) -> None:
    """2. The projected flow and the retraction contrast (math §6): the dynamics claims, their figures and
    ``simulation.json``."""
    opts, stages = job.opts, job.stages
    N = opts.sim_per_class
    with stages("simulation (projected flow + retraction contrast)"):
        if opts.skip_simulation:
            stages.log("    skipped (--skip-simulation)")
            return
        import simulate  # JAX: imported when the simulation stage runs

        t_max = opts.t_max if opts.t_max is not None else 1e5
        r_tmax = opts.retraction_t_max if opts.retraction_t_max is not None else min(t_max, 2e3)
        flow = "reduced" if (opts.quick and opts.sim_flow == "features") else opts.sim_flow
        sizes: dict[str, Any] = dict(num_classes=opts.sim_classes, per_class=N, dim=opts.sim_dim, seed=opts.seed)
        stages.log(f"    {flow} flow C={opts.sim_classes} N={N} p={opts.sim_dim} t_max={t_max:g}")
        proj = simulate.simulate(flow, t_max=t_max, num_times=60, **sizes)
        # The projected-flow claims first, so that a failure of the retraction runs does not lose them.
        job.claims += dynamics_claims(proj, per_class=N)
        retr = retr_half = None
        try:
            stages.log(f"    retraction flow t_max={r_tmax:g}, Euler step {RETRACTION_STEP:g} and "
                       f"{RETRACTION_STEP / 2:g}")
            retr = simulate.simulate("retraction", t_max=r_tmax, num_times=40, step=RETRACTION_STEP, **sizes)
            retr_half = simulate.simulate("retraction", t_max=r_tmax, num_times=40, step=RETRACTION_STEP / 2,
                                          **sizes)
            job.claims += retraction_claims(retr, retr_half, proj, per_class=N)
        finally:
            job.figures += simulation_figures(proj, retr, job.staging / "figures", per_class=N)
            runs = {"projected": proj, "retraction": retr, "retraction_half_step": retr_half}
            summaries = {name: traj.summary() for name, traj in runs.items() if traj is not None}
            (job.staging / "simulation.json").write_text(dumps(summaries))
        job.context["simulation"] = (f"{flow} flow and retraction, C={opts.sim_classes}, N={N}, p={opts.sim_dim}, "
                                     f"t_max={t_max:g} (retraction {r_tmax:g})")


def training_stage(job: _Job, plan: Plan, out: Path) -> Path | None:
    """3. The training run as :func:`validate` planned it (train, resume, or reuse); its directory, or None."""
    stages = job.stages
    run_dir: Path | None = None
    with stages("training" if job.opts.run_dir is None else "training (reusing --run-dir)"):
        if plan.training == "reuse-run-dir":
            run_dir = plan.run_dir
        elif plan.training == "none":
            stages.log("    skipped (--skip-training)")
        elif plan.training == "reuse-finished":
            run_dir = out / "run"
            stages.log(f"    {run_dir} holds this run, finished: reused")
        else:
            from empirical.training import train  # torch: imported when the training stage runs

            cfg = plan.train_config
            resume = plan.training == "resume"
            stages.log(f"    {cfg.dataset} / {cfg.model}, {cfg.epochs} epochs, lr {cfg.lr}, device {cfg.device}"
                       + (" (continuing the run in OUT/run)" if resume else ""))
            run_dir = Path(train(cfg, resume=resume))
        if run_dir is not None:
            job.context["training run"] = str(run_dir)
    return run_dir


def comparison_stage(job: _Job, run_dir: Path | None) -> None:
    """4. Theory against the run (:func:`check_run`): the comparison, the empirical claims, the run's figures."""
    opts, stages = job.opts, job.stages
    with stages("predicted against observed"):
        if run_dir is None:
            stages.log("    no training run: skipped")
            return
        records, config = read_log(run_dir)
        job.context["run config"] = ", ".join(
            [f"{k}={config_value(config, k)}" for k in ("dataset", "model", "loss", "epochs", "lr", "weight_decay",
                                                        "per_class", "batch_size", "seed")]
            + [f"device={config.get('environment', {}).get('device')}"])
        checked = check_run(run_dir, records, config, job.staging, time=opts.time, early_epoch=opts.early_epoch,
                            fit_from_epoch=opts.fit_from, tpt_threshold=opts.tpt_threshold)
        job.claims += checked.claims
        job.figures = checked.figures + job.figures
        job.checked = (records, config, checked.comparison, checked.claims)
        c = checked.comparison
        if c is None or c.fit is None or c.fit_window is None:
            why = checked.comparison_error or ("; ".join(sorted(set(c.unavailable.values()))) if c is not None else "")
            stages.log(f"    no comparison: {why}")
        else:
            f = c.fit.to_dict()
            job.context["fit"] = (f"G(omega_j) = b_j + s*{f['time_key']}^beta: s={f['scale_s']:.4g}, "
                                  f"beta={f['beta']:.4g}, "
                                  f"min R^2(log omega)={f['r2_log_omega_min']:.3f} over {c.fit_window['reason']}")


def stage_error_claims(stages: Stages) -> list[Claim]:
    """An ``error`` claim (``stage.NAME``, with the traceback) for every stage that raised."""
    return [error_claim(f"stage.{name.split(' ')[0]}", f"the stage '{name}' ran", "main job",
                        f"{type(exc).__name__}: {exc}", stages.tracebacks.get(name, ""), "stages")
            for name, exc in stages.errors]


def ladder_stage(job: _Job, run_dir: Path | None, out: Path) -> dict[str, Any] | None:
    """5. Rungs (a)-(d) of the run's calibration ladder (math §7.4) into ``OUT/ladder`` and their verdicts beside the
    run's (:func:`paper_checks.ladder.ladder_beside`); None when skipped (the reason logged) or failed."""
    ladder, opts, stages = None, job.opts, job.stages
    with stages("calibration ladder"):
        if opts.ladder == "off" or run_dir is None:
            stages.log("    skipped (" + ("--ladder off" if opts.ladder == "off" else "no training run") + ")")
            return None
        ladder = ladder_beside(run_dir, out / "ladder", tpt_threshold=opts.tpt_threshold,
                               log=lambda m: stages.log("    " + m), checked=job.checked)
        if ladder is not None:
            job.context["calibration ladder"] = ladder["sentence"]
    return ladder


def report_stage(job: _Job, ladder: dict[str, Any] | None, t_start: float) -> None:
    """6. The report in the staging folder: ``claims.json``, ``report.md``, ``report.html`` (and ``ladder.json``)."""
    with job.stages("report"):
        job.context["wall time (s)"] = round(time.perf_counter() - t_start, 1)
        job.context["stage times (s)"] = dict(job.stages.times)
        paths = write_report(job.staging, job.claims, figures=job.figures, context=job.context, ladder=ladder)
        if ladder is not None:
            (job.staging / "ladder.json").write_text(dumps(ladder))
        job.stages.log(f"    wrote {paths['claims'].name}, {paths['md'].name}, {paths['html'].name}")


def publish_report(out: Path, staging: Path, errors: list[tuple[str, BaseException]], *,
                   files: Sequence[str] = REPORT_FILES) -> Path:
    """Move the complete report from ``staging`` into ``out`` (each file by an atomic rename) and return ``out``.

    When a stage failed and ``out`` already holds a report, that report is kept: the new one goes to
    ``out/failed-report/`` with ``FAILED.txt`` naming the stage(s) and cause(s), and that folder is returned.
    """
    if errors:
        reason = "\n".join(f"stage '{name}' failed: {type(exc).__name__}: {exc}" for name, exc in errors)
        (staging / "FAILED.txt").write_text(reason + "\n")
        if (out / "claims.json").is_file():
            failed = out / FAILED_DIR
            shutil.rmtree(failed, ignore_errors=True)
            os.replace(staging, failed)
            print(f"{reason}\nthe previous report in {out} is kept; this run's report is in {failed}", file=sys.stderr)
            return failed
    trash = out / ".report-old"
    shutil.rmtree(trash, ignore_errors=True)
    trash.mkdir()
    for name in files:  # stale parts of the previous report leave too
        if (out / name).exists() and not (staging / name).exists():
            os.replace(out / name, trash / name)
    for entry in sorted(staging.iterdir()):
        target = out / entry.name
        if entry.is_dir() and target.exists():
            os.replace(target, trash / entry.name)
        os.replace(entry, target)
    shutil.rmtree(trash, ignore_errors=True)
    staging.rmdir()
    if not errors:
        shutil.rmtree(out / FAILED_DIR, ignore_errors=True)
    return out


"""The project's main job: every checkable claim of the paper, run end to end, with a report.

Stages (each printed as it starts and ends, with its wall time):

1. symbolic certificate (``theory.symbolic.run_certificate``), spec 3.3, 3.4, 5, 6;
2. simulation of the projected flow and of the retraction contrast (``simulate.run``), spec 6;
3. training (``empirical.train.train``) on the embedded digits data by default, or reuse
   ``--run-dir``; spec 7;
4. predicted against observed (:mod:`paper_checks.compare`), spec 3.4 / 6.3;
5. claims (:mod:`paper_checks.claims`) and figures;
6. report: ``claims.json``, ``report.md``, self-contained ``report.html``.

A stage that raises does not stop the job: its claims are reported as failed with the error.

Exit code: the symbolic and dynamics claims verify mathematics and numerics, so any failure
there (or a stage error) is an error of the toolkit and gives exit code 1.  The empirical claims
are observations of a real training run: a failure is a scientific result, reported with its
numbers in the report; it changes the exit code only with ``--strict``.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .claims import Claim, all_passed, dynamics_claims, empirical_claims, retraction_claims, symbolic_claims
from .compare import compare_run, config_value, dumps_json, load_run, public
from .report import claims_table, simulation_figures, training_figures, write_report

__all__ = ["MainOptions", "run_main", "Stages"]

DEFAULT_PRESET = "digits-mlp"
#: --quick trains the first QUICK_EPOCHS epochs of the full schedule.
QUICK_EPOCHS = 80
#: Euler step of the retraction contrast; it also runs at half this step for the O(step) check (spec 9 item 19).
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
    time: str = "lr_steps"
    early_epoch: int | None = None
    fit_from: int | None = None
    # general
    quick: bool = False
    certificate: str = "auto"  # auto (full unless quick) | full | quick | skip
    skip_simulation: bool = False
    skip_training: bool = False
    progress: bool = True
    strict: bool = False  # exit 1 when an empirical claim fails too
    extra: dict[str, Any] = field(default_factory=dict)


class Stages:
    """Plain stage lines on stderr: ``[k/n] name ...`` then ``done in X s`` (or ``FAILED``)."""

    def __init__(self, total: int, stream=None):
        self.total = total
        self.k = 0
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.times: dict[str, float] = {}

    def log(self, msg: str) -> None:
        print(msg, file=self.stream, flush=True)

    @contextmanager
    def __call__(self, name: str, errors: list[tuple[str, BaseException]]) -> Iterator[None]:
        self.k += 1
        start = time.perf_counter()
        self.log(f"[{self.k}/{self.total}] {name} ...")
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - reported as a failed claim, the job goes on
            errors.append((name, exc))
            self.log(f"[{self.k}/{self.total}] {name} FAILED after {time.perf_counter() - start:.1f} s: "
                     f"{type(exc).__name__}: {exc}")
            self.log(traceback.format_exc(limit=6))
        else:
            self.log(f"[{self.k}/{self.total}] {name} done in {time.perf_counter() - start:.1f} s")
        finally:
            self.times[name] = round(time.perf_counter() - start, 2)


def _train_config(opts: MainOptions, run_dir: Path):
    """The :class:`empirical.train.TrainConfig` of the main job (preset, then explicit options)."""
    from empirical.train import PRESETS, TrainConfig  # noqa: PLC0415

    preset = opts.preset
    if preset is None and opts.dataset is None and opts.model is None:
        preset = DEFAULT_PRESET
    if preset is None and opts.dataset is not None:
        # Paper-scale runs: the paper's protocol preset for this pair when there is one.
        candidate = f"paper-{opts.dataset}-{opts.model or TrainConfig.model}"
        if candidate in PRESETS:
            preset = candidate
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known: {', '.join(sorted(PRESETS))}")
        values.update(PRESETS[preset])
        values["preset"] = preset
    for key in ("dataset", "model", "epochs", "per_class", "lr", "batch_size", "weight_decay", "data_root", "device"):
        v = getattr(opts, key)
        if v is not None:
            values[key] = v
    if opts.quick and opts.epochs is None:
        # The first QUICK_EPOCHS epochs of the full schedule (same learning-rate milestones), so the
        # run reaches zero training error and spends most of its epochs in the terminal phase.
        from empirical.schedule import lr_milestones  # noqa: PLC0415

        full = int(values.get("epochs", TrainConfig.epochs))
        if values.get("lr_milestones") is None:
            values["lr_milestones"] = lr_milestones(full)
        values["epochs"] = min(full, QUICK_EPOCHS)
    if values.get("per_class") is None and opts.dataset is not None:
        # Balanced subsets of the paper's (PNAS 2020) size N per class, spec 7.1, when the dataset has one.
        from empirical.data import get_spec  # noqa: PLC0415

        try:
            values["per_class"] = get_spec(opts.dataset).paper_per_class
        except (KeyError, ValueError):
            pass
    values["seed"] = opts.seed
    values["out"] = str(run_dir)
    values["progress"] = opts.progress
    values.update(opts.extra)
    return TrainConfig.from_dict(values)


def _certificate_mode(opts: MainOptions) -> str:
    if opts.certificate != "auto":
        return opts.certificate
    return "quick" if opts.quick else "full"


def run_main(opts: MainOptions) -> int:
    """Run the main job; returns the exit code (see the module docstring)."""
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    fig_dir = out / "figures"
    stages = Stages(6)
    errors: list[tuple[str, BaseException]] = []
    claims: list[Claim] = []
    figures: list[Path] = []
    context: dict[str, Any] = {"command": " ".join(["python -m paper_checks"] + sys.argv[1:]) if sys.argv else ""}
    t_start = time.perf_counter()

    # 1. symbolic certificate ------------------------------------------------------------
    mode = _certificate_mode(opts)
    with stages(f"symbolic certificate ({mode})", errors):
        if mode == "skip":
            stages.log("    skipped (--certificate skip)")
        else:
            from theory.symbolic import run_certificate  # noqa: PLC0415

            cert = run_certificate(quick=(mode == "quick"))
            claims += symbolic_claims(cert)
            (out / "certificate.json").write_text(json.dumps(cert.to_json(), indent=2))
            (out / "certificate.md").write_text(cert.markdown())
            context["symbolic certificate"] = f"{mode}: {sum(c['passed'] for c in cert.checks)}/{len(cert.checks)} checks"

    # 2. simulation ------------------------------------------------------------------------
    N = opts.sim_per_class
    with stages("simulation (projected flow + retraction contrast)", errors):
        if opts.skip_simulation:
            stages.log("    skipped (--skip-simulation)")
        else:
            import simulate  # noqa: PLC0415

            t_max = opts.t_max if opts.t_max is not None else 1e5
            r_tmax = opts.retraction_t_max if opts.retraction_t_max is not None else min(t_max, 2e3)
            flow = "reduced" if (opts.quick and opts.sim_flow == "features") else opts.sim_flow
            sizes = dict(classes=opts.sim_classes, per_class=N, dim=opts.sim_dim, seed=opts.seed)
            stages.log(f"    {flow} flow C={opts.sim_classes} N={N} p={opts.sim_dim} t_max={t_max:g}")
            proj = simulate.run(flow, t_max=t_max, num_times=60, **sizes)
            # The projected-flow claims first, so that a failure of the retraction runs does not lose them.
            claims += dynamics_claims(proj, per_class=N)
            retr = retr_half = None
            try:
                stages.log(f"    retraction flow t_max={r_tmax:g}, Euler step {RETRACTION_STEP:g} and "
                           f"{RETRACTION_STEP / 2:g}")
                retr = simulate.run("retraction", t_max=r_tmax, num_times=40, step=RETRACTION_STEP, **sizes)
                retr_half = simulate.run("retraction", t_max=r_tmax, num_times=40, step=RETRACTION_STEP / 2,
                                         **sizes)
                claims += retraction_claims(retr, retr_half, proj, per_class=N)
            finally:
                figures += simulation_figures(proj, retr, fig_dir, per_class=N)
                summaries = {"projected": proj.summary()}
                if retr is not None:
                    summaries["retraction"] = retr.summary()
                if retr_half is not None:
                    summaries["retraction_half_step"] = retr_half.summary()
                (out / "simulation.json").write_text(dumps_json(summaries))
            context["simulation"] = (f"{flow} flow and retraction, C={opts.sim_classes}, N={N}, p={opts.sim_dim}, "
                                     f"t_max={t_max:g} (retraction {r_tmax:g})")

    # 3. training ----------------------------------------------------------------------------
    run_dir: Path | None = None
    with stages("training" if opts.run_dir is None else "training (reusing --run-dir)", errors):
        if opts.run_dir is not None:
            run_dir = Path(opts.run_dir)
            if not (run_dir / "metrics.jsonl").is_file():
                raise FileNotFoundError(f"--run-dir {run_dir} has no metrics.jsonl")
        elif opts.skip_training:
            stages.log("    skipped (--skip-training)")
        else:
            from empirical.train import train  # noqa: PLC0415

            target = out / "run"
            if (target / "metrics.jsonl").exists() and not opts.resume:
                raise FileExistsError(f"{target} already holds a training run: pass --run-dir {target} to reuse it, "
                                      "--resume to continue it, or choose another --out")
            cfg = _train_config(opts, target)
            stages.log(f"    {cfg.dataset} / {cfg.model}, {cfg.epochs} epochs, lr {cfg.lr}, device {cfg.device}"
                       + (" (resuming)" if opts.resume else ""))
            run_dir = Path(train(cfg, resume=opts.resume and (target / "config.json").is_file()))
        if run_dir is not None:
            context["training run"] = str(run_dir)

    # 4. compare --------------------------------------------------------------------------
    comparison = None
    records = None
    with stages("predicted against observed", errors):
        if run_dir is None:
            stages.log("    no training run: skipped")
        else:
            records, config = load_run(run_dir)
            context["run config"] = ", ".join(
                [f"{k}={config_value(config, k)}" for k in ("dataset", "model", "epochs", "lr", "weight_decay",
                                                            "per_class", "batch_size", "seed")]
                + [f"device={config.get('environment', {}).get('device')}"])
            comparison = compare_run(run_dir, out=out, time=opts.time, early_epoch=opts.early_epoch,
                                     fit_from_epoch=opts.fit_from, loaded=(records, config))
            figures += [Path(p) for p in comparison.get("figures", [])]
            f = comparison["fit"]
            context["fit"] = (f"G(omega_j) = b_j + s*{f['time_key']}^beta: s={f['scale_s']:.4g}, beta={f['beta']:.4g}, "
                              f"min R^2(log omega)={f['r2_log_omega_min']:.3f} over {comparison['fit_window']['reason']}")

    # 5. claims ----------------------------------------------------------------------------------
    with stages("empirical claims and figures", errors):
        if records is not None:
            claims += empirical_claims(records, public(comparison) if comparison is not None else None)
            figures = training_figures(records, fig_dir) + figures

    for name, exc in errors:
        claims.append(Claim(id=f"stage.{name.split(' ')[0]}", statement=f"the stage '{name}' ran",
                            source="main job", check="stage completed without an exception", tolerance="no error",
                            status="fail", measured={"error": f"{type(exc).__name__}: {exc}"}, group="stages"))

    # 6. report ------------------------------------------------------------------------------
    with stages("report", errors):
        context["wall time (s)"] = round(time.perf_counter() - t_start, 1)
        context["stage times (s)"] = dict(stages.times)
        paths = write_report(out, claims, figures=figures, context=context)
        stages.log(f"    wrote {paths['claims']}, {paths['md']}, {paths['html']}")
    print(claims_table(claims))
    print(f"report: {out / 'report.html'}  (wall time {time.perf_counter() - t_start:.1f} s)")
    observed = [c.id for c in claims if not c.passed and not is_verification(c)]
    if observed and not opts.strict:
        print(f"note: {len(observed)} empirical claim(s) not supported by this run (see the report): "
              + ", ".join(observed))
    return exit_code(claims, errors=bool(errors), strict=opts.strict)


#: Empirical claims that are exact identities on the run's numbers: a failure is a toolkit error.
EXACT_EMPIRICAL = ("empirical.decomposition_identity", "empirical.central_path_closed_forms")


def is_verification(claim: Claim) -> bool:
    """Symbolic, dynamics and exact-identity claims verify the toolkit; other empirical claims are observations."""
    return getattr(claim, "group", "") != "empirical" or claim.id in EXACT_EMPIRICAL


def exit_code(claims: list[Claim], *, errors: bool = False, strict: bool = False) -> int:
    """0 iff no stage raised and every verification claim passed (every claim with ``strict``)."""
    gate = claims if strict else [c for c in claims if is_verification(c)]
    return 0 if all_passed(gate) and not errors else 1

"""A simulated trajectory written as a run directory (docs/run_format.md: ``config.json``, ``metrics.jsonl``), so
that ``python -m paper_checks compare DIR`` and every claim read a flow exactly as they read a training run.

One ``metrics.jsonl`` line per saved time ``t_k``: ``epoch = k``, ``lr_weighted_steps = flow_time = t_k`` (math §6,
in the convention ``config.kappa``) and :func:`theory.metrics_record` of ``X(t_k)`` with, for the central-path flows,
the least-squares classifier at ``lambda = 0`` and ``lam = 0`` (math §3.1, §4), for the free flow its own
``(W(t), b(t))`` and ridge ``lam``.

The reduced and matrix flows integrate only the SNR (its singular values, or the matrix); their features are
the reconstruction of :func:`simulate.simulate` (frozen within-class deviations, class means moved along the
fixed singular vectors, math §6.1, §6.2), whose SNR singular values are the integrated ones.

The record's ``lam_notebook`` is ``lam / 2``: the flow is gradient flow on the paper's loss, so its weight decay
in the optimiser's sense is ``lam`` (``loss_reduction = "half_batch_mean"``, the paper's own normalisation in
``theory.REDUCTIONS``), and the notebook's reading of a weight decay is ``wd / 2`` (math §8).
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import theory
from theory.jsonio import dumps

#: ``x-schema-version`` of empirical/run_schema.json that these directories follow (simulate imports no empirical).
RUN_SCHEMA_VERSION = 1

#: The paper's loss normalisation (math §1) under its name in ``theory.REDUCTIONS``.
PAPER_REDUCTION = "half_batch_mean"

#: Ladder rung of each flow (issue 15): (a) the exact projected central-path flow, (b) the free gradient flow.
LADDER_RUNGS = {"features": "a", "reduced": "a", "matrix": "a", "free": "b"}

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"


class FlowStates(NamedTuple):
    """What a run directory needs of one simulated trajectory (NumPy arrays, float64).

    labels (n,); features (T, n, p) at the saved times; W (T, C, p) and b (T, C) for the free flow (``None``
    for the central-path flows, whose classifier is the least-squares one); lam: the flow's ridge.
    """

    labels: np.ndarray
    features: np.ndarray
    W: np.ndarray | None
    b: np.ndarray | None
    lam: float


def flow_records(traj) -> list[dict[str, Any]]:
    """One metrics line per saved time of ``traj`` (a single :class:`simulate.Trajectory`), see the module
    docstring.  ``ValueError`` for an ensemble (a run directory holds one run)."""
    states = _states_of(traj)
    C = int(traj.params["num_classes"])
    lam_notebook = theory.lam_from_weight_decay(states.lam, reduction="notebook")  # math §8, module docstring
    lines = []
    for k, t in enumerate(np.asarray(traj.times, dtype=np.float64)):
        X = states.features[k]
        stats = theory.class_stats(X, states.labels, C)
        if states.W is None or states.b is None:  # central-path flows (lam = 0): W_LS at lambda = 0, math §3.1
            W, b = theory.least_squares_classifier(stats, lam=0.0)
        else:
            W, b = states.W[k], states.b[k]
        totals = theory.sample_totals(X, states.labels, W, b, stats.means, num_classes=C)
        errors = int(round(float(totals["errors"])))  # argmax_c (W h + b)_c != y, from the same pass as NC4
        rec = theory.metrics_record(stats, W, b, totals, errors, lam=states.lam, lam_notebook=lam_notebook)
        lines.append({"epoch": k, "lr_weighted_steps": float(t), "flow_time": float(t), **rec})
    return lines


def run_config(traj) -> dict[str, Any]:
    """``config.json`` of ``traj``'s run directory: ``{"schema_version", "source", "config", "environment"}``."""
    p = traj.params
    states = _states_of(traj)
    lam = float(states.lam)
    cfg: dict[str, Any] = {
        "model": f"flow:{traj.flow}", "num_classes": int(p["num_classes"]),
        "per_class": None if p["per_class"] is None else int(p["per_class"]),
        "class_counts": list(p["class_counts"]), "dim": int(p["dim"]), "loss": "mse", "loss_reduction": PAPER_REDUCTION,
        "weight_decay": lam, "lam": lam, "lam_notebook": theory.lam_from_weight_decay(lam, reduction="notebook"),
        "lam_h": float(p.get("lam_h", 0.0)) if traj.flow == "free" else 0.0,
        "kappa": float(p["kappa_value"]), "kappa_convention": p["kappa"], "time_unit": "flow time t of math §6",
        "seed": int(p["seed"]), "t_max": float(p["t_max"]), "num_times": int(p["num_times"]),
    }
    if traj.flow in LADDER_RUNGS:
        cfg["ladder_rung"] = LADDER_RUNGS[traj.flow]
    cfg["flow_options"] = {k: v for k, v in p.items() if k not in cfg and k not in ("kappa_value", "ensemble")}
    return {"schema_version": RUN_SCHEMA_VERSION, "source": "simulate", "config": cfg,
            "environment": _environment()}


def write_run_dir(traj, out_dir) -> Path:
    """Write ``out_dir/config.json`` and ``out_dir/metrics.jsonl`` for ``traj`` (module docstring); returns
    ``out_dir``.  An existing ``metrics.jsonl`` there is replaced (the directory is the simulation's output)."""
    lines = flow_records(traj)
    config = run_config(traj)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(dumps(config) + "\n", encoding="utf-8")
    text = "".join(dumps(line, indent=None, unknown="raise") + "\n" for line in lines)
    (out / METRICS_FILE).write_text(text, encoding="utf-8")
    return out


def _states_of(traj) -> FlowStates:
    if traj.ensemble or traj.states is None:
        raise ValueError("traj: a run directory holds one trajectory; simulate with ensemble=1 to write one")
    return traj.states


def _environment() -> dict[str, Any]:
    env: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("numpy", "jax", "diffrax", "sympy"):
        try:
            env[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            env[name] = None
    return env

"""The module ``simulate.run``: :func:`simulate` (exported as ``simulate.simulate``), one call from sizes to a
recorded :class:`Trajectory` with NC metrics and the closed-form comparison."""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import theory
from theory.jsonio import dumps, jsonable

from ._checks import check_sizes
from ._solve import SolverOptions, check_options, kappa_value, law
from .features import integrate_features, integrate_free, integrate_retraction
from .initial import labels_from_counts, random_initial_features
from .matrix import integrate_matrix
from .metrics import snr_undefined, trajectory_metrics
from .reduced import asymptotic_omega, closed_form_omega, integrate_reduced
from .run_dir import FlowStates

FLOWS = ("reduced", "matrix", "features", "retraction", "free")
ENSEMBLE_FLOWS = ("reduced", "matrix", "features")

#: Metrics computed from the SNR singular values: NaN wherever those are undefined (``simulate.metrics.snr_undefined``).
_OMEGA_DERIVED = ("omega_ratio", "l_central_law", "nc1_law", "closed_form_rel_error", "omega_min_over_asymptote",
                  "omega_max_over_asymptote", "projected_invariant_drift", "retraction_invariant_drift")

#: Default solver settings of :func:`simulate` (``options=None``).
DEFAULT_OPTIONS = SolverOptions(rtol=1e-8, atol=1e-10)

#: Flow options :func:`simulate` accepts besides the sizes (``**flow_options``).
FLOW_OPTIONS = ("rank", "mean_scale", "t_min", "step", "lam", "lam_h", "w_init", "w_scale")


@dataclasses.dataclass
class Trajectory:
    """A simulated trajectory. Arrays are NumPy; an ensemble of K runs adds a leading K axis.

    times (T,); omega (T, C-1) SNR singular values (theory.snr_singular_values); closed_form_omega (T, C-1)
    from the projected law's closed form (math §6.3) started at omega(times[0]); metrics: name -> (T,) arrays
    (see ``simulate.metrics``); gram_start / gram_end (C, C) class-mean Gram matrices; params: run settings.
    notes: what could not be computed and why (e.g. the SNR after the free flow collapsed the features: NaN there).
    states: the features (and the free flow's classifier) at the saved times, for :func:`simulate.write_run_dir`
    (single runs only; ``None`` for an ensemble).
    """

    flow: str
    times: np.ndarray
    omega: np.ndarray
    closed_form_omega: np.ndarray
    metrics: dict[str, np.ndarray]
    gram_start: np.ndarray
    gram_end: np.ndarray
    params: dict[str, Any]
    notes: list[str] = dataclasses.field(default_factory=list)
    states: FlowStates | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def ensemble(self) -> bool:
        return self.omega.ndim == 3

    def to_npz(self, path) -> Path:
        """Write times, omega, closed_form_omega, gram_start, gram_end and every metric (by name) to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = dict(self.metrics)
        arrays.update(times=self.times, omega=self.omega, closed_form_omega=self.closed_form_omega,
                      gram_start=self.gram_start, gram_end=self.gram_end,
                      params_json=np.array(dumps(self.params, indent=None)))
        np.savez(path, **arrays)
        return path

    def summary(self) -> dict[str, Any]:
        """JSON-able summary: final values (median over an ensemble), tail rates, closed-form error, invariants.

        Tail rates are ``tail_loglog_slope`` (least-squares slope of log(quantity) against log(t) over the last
        third of the saved times, at least three): omega_min (theory: 1/4), nc1 (-1/2), max/min - 1 (-1),
        gram_etf_distance (-1).
        """
        om = self.omega if self.ensemble else self.omega[None]  # (K, T, C-1), K = 1 for a single run
        mets = {k: v if self.ensemble else v[None] for k, v in self.metrics.items()}
        K = om.shape[0]
        t = self.times
        out: dict[str, Any] = {"flow": self.flow, "params": self.params, "ensemble_size": K, "notes": self.notes}
        out["final_time"] = float(t[-1])
        out["final_omega"] = np.median(om[:, -1], axis=0).tolist()
        ratio = mets["omega_ratio"][:, -1]
        out["max_min_ratio_final"] = float(np.median(ratio))
        out["max_min_ratio_minus_1_times_t_final"] = float(np.median((ratio - 1) * t[-1]))
        scalar_names = [k for k, v in mets.items() if v.ndim == 2]
        out["final"] = {k: float(np.median(mets[k][:, -1])) for k in sorted(scalar_names)}
        out["initial"] = {k: float(np.median(mets[k][:, 0])) for k in sorted(scalar_names)}
        out["closed_form_max_rel_error"] = float(np.max(mets["closed_form_rel_error"]))
        out["omega_min_over_asymptote_final"] = float(np.median(mets["omega_min_over_asymptote"][:, -1]))
        out["omega_max_over_asymptote_final"] = float(np.median(mets["omega_max_over_asymptote"][:, -1]))
        series = {"omega_min": om[:, :, -1], "nc1": mets["nc1"], "max_min_ratio_minus_1": mets["omega_ratio"] - 1.0,
                  "gram_etf_distance": mets["gram_etf_distance"], "l_central": mets["l_central"]}
        out["tail_loglog_slopes"] = {name: float(np.median([tail_loglog_slope(t, y) for y in ys]))
                                     for name, ys in series.items()}
        out["tail_loglog_slopes_theory"] = {"omega_min": 0.25, "nc1": -0.5, "max_min_ratio_minus_1": -1.0,
                                            "gram_etf_distance": -1.0, "l_central": -0.5}
        for k in ("sigma_w_deviation", "global_mean_norm", "singular_vector_drift", "rho_perp",
                  "central_path_distance"):
            if k in mets:
                out[f"max_{k}"] = float(np.max(mets[k]))
        for k in ("retraction_invariant_drift", "projected_invariant_drift"):
            if k in mets:
                out[f"max_abs_{k}"] = float(np.max(np.abs(mets[k])))
        return jsonable(out)


def tail_loglog_slope(t, y) -> float:
    """Least-squares slope of log(y) against log(t) over the last ``max(3, len(t) // 3)`` saved times.

    The central-path laws are power laws only asymptotically (math §6.3: omega_min ~ t^{1/4}, nc1 ~ t^{-1/2},
    max/min - 1 ~ t^{-1}, gram_etf_distance ~ t^{-1}); on ``log_times``' grid the last third spans the latest
    decades, past the initial transient, and three points are the fewest that fit more than a two-point difference.
    Points with t <= 0, y <= 0 or non-finite y are dropped; fewer than two left give NaN.
    t, y: 1-d sequences of equal length (the saved times and one scalar series). Returns a Python float.
    """
    t = np.asarray(t, float)
    y = np.asarray(y, float)
    if t.ndim != 1 or y.shape != t.shape:
        raise ValueError(f"t and y must be 1-d of equal length, got shapes {t.shape} and {y.shape}")
    tail = len(t) - max(3, len(t) // 3)
    t, y = t[tail:], y[tail:]
    ok = (t > 0) & np.isfinite(y) & (y > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(t[ok]), np.log(y[ok]), 1)[0])


def log_times(t_max: float, num_times: int, t_min: float | None = None) -> jax.Array:
    """[0] followed by num_times-1 log-spaced times from t_min (default t_max * 1e-6, at most 1e-2) to t_max."""
    if not (math.isfinite(t_max) and t_max > 0):
        raise ValueError(f"t_max must be finite and > 0, got {t_max}")
    if num_times < 3:
        raise ValueError(f"num_times must be >= 3, got {num_times}")
    if t_min is None:
        t_min = min(t_max * 1e-6, 1e-2)
    if not (0 < t_min < t_max):
        raise ValueError(f"need 0 < t_min < t_max, got t_min={t_min}, t_max={t_max}")
    return jnp.concatenate([jnp.zeros(1), jnp.geomspace(t_min, t_max, num_times - 1)])


class _Initial(NamedTuple):
    """What the reduced and matrix routes need of an initial X0, computed once (``_initial_snr``)."""

    stats: Any  # theory.class_stats(X0)
    snr: jax.Array  # theory.snr_matrix(stats), (p, C): the matrix route's S(0)
    U: jax.Array  # (p, C-1) left singular vectors of snr
    omega: jax.Array  # (C-1,) its singular values, descending: the reduced route's omega(0)
    V: jax.Array  # (C, C-1) right singular vectors


@functools.partial(jax.jit, static_argnames=("C",))
def _initial_snr(X, labels, C) -> _Initial:
    """One ``theory.class_stats`` of X and one SVD of the SNR matrix ``theory.snr_matrix`` (p, C) (= Mbar on
    X_set, math §5.2): singular vectors (fixed along the projected flow, math §6.2) and values, descending."""
    stats = theory.class_stats(X, labels, C)
    S = theory.snr_matrix(stats)
    U, s, Vt = jnp.linalg.svd(S, full_matrices=False)
    return _Initial(stats, S, U[:, : C - 1], s[: C - 1], Vt[: C - 1].T)


def _single(flow, X0, labels, times, C, N, kap, options, opts, key, init=None):
    """Integrate one initial condition X0 (on X_set); returns (Xs, Ws, bs, lam, steps).

    ``options``: the :class:`SolverOptions`; ``opts``: the flow options.
    ``init``: ``_initial_snr(X0, labels, C)``, required by the reduced and matrix routes (computed once by the
    caller, which also hands U, V to the metrics)."""
    if flow == "features":
        Xs, steps = integrate_features(X0, labels, times, C, kap, renormalize=False, options=options,
                                       return_steps=True)
        return Xs, None, None, 0.0, steps
    if flow == "retraction":
        return integrate_retraction(X0, labels, times, C, float(opts.get("step", 0.5)), kap), None, None, 0.0, None
    if flow == "free":
        lam = float(opts.get("lam", 1e-3))
        lam_h = float(opts.get("lam_h", 0.0))
        p = X0.shape[1]
        if opts.get("w_init", "random") == "least_squares":
            W0, b0 = theory.least_squares_classifier(theory.class_stats(X0, labels, C), lam=lam)
        else:
            W0 = float(opts.get("w_scale", 0.1)) * jax.random.normal(key, (C, p), jnp.float64) / math.sqrt(p)
            b0 = jnp.zeros(C)
        Ws, bs, Xs = integrate_free(X0, labels, times, C, W0, b0, lam=lam, lam_h=lam_h, kappa=kap, options=options,
                                    return_steps=False)
        return Xs, Ws, bs, lam, None
    stats = init.stats
    Z = X0 - stats.means[labels]
    if flow == "reduced":
        om, steps = integrate_reduced(init.omega, times, N, C, kap, options=options, return_steps=True)
        # reconstruct the features: fixed singular vectors (math §6.2), frozen within-class deviations (math §6.1)
        S = jnp.einsum("pj,tj,cj->tpc", init.U, om, init.V)
    else:  # matrix
        S, steps = integrate_matrix(init.snr, times, N, kap, options=options, return_steps=True)
    Xs = Z[None] + stats.global_mean + jnp.swapaxes(S, 1, 2)[:, labels, :]
    return Xs, None, None, 0.0, steps


@functools.partial(jax.jit, static_argnames=("flow", "C", "N", "options"))
def _ensemble(X0s, inits, labels, times, flow, C, N, kap, options):
    """vmap of ``_single`` over initial conditions (reduced, matrix, features flows) and their ``_initial_snr``,
    compiled as one program; returns (Xs (K, T, n, p), steps (K,))."""

    def one(X0, init):
        Xs, _, _, _, steps = _single(flow, X0, labels, times, C, N, kap, options, {}, None, init)
        return Xs, steps

    return jax.vmap(one)(X0s, inits)


def class_counts_of(flow: str, num_classes: int, per_class: int | None, class_counts) -> tuple[int, ...]:
    """The C class counts from ``per_class`` and/or ``class_counts``; ``ValueError`` naming the argument.

    Unequal counts are taken by the free flow only: the central-path flows start on the balanced X_set, and the
    projected flow's reduction and closed form (math §6.2, §6.3) are for balanced classes."""
    if class_counts is None:
        if per_class is None:
            raise ValueError("per_class (or class_counts) is required")
        return (int(per_class),) * int(num_classes)  # check_sizes has refused a fractional per_class
    counts = list(class_counts) if isinstance(class_counts, (list, tuple)) else None
    if (counts is None or any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) for c in counts)
            or len(counts) != num_classes):
        raise ValueError(f"class_counts must be a list of num_classes = {num_classes} integers, got {class_counts!r}")
    counts = [int(c) for c in counts]
    if len(set(counts)) != 1 and flow != "free":
        raise ValueError(f"class_counts {counts} are unequal: flow {flow!r} is for balanced classes (it starts on the "
                         "balanced X_set, and the projected flow's reduction and closed form, math §6.2, §6.3, "
                         "assume them); unequal counts run with flow 'free' only")
    if per_class is not None and any(c != per_class for c in counts):
        raise ValueError(f"per_class={per_class} disagrees with class_counts {counts}")
    return tuple(counts)


def _checked_arguments(flow: str, num_classes: int, per_class: int | None, dim: int, num_times: int, ensemble: int,
                       class_counts, flow_options: dict[str, Any]) -> tuple[int, ...]:
    """The class counts of :func:`simulate`'s arguments, each argument checked (a one-line ``ValueError``)."""
    if flow not in FLOWS:
        raise ValueError(f"unknown flow {flow!r}; choose one of {FLOWS}")
    counts = class_counts_of(flow, num_classes, per_class, class_counts)
    check_sizes(num_classes, counts[0], dim, None if len(set(counts)) == 1 else counts)
    if isinstance(ensemble, bool) or int(ensemble) != ensemble or ensemble < 1:
        raise ValueError(f"ensemble must be a positive integer, got {ensemble}")
    if isinstance(num_times, bool) or int(num_times) != num_times:
        raise ValueError(f"num_times must be an integer, got {num_times!r}")
    unknown = set(flow_options) - set(FLOW_OPTIONS)
    if unknown:
        moved = sorted(unknown & {"rtol", "atol", "solver", "max_steps", "error_norm"})
        hint = f" (pass {moved} as options=simulate.SolverOptions(...))" if moved else ""
        raise ValueError(f"unknown flow options {sorted(unknown)}{hint}; known: {sorted(FLOW_OPTIONS)}")
    for name in ("step", "lam", "lam_h", "mean_scale"):
        v = flow_options.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                              or v < 0 or (name == "step" and v == 0)):
            raise ValueError(f"{name} must be a finite number {'> 0' if name == 'step' else '>= 0'}, got {v!r}")
    return counts


def simulate(
    flow: str,
    *,
    num_classes: int,
    per_class: int | None = None,
    dim: int,
    t_max: float,
    seed: int = 0,
    num_times: int = 60,
    ensemble: int = 1,
    kappa: str | float = "projected",
    options: SolverOptions | None = None,
    class_counts=None,
    **flow_options,
) -> Trajectory:
    """Simulate ``flow`` from random point(s) of X_set and measure everything along the way.

    flow: "reduced" (math §6.2 ODE on omega_j), "matrix" (math §6.1 ODE on the SNR matrix), "features" (projected
    flow on X_set, math §6.1), "retraction" (Euler + re-whitening, math §6.1 contrast), "free" (W, b, H jointly).
    Sizes: ``num_classes`` C, ``per_class`` N, ``dim`` p.  ``class_counts`` (C integers, instead of or agreeing
    with ``per_class``): a real run's class counts.  Unequal counts are taken by the free flow only (its initial
    point is on X_set with the count-weighted global mean; a named kappa and the closed-form reference then use
    N = n / C); the central-path flows start on the balanced X_set and the projected flow's reduction and closed
    form (math §6.2, §6.3) are for balanced classes, so they raise ``ValueError``.
    kappa: "projected" (1), "sum" (C N), "means" (N) or a number (math §6.3 table).
    options: the solver settings (:class:`SolverOptions`: rtol, atol, solver, max_steps, error_norm); default
    :data:`DEFAULT_OPTIONS` (rtol 1e-8, atol 1e-10, Tsit5; the free flow's too).
    flow_options: rank (initial rank of Mbar, <= C-1), mean_scale, t_min, step (retraction step size, default 0.5),
    lam, lam_h, w_init ("random" | "least_squares"), w_scale (free model).
    Times: 0 and num_times-1 log-spaced values up to t_max. For the features-based flows the features at each
    time are reconstructed (reduced, matrix: Z + S(t)^T per class, with Z the frozen within-class deviations).
    """
    counts = _checked_arguments(flow, num_classes, per_class, dim, num_times, ensemble, class_counts, flow_options)
    balanced = len(set(counts)) == 1
    options = DEFAULT_OPTIONS if options is None else check_options(options)
    C, p, K = int(num_classes), int(dim), int(ensemble)
    N = counts[0] if balanced else sum(counts) / C  # imbalanced (free flow): N enters a named kappa and references
    kap = kappa_value(kappa, N, C)
    times = log_times(float(t_max), int(num_times), flow_options.get("t_min"))
    labels = labels_from_counts(counts)
    # one random initial point on X_set per member, integrated along the flow; a run is (Xs, Ws, bs, lam, steps)
    keys = jax.random.split(jax.random.PRNGKey(seed), K)
    X0s = jnp.stack([random_initial_features(jax.random.split(k)[0], C, counts[0], p, rank=flow_options.get("rank"),
                                             mean_scale=float(flow_options.get("mean_scale", 1.0)),
                                             class_counts=None if balanced else counts) for k in keys])
    UVs: list[Any] = [(None, None)] * K
    if flow in ENSEMBLE_FLOWS:
        # initial SNR singular vectors, once: the reduced route rebuilds features on them, metrics measure drift
        inits = jax.vmap(lambda X: _initial_snr(X, labels, C))(X0s)
        UVs = list(zip(inits.U, inits.V))
        # all members at once: vmap over the initial conditions (each keeps its own adaptive steps)
        Xs_all, steps_all = _ensemble(X0s, inits, labels, times, flow, C, N, kap, options)
        runs = [(Xs_all[i], None, None, 0.0, steps_all[i]) for i in range(K)]
    else:
        runs = [_single(flow, X0, labels, times, C, N, kap, options, flow_options, jax.random.split(k)[1])
                for X0, k in zip(X0s, keys)]
    notes: list[str] = []
    members = [_member_record(flow, run, labels, times, C, N, kap, U0, V0, notes) for (U0, V0), run in zip(UVs, runs)]
    params = dict(
        num_classes=C,
        per_class=N if balanced else None,
        class_counts=list(counts),
        dim=p,
        t_max=float(t_max),
        seed=seed,
        num_times=int(num_times),
        ensemble=K,
        kappa=kappa,
        kappa_value=kap,
        **dataclasses.asdict(options),
        solver_steps=[None if run[4] is None else int(run[4]) for run in runs],
        **flow_options,
    )
    fields = members[0] if K == 1 else _stacked(members)
    states = None
    if K == 1:
        host = jax.tree_util.tree_map(np.asarray, runs[0][:3])  # Xs, Ws, bs (None stays None)
        states = FlowStates(np.asarray(labels), host[0], host[1], host[2], float(runs[0][3]))
    return Trajectory(flow=flow, times=np.asarray(times), **fields, params=params, notes=sorted(set(notes)),
                      states=states)


def _stacked(members: list[dict[str, Any]]) -> dict[str, Any]:
    """The members' :class:`Trajectory` fields stacked on a leading axis, the metrics in a single run's order
    (``tree_map`` sorts a dict's keys)."""
    fields = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *members)
    fields["metrics"] = {k: fields["metrics"][k] for k in members[0]["metrics"]}
    return fields


def _member_record(flow: str, run: Any, labels: jax.Array, times: jax.Array, C: int, N: float, kap: float,
                   U0: Any, V0: Any, notes: list[str]) -> dict[str, Any]:
    """The :class:`Trajectory` fields of one member's run (omega, closed_form_omega, metrics, gram_start, gram_end):
    the metrics along it, the closed form (math §6.3) and asymptote (math §6.4) from its initial omega, the drift
    of both flows' invariants, and NaN where the free flow leaves the SNR undefined (said in ``notes``)."""
    Xs, Ws, bs, lam, _ = run
    jax_mets, grams = trajectory_metrics(Xs, labels, C, Ws, bs, lam, U0, V0)
    # Wait with the GIL released first (np.asarray on a pending JAX array holds it while it waits).
    mets = {k: np.asarray(v) for k, v in jax.block_until_ready(jax_mets).items()}
    omega = mets.pop("omega")
    cf = np.asarray(closed_form_omega(jnp.asarray(omega[0]), times, N, C, kap))
    mets["closed_form_rel_error"] = np.max(np.where(cf > 0, np.abs(omega / np.where(cf > 0, cf, 1) - 1),
                                                    np.abs(omega)), axis=1)
    t = np.asarray(times)
    with np.errstate(divide="ignore", invalid="ignore"):
        asym = np.asarray(asymptotic_omega(times, N, C, kap))  # (t/c3)^{1/4}, math §6.4 item 1
        mets["omega_min_over_asymptote"] = omega[:, -1] / asym
        mets["omega_max_over_asymptote"] = omega[:, 0] / asym
        pos = omega > 0
        safe = np.where(pos, omega, 1.0)
        proj = np.asarray(law("closed_form_lhs")(safe, N, C, kap)) - t[:, None]
        retr = np.asarray(law("retraction_lhs")(safe, N, C)) - kap * t[:, None]
        mets["projected_invariant_drift"] = np.where(pos, proj - proj[0], 0.0)
        mets["retraction_invariant_drift"] = np.where(pos, retr - retr[0], 0.0)
    if flow == "free":  # only the free flow moves Sigma_W; collapsed features leave the SNR undefined
        undefined, reason = snr_undefined(Xs, labels, C)
        if undefined.any():
            omega = np.where(undefined[:, None], np.nan, omega)
            for k in _OMEGA_DERIVED:
                mets[k] = np.where(undefined.reshape((-1,) + (1,) * (mets[k].ndim - 1)), np.nan, mets[k])
            first = float(t[np.argmax(undefined)])
            notes.append(f"the SNR singular values are undefined from t = {first:g} on: {reason}; "
                         "omega and what is computed from it are NaN there")
    return dict(omega=omega, closed_form_omega=cf, metrics=mets, gram_start=np.asarray(grams[0]),
                gram_end=np.asarray(grams[-1]))

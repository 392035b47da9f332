"""Benchmark of ``simulate`` on the CPU.

``python -m benchmarks.bench_simulate [--trajectories 10000] [--baseline 200] [--num-classes 10] [--skip-features]``

(a) ``--trajectories`` reduced-ODE trajectories (C = 10, i.e. 9 SNR singular values each, random omega(0) in
    [0.2, 5], N = 5, t in [0, 1e6]), d omega_j/dt = omega_j/(N (C + omega_j^2)^2), integrated with
    ``simulate.integrate_reduced`` (Diffrax Tsit5, PID controller) three ways: jitted and vmapped over all
    initial conditions; vmapped in chunks of 256 (``simulate.integrate_reduced_ensemble``, lax.map over chunks;
    also timed as two plain eager calls: the second reuses the compiled program, no retracing);
    and the whole (K, C-1) batch as one elementwise system with a shared step under max-norm error control
    (each component's local error within atol + rtol |omega|). Against the common approach measured in the
    same run: a Python loop of ``scipy.integrate.solve_ivp`` (RK45, same rtol/atol, same right-hand side from
    ``theory.laws.numeric("omega_rhs")``, ``t_eval`` at the same saved times). The loop runs on the first
    ``--baseline`` trajectories and its time is extrapolated linearly (each trajectory is an independent solve,
    so the loop's cost is linear in the count). Answers are compared on that subsample (max relative difference)
    and both against the closed form.
(b) the feature-level projected flow (``simulate.integrate_features``) at C = 10, N = 500, p = 128 (n = 5000)
    from t = 0 to 1e4: first call (compile + run) and later calls (run only; the kappa convention is a traced
    value, so "sum" reuses the program), with the number of solver steps; sanity: Sigma_W stays I and omega
    matches the reduced ODE. Also one right-hand-side evaluation: ``projected_rhs`` (class-mean part of the
    gradient) against the general ``project_tangent`` of the same gradient (Lyapunov solve).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate

import simulate  # enables float64
import theory
import theory.laws
from simulate.run import log_times

RTOL, ATOL = 1e-10, 1e-12
OPTIONS = simulate.SolverOptions(rtol=RTOL, atol=ATOL)


def _timed_compiled(fn, x):
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(x).compile()
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    ys, steps = compiled(x)
    ys.block_until_ready()
    return np.asarray(ys), np.asarray(steps), t_compile, time.perf_counter() - t0


def _scipy_loop(method, omega0, times, N, C):
    rhs_np = theory.laws.numeric("omega_rhs", "numpy")
    t0 = time.perf_counter()
    out = [scipy.integrate.solve_ivp(lambda t, w: rhs_np(w, N, C, 1.0), (times[0], times[-1]), w0, method=method,
                                     t_eval=times, rtol=RTOL, atol=ATOL).y.T for w0 in omega0]
    return np.stack(out), time.perf_counter() - t0


def bench_reduced(K: int, baseline: int, C: int, N: int, t_max: float, num_times: int) -> dict:
    rng = np.random.default_rng(0)
    omega0 = np.sort(rng.uniform(0.2, 5.0, size=(K, C - 1)), axis=1)[:, ::-1].copy()
    tj = log_times(t_max, num_times, t_min=1e-2)
    times = np.asarray(tj)
    w0 = jnp.asarray(omega0)
    rows = {}
    # per-trajectory adaptive steps: vmap of independent solves (identical to K separate solves)
    ys_v, st_v, c_v, r_v = _timed_compiled(
        jax.vmap(lambda w: simulate.integrate_reduced(w, tj, N, C, 1.0, options=OPTIONS, return_steps=True)), w0)
    rows["vmap"] = dict(compile=c_v, run=r_v, ys=ys_v, steps=st_v)
    # the same, vmapped in chunks of 256 (lax.map over chunks): simulate.integrate_reduced_ensemble
    ys_c, st_c, c_c, r_c = _timed_compiled(
        lambda w: simulate.integrate_reduced_ensemble(w, tj, N, C, 1.0, options=OPTIONS, return_steps=True), w0)
    rows["chunked"] = dict(compile=c_c, run=r_c, ys=ys_c, steps=st_c)
    eager = []
    for _ in range(2):  # plain calls: the first compiles, the second must not (module-level jit, static settings)
        t0 = time.perf_counter()
        simulate.integrate_reduced_ensemble(w0, tj, N, C, 1.0, options=OPTIONS).block_until_ready()
        eager.append(time.perf_counter() - t0)
    # the batch as one elementwise system, shared step with max-norm error control
    ys_b, st_b, c_b, r_b = _timed_compiled(
        lambda w: simulate.integrate_reduced(w, tj, N, C, 1.0, options=OPTIONS.replace(error_norm="max"),
                                             return_steps=True), w0)
    rows["batch"] = dict(compile=c_b, run=r_b, ys=np.swapaxes(ys_b, 0, 1), steps=st_b)
    base = {m: _scipy_loop(m, omega0[:baseline], times, N, C) for m in ("RK45", "DOP853")}
    cf = np.asarray(jax.vmap(lambda w: simulate.closed_form_omega(w, tj, N, C))(w0[:baseline]))

    def rel(a, b):
        return float(np.max(np.abs(a / b - 1)))

    return dict(
        K=K, baseline=baseline, C=C, N=N, t_max=t_max, num_times=num_times, rows=rows, eager=eager,
        base={m: dict(sub=t, full=t * K / baseline, ys=y) for m, (y, t) in base.items()},
        rel={
            "vmap vs scipy RK45": rel(rows["vmap"]["ys"][:baseline], base["RK45"][0]),
            "vmap vs scipy DOP853": rel(rows["vmap"]["ys"][:baseline], base["DOP853"][0]),
            "batch vs scipy DOP853": rel(rows["batch"]["ys"][:baseline], base["DOP853"][0]),
            "vmap vs batch (all K)": rel(rows["vmap"]["ys"], rows["batch"]["ys"]),
            "vmap vs chunked vmap (all K)": rel(rows["vmap"]["ys"], rows["chunked"]["ys"]),
            "vmap vs closed form": rel(rows["vmap"]["ys"][:baseline], cf),
            "batch vs closed form": rel(rows["batch"]["ys"][:baseline], cf),
            "scipy RK45 vs closed form": rel(base["RK45"][0], cf),
            "scipy DOP853 vs closed form": rel(base["DOP853"][0], cf),
        },
    )


def _median_time(fn, *args, repeat=10):
    fn(*args).block_until_ready()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args).block_until_ready()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def bench_features(C: int, N: int, p: int, t_max: float, rtol: float, atol: float) -> tuple[list[dict], dict]:
    labels = simulate.class_labels(C, N)
    X0 = simulate.random_initial_features(jax.random.PRNGKey(0), C, N, p)
    times = log_times(t_max, 10, t_min=1.0)
    kw = dict(renormalize=False, options=simulate.SolverOptions(rtol=rtol, atol=atol, max_steps=100_000),
              return_steps=True)
    out = []
    for conv in ("projected", "projected", "sum"):  # first call compiles; kappa is traced: "sum" reuses it
        t0 = time.perf_counter()
        Xs, steps = simulate.integrate_features(X0, labels, times, C, conv, **kw)
        Xs.block_until_ready()
        t_call = time.perf_counter() - t0
        kappa = theory.laws.kappa(conv, N, C)
        stats = [theory.class_stats(X, labels, C) for X in Xs]  # once per saved time
        omega = [np.asarray(theory.snr_singular_values(s)) for s in (stats[0], stats[-1])]
        red = np.asarray(simulate.integrate_reduced(jnp.asarray(omega[0]), times, N, C, kappa,
                                                  options=simulate.SolverOptions(rtol=1e-12, atol=1e-14)))
        out.append(dict(
            C=C, N=N, p=p, n=C * N, t_max=t_max, rtol=rtol, atol=atol, kappa=conv, t_call=t_call,
            steps=int(steps),
            sigma_w_dev=max(float(np.max(np.abs(np.asarray(s.sigma_w) - np.eye(p)))) for s in stats),
            rel_vs_reduced=float(np.max(np.abs(omega[1] / red[-1] - 1))),
            omega_start=omega[0], omega_end=omega[1],
        ))
    args = (labels, C, 1.0)
    fast = jax.jit(lambda X: simulate.projected_rhs(0.0, X, args))
    general = jax.jit(lambda X: -simulate.project_tangent(X, labels, C, simulate.central_path_gradient(X, labels, C)))
    rhs = dict(fast=_median_time(fast, X0), general=_median_time(general, X0),
               diff=float(jnp.max(jnp.abs(fast(X0) - general(X0)))))
    return out, rhs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trajectories", type=int, default=10_000)
    ap.add_argument("--baseline", type=int, default=200)
    ap.add_argument("--num-classes", "--classes", dest="classes", type=int, default=10)
    ap.add_argument("--per-class", type=int, default=500)
    ap.add_argument("--t-max", type=float, default=1e4)
    ap.add_argument("--num-times", type=int, default=30)
    ap.add_argument("--reduced-per-class", type=int, default=5, help="N of the reduced-ODE benchmark")
    ap.add_argument("--reduced-t-max", type=float, default=1e6, help="t_max of the reduced-ODE benchmark")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--skip-features", action="store_true")
    a = ap.parse_args(argv)

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; float64; rtol={RTOL:g} atol={ATOL:g}")
    r = bench_reduced(a.trajectories, min(a.baseline, a.trajectories), a.classes, a.reduced_per_class,
                      a.reduced_t_max, a.num_times)
    print(f"\n(a) reduced ODE: {r['K']} trajectories, C={r['C']} ({r['C'] - 1} singular values each), N={r['N']}, "
          f"t in [0, {r['t_max']:g}], {r['num_times']} saved times")
    ref = min(b["full"] for b in r["base"].values())
    print(f"{'method':62s} {'time [s]':>9s} {'per traj [ms]':>14s} {'speed-up':>9s}")
    for m, b in r["base"].items():
        print(f"{'scipy solve_ivp ' + m + ' loop (extrapolated from ' + str(r['baseline']) + ')':62s} "
              f"{b['full']:9.2f} {1e3 * b['full'] / r['K']:14.3f} {ref / b['full']:9.2f}")
    labels = {"vmap": "simulate.integrate_reduced jit+vmap, per-trajectory steps",
              "chunked": "integrate_reduced_ensemble: vmap in chunks of 256",
              "batch": "simulate.integrate_reduced jit, (K, C-1) batch, max-norm"}
    for k, row in r["rows"].items():
        print(f"{labels[k] + ' (run)':62s} {row['run']:9.2f} {1e3 * row['run'] / r['K']:14.3f} "
              f"{ref / row['run']:9.1f}")
        print(f"{'   ... compile (once)':62s} {row['compile']:9.2f}")
        print(f"{'   ... run + compile':62s} {row['run'] + row['compile']:9.2f} {'':14s} "
              f"{ref / (row['run'] + row['compile']):9.1f}")
    print("speed-up against the faster scipy loop; scipy measured: "
          + ", ".join(f"{m} {b['sub']:.2f} s for {r['baseline']}" for m, b in r["base"].items()))
    print(
        "Tsit5 steps: vmap median {:.0f} max {} (a vmapped loop runs until the slowest finishes); batch {}".format(
            np.median(r["rows"]["vmap"]["steps"]),
            int(np.max(r["rows"]["vmap"]["steps"])),
            int(r["rows"]["batch"]["steps"]),
        )
    )
    print(f"integrate_reduced_ensemble as two plain calls: first {r['eager'][0]:.2f} s (compiles), second "
          f"{r['eager'][1]:.2f} s (no recompilation)")
    print("max relative differences (on the scipy subsample unless noted):")
    for k, v in r["rel"].items():
        print(f"  {k:35s} {v:.2e}")
    if not a.skip_features:
        rows, rhs = bench_features(a.classes, a.per_class, a.dim, a.t_max, 1e-8, 1e-10)
        f = rows[0]
        print(f"\n(b) feature-level projected flow: C={f['C']}, N={f['N']}, p={f['p']} (n={f['n']}), t in [0, "
              f"{f['t_max']:g}], Tsit5 rtol={f['rtol']:g} atol={f['atol']:g}, 10 saved times "
              "(simulate.integrate_features)")
        print(f"{'call':22s} {'time [s]':>8s} {'steps':>6s} {'ms/step':>8s} {'max|Sigma_W-I|':>15s} "
              f"{'rel vs reduced':>15s}  omega_min(0) -> omega_min(t_max)")
        for name, f in zip(("projected (1st call)", "projected (2nd call)", "sum"), rows):
            print(f"{name:22s} {f['t_call']:8.2f} {f['steps']:6d} {1e3 * f['t_call'] / f['steps']:8.1f} "
                  f"{f['sigma_w_dev']:15.2e} {f['rel_vs_reduced']:15.2e}  {f['omega_start'][-1]:.3f} -> "
                  f"{f['omega_end'][-1]:.3f}")
        print(f"compile (1st call - 2nd call): {rows[0]['t_call'] - rows[1]['t_call']:.2f} s")
        print("(kappa='projected' is dX/dt = -Proj grad L, so slow at N=500 that t=1e4 barely moves omega; "
              "kappa='sum' = C N times faster, math §6.3 table)")
        print(f"one right-hand side at n={f['n']}, p={f['p']} (jitted, median of 10): projected_rhs "
              f"{1e3 * rhs['fast']:.2f} ms, project_tangent of the gradient (Lyapunov) {1e3 * rhs['general']:.2f} ms "
              f"({rhs['general'] / rhs['fast']:.1f}x); max abs difference {rhs['diff']:.1e}")


if __name__ == "__main__":
    main()

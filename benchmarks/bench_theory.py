"""Benchmark of ``theory`` on the CPU.

``python -m benchmarks.bench_theory [--n 60000] [--p 512] [--classes 10]
    [--baseline-samples 3000] [--skip-certificate]``

(a) The full symbolic certificate (``python -m theory --json``, every identity) and the quick one
    (``--quick``), each in a fresh interpreter (imports included), wall time against the 60 s target.
(b) Class statistics (counts, means, Sigma_W, Sigma_B) of ``n x p`` float32 features (default 60,000 x 512,
    10 classes, imbalanced counts) with ``theory.class_stats`` (float64 GEMMs) and with
    ``theory.ClassStatsAccumulator`` (batches of 4096, Chan merge), against the straightforward baseline
    measured in the same run: a Python loop over classes and samples accumulating float64 outer products
    ``(h - mu_c)(h - mu_c)^T``. The loop is run on the first ``--baseline-samples`` samples and its time is
    extrapolated linearly to ``n`` (each sample costs one p x p outer product, so the loop is linear in n);
    the table says so. Accuracy: max abs difference of Sigma_W between ``theory.class_stats`` and the loop on
    that subsample, and between ``theory.class_stats`` and a float64 two-pass NumPy reference on all n.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

import theory


def _loop_stats(X: np.ndarray, y: np.ndarray, C: int) -> tuple[np.ndarray, np.ndarray]:
    """Baseline: per-class, per-sample Python loop with float64 outer products (two passes)."""
    p = X.shape[1]
    sums = [np.zeros(p) for _ in range(C)]
    counts = [0] * C
    for h, c in zip(X, y):
        sums[c] += h.astype(np.float64)
        counts[c] += 1
    means = [s / k for s, k in zip(sums, counts)]
    sw = np.zeros((p, p))
    for c in range(C):
        for h in X[y == c]:
            d = h.astype(np.float64) - means[c]
            sw += np.outer(d, d)
    return np.array(means), sw / len(y)


def _best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_certificate() -> list[tuple[str, float, str]]:
    """Wall time of ``python -m theory --json [--quick]`` in a fresh interpreter (imports included)."""
    rows = []
    for flag in ([], ["--quick"]):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "theory", "--json", *flag], capture_output=True, text=True)
        dt = time.perf_counter() - t0
        name = f"python -m theory {' '.join(flag) or '(full)'}"
        try:
            d = json.loads(proc.stdout) if proc.stdout.strip() else None
        except json.JSONDecodeError:
            d = None
        if d is None:  # crashed before printing the certificate: report why instead of a JSON error
            tail = " ".join(proc.stderr.strip().splitlines()[-3:])[-300:].replace("|", "/") or "(no stderr)"
            rows.append((name, dt, f"NO RESULT, exit {proc.returncode}: {tail}"))
            continue
        status = (f"{sum(c['passed'] for c in d['checks'])}/{len(d['checks'])} PASS, exit {proc.returncode}; "
                  f"checks alone {d['seconds']:.1f} s")
        rows.append((name, dt, status))
    return rows


def bench_stats(n: int, p: int, C: int, n_base: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    # imbalanced labels, class-dependent means
    probs = np.linspace(1.0, 2.0, C)
    probs /= probs.sum()
    y = rng.choice(C, size=n, p=probs)
    centers = rng.normal(size=(C, p)).astype(np.float32) * 3
    X = (centers[y] + rng.normal(size=(n, p)).astype(np.float32)).astype(np.float32)

    t_theory = _best_of(lambda: theory.class_stats(X, y, num_classes=C), 3)
    st = theory.class_stats(X, y, num_classes=C)

    def stream():
        acc = theory.ClassStatsAccumulator(C)
        for i in range(0, n, 4096):
            acc.update(X[i : i + 4096], y[i : i + 4096])
        return acc.finalize()

    t_stream = _best_of(stream, 2)
    st_stream = stream()

    Xb, yb = X[:n_base], y[:n_base]
    Cb = int(yb.max()) + 1
    t0 = time.perf_counter()
    means_b, sw_b = _loop_stats(Xb, yb, Cb)
    t_loop_sub = time.perf_counter() - t0
    t_loop = t_loop_sub * n / n_base
    st_b = theory.class_stats(Xb, yb, num_classes=Cb)
    diff_sub = float(np.max(np.abs(np.asarray(st_b.sigma_w) - sw_b)))

    # float64 two-pass NumPy reference on all samples
    X64 = X.astype(np.float64)
    mu = np.stack([X64[y == c].mean(0) for c in range(C)])
    D = X64 - mu[y]
    sw_ref = D.T @ D / n
    diff_full = float(np.max(np.abs(np.asarray(st.sigma_w) - sw_ref)))
    diff_stream = float(np.max(np.abs(np.asarray(st_stream.sigma_w) - sw_ref)))
    scale = float(np.max(np.abs(sw_ref)))

    print(f"\n(b) class statistics, n={n}, p={p}, C={C}, float32 features (imbalanced counts {np.bincount(y).min()}"
          f"-{np.bincount(y).max()})\n")
    print("| method | time (s) | speed-up vs loop | max abs diff Sigma_W |")
    print("|---|---|---|---|")
    print(f"| Python loop of float64 outer products (baseline; run on {n_base} samples in {t_loop_sub:.2f} s, "
          f"extrapolated linearly x{n / n_base:.0f}) | {t_loop:.1f} | 1 | {diff_sub:.1e} vs "
          f"theory.class_stats on the same {n_base} |")
    print(f"| theory.class_stats (one call, float64 GEMMs, best of 3) | {t_theory:.3f} | {t_loop / t_theory:.0f}x | "
          f"{diff_full:.1e} vs float64 two-pass NumPy on all n |")
    print(f"| theory.ClassStatsAccumulator (batches of 4096, best of 2) | {t_stream:.3f} | {t_loop / t_stream:.0f}x | "
          f"{diff_stream:.1e} vs float64 two-pass NumPy on all n |")
    print(f"\n(max |Sigma_W| = {scale:.3g}; relative differences are these numbers divided by it)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--p", type=int, default=512)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--baseline-samples", type=int, default=3000)
    ap.add_argument("--skip-certificate", action="store_true")
    args = ap.parse_args(argv)
    print(f"# bench_theory  ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, numpy {np.__version__})")
    if not args.skip_certificate:
        rows = bench_certificate()
        print("\n(a) symbolic certificate (python -m theory), target < 60 s\n")
        print("| run | time (s) | vs 60 s target | result |")
        print("|---|---|---|---|")
        for name, dt, status in rows:
            print(f"| {name} | {dt:.1f} | {dt / 60:.2f}x of budget ({'OK' if dt < 60 else 'OVER'}) | {status} |")
    bench_stats(args.n, args.p, args.classes, args.baseline_samples)


if __name__ == "__main__":
    main()

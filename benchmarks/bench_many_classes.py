"""Benchmark: NC metrics and the decomposition with tens of thousands of classes (math §2.3).

``python -m benchmarks.bench_many_classes [--config C,p,n[,imbalanced]] ... [--tile 1024] [--theory-path DIR]
[--json FILE]``

Each configuration runs in a fresh interpreter (so its peak memory is its own): synthetic float32
features ``h = mu_y + noise`` (``n x p``, class means ``~ N(0, 1)``, noise ``N(0, 1)``; balanced labels,
or imbalanced with class ``c`` drawn with probability proportional to ``1 + (c mod 10)``), a random
classifier ``(W, b)`` in float32; then ``theory.class_stats`` + ``theory.nc_metrics(stats, W, b)`` (with
the central-path distance, hence a second decomposition) + ``theory.decompose(stats, W, b)``, each timed;
with ``--field`` also the field metrics (math §2.3: the variances pass, ``cdnv``, the log and Riesz
``kernel_statistics``, ``ood_orthogonality`` of the first ``n/10`` rows as the held-out set).
CPU time (user + system, all threads, whole process) is printed beside the wall time: on a shared
machine it moves less than the wall time.  Memory: the child's peak resident set (``ru_maxrss``) and peak address
space (``VmPeak``), read at the
end; the input alone (``n x p`` float32 + labels) is in both.

``--theory-path DIR`` imports ``theory`` from ``DIR`` instead (e.g. an export of an older commit:
``git archive COMMIT theory | tar -x -C /tmp/before``) for a before/after comparison in one run.
Default configurations: ``50000,256,100000`` balanced and imbalanced, ``10000,512,100000``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

DEFAULT_CONFIGS = ("50000,256,100000", "50000,256,100000,imbalanced", "10000,512,100000")

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import theory
C, p, n, imbalanced, tile = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1", int(sys.argv[6])
field = sys.argv[7] == "1"
rng = np.random.default_rng(0)
if imbalanced:
    w = 1.0 + (np.arange(C) % 10)
    y = rng.choice(C, size=n, p=w / w.sum())
    y[:C] = np.arange(C)  # every class present
    rng.shuffle(y)
else:
    y = rng.permutation(np.arange(n) % C)
M = rng.standard_normal((C, p), dtype=np.float32)
X = M[y] + rng.standard_normal((n, p), dtype=np.float32)
del M
W = rng.standard_normal((C, p), dtype=np.float32) / np.float32(p ** 0.5)
b = rng.standard_normal(C, dtype=np.float32) / np.float32(10.0)
kw = {} if tile <= 0 else {"tile": tile}
out = {"C": C, "p": p, "n": n, "imbalanced": imbalanced, "theory": theory.__file__}
t0 = time.perf_counter()
stats = theory.class_stats(X, y)
t1 = time.perf_counter()
nc = theory.nc_metrics(stats, W, b, **kw)
t2 = time.perf_counter()
dec = theory.decompose(stats, W, b, **kw)
t3 = time.perf_counter()
if field:
    variances = theory.class_variances(X, y, stats.means)
    out["cdnv"] = float(theory.cdnv(stats, variances, **kw))
    out["log_var"] = float(theory.kernel_statistics(stats, "log", **kw)["var"])
    out["riesz_var"] = float(theory.kernel_statistics(stats, "riesz", **kw)["var"])
    out["ood"] = float(theory.ood_orthogonality(stats, X[: n // 10]))
t4 = time.perf_counter()
out.update(stats_s=t1 - t0, nc_metrics_s=t2 - t1, decompose_s=t3 - t2, field_s=t4 - t3, total_s=t4 - t0)
usage = resource.getrusage(resource.RUSAGE_SELF)
out["maxrss_gib"] = usage.ru_maxrss / 2 ** 20
out["cpu_s"] = usage.ru_utime + usage.ru_stime  # all threads, imports and data generation included
for line in open("/proc/self/status"):
    if line.startswith("VmPeak:"):
        out["vmpeak_gib"] = int(line.split()[1]) / 2 ** 20
out["nc1"] = float(nc["nc1"]); out["nc2_etf_distance"] = float(nc["nc2_etf_distance"])
out["loss"] = float(dec["loss"]); out["l_nc23"] = float(dec["l_nc23"])
out["unavailable"] = nc.get("unavailable", {})
print(json.dumps(out))
"""


def run_config(config: str, tile: int, theory_path: str, timeout: float, field: bool = False) -> dict:
    parts = config.split(",")
    C, p, n = (int(v) for v in parts[:3])
    imbalanced = len(parts) > 3 and parts[3] == "imbalanced"
    cmd = [sys.executable, "-c", CHILD, theory_path, str(C), str(p), str(n), "1" if imbalanced else "0", str(tile),
           "1" if field else "0"]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"config": config, "error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        reason = lines[-1] if lines else f"exit status {proc.returncode}" + (
            f" (killed by signal {-proc.returncode})" if proc.returncode < 0 else "")
        return {"config": config, "error": reason, "wall_s": wall}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update(config=config, wall_s=wall)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", action="append", help="C,p,n[,imbalanced] (repeatable)")
    ap.add_argument("--tile", type=int, default=0, help="tile rows passed to nc_metrics/decompose (0: the default)")
    ap.add_argument("--theory-path", default=os.getcwd(), help="directory that holds the theory package to import")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--json", help="append one JSON line per configuration to this file")
    ap.add_argument("--field", action="store_true",
                    help="also the field metrics (variances pass, CDNV, log and Riesz kernels, OOD orthogonality)")
    args = ap.parse_args(argv)
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    print(f"load average before: {' '.join(load)}; cores: {os.cpu_count()}; theory from {args.theory_path}")
    print("| C | p | n | classes | stats | nc_metrics | decompose | field metrics | total (wall) "
          "| CPU time of the process | peak RSS | peak address space |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for config in args.config or DEFAULT_CONFIGS:
        r = run_config(config, args.tile, args.theory_path, args.timeout, args.field)
        r["load_before"] = load
        if "error" in r:
            print(f"| {config} | failed: {r['error']} |")
        else:
            field = f"{r['field_s']:.1f} s" if args.field else "-"
            print(f"| {r['C']:,} | {r['p']} | {r['n']:,} | {'imbalanced' if r['imbalanced'] else 'balanced'} | "
                  f"{r['stats_s']:.1f} s | {r['nc_metrics_s']:.1f} s | {r['decompose_s']:.1f} s | {field} | "
                  f"{r['total_s']:.1f} s | {r.get('cpu_s', float('nan')):.1f} s | "
                  f"{r['maxrss_gib']:.2f} GiB | {r.get('vmpeak_gib', float('nan')):.2f} GiB |", flush=True)
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(json.dumps(r) + "\n")
        with open("/proc/loadavg") as fh:
            load = fh.read().split()[:3]
    print(f"load average after: {' '.join(load)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

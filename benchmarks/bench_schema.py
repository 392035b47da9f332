"""Benchmark: reading a run log with its schema check (``empirical.schema.read_run_log``, the plain-Python line
check) against validating the same lines with jsonschema alone, in the same run.

``python -m benchmarks.bench_schema [--lines 2000] [--repeats 5]``

A ratio of two timings in one process (machine load cancels to first order); the reader exists so that
``compare`` and the claims can read long logs quickly, and its target is a reading under half the cost of
jsonschema's validation.  This was a timed unit test until it failed once inside the full suite (0.54 against
0.19 alone): a timing belongs here, not in the tests.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from empirical import runs
from empirical.measurement import METRIC_KEYS
from empirical.schema import _validator, read_run_log


def full_line(epoch: int) -> dict:
    """One metrics line with every key of a measured run (C = 10)."""
    line: dict = {k: 0.5 for k in METRIC_KEYS}
    line.update(epoch=epoch, snr_singular_values=[float(9 - i) for i in range(9)], class_counts=[50] * 10,
                snr_support="full", snr_rank=64, snr_dim=64, ls_rank_lam0=64, train_count=500, warnings=[],
                flow_time=0.5, tr_sigma_w=1.0)
    return line


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--lines", type=int, default=2000, help="lines in the log")
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds (the median ratio is reported)")
    args = ap.parse_args(argv)
    lines = [full_line(e) for e in range(args.lines)]
    slow = _validator("metrics_line")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "metrics.jsonl").write_text("".join(runs.json_line(r) + "\n" for r in lines))
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            assert len(read_run_log(tmp).records) == args.lines
            t_read = time.perf_counter() - t0
            t0 = time.perf_counter()
            for r in lines:
                assert not list(slow.iter_errors(r))
            t_schema = time.perf_counter() - t0
            ratios.append(t_read / t_schema)
            print(f"read {1e3 * t_read / args.lines:.3f} ms/line, jsonschema {1e3 * t_schema / args.lines:.3f} "
                  f"ms/line, ratio {t_read / t_schema:.3f}")
    med = statistics.median(ratios)
    print(f"median ratio read / jsonschema = {med:.3f} (target < 0.5: {'met' if med < 0.5 else 'not met'})")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Issue 10's GPU checks, prepared to run in one or two calls on a lent GPU machine (repository root).
#
#   bash benchmarks/device_issue10.sh [all|paper-run|sweep|tests]      (default: all, about 9-10 minutes)
#
# Environment: OUT (results folder; default ./device-out), DATA (a folder holding the four Fashion-MNIST
# *-ubyte.gz files; default device_data/fashion-mnist, git-ignored: copy /usr/share/datasets/fashion-mnist
# there and carry it), WHEELS (wheels of the pure-Python dependencies the device may lack; default
# device_data/wheels, filled by `pip download --no-deps -d device_data/wheels array-api-compat tqdm
# submitit cloudpickle`).
#
#   paper-run  the full paper run (`--preset paper-fashion-mnist-resnet18`: 350 epochs, 51 measurements,
#              everything included), stopped at 300 s, the issue's 5-minute target: whether it finished,
#              and where the time went (training, measurement, the rest).
#   sweep      python -m benchmarks.bench_sweep --gpu-only: K = 8 ResNet18 interleaved on streams against
#              a single run (target: >= 3x the model-epochs per second).
#   tests      the CUDA tests: sweeps (streams; exact equality under deterministic kernels), the monitor.
#
# Every part writes under $OUT; record the numbers, with the card named, in benchmarks/RESULTS.md.
set -u
OUT=${OUT:-$PWD/device-out}
DATA=${DATA:-device_data/fashion-mnist}
WHEELS=${WHEELS:-device_data/wheels}
PART=${1:-all}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

python - <<'EOF' 2>/dev/null || pip install --no-index --find-links "$WHEELS" array-api-compat tqdm submitit cloudpickle > "$OUT/pip.txt" 2>&1
import array_api_compat, tqdm, submitit  # noqa: F401
EOF
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  git rev-parse HEAD 2>/dev/null; date -u; } > "$OUT/machine.txt" 2>&1

if [[ $PART == all || $PART == paper-run ]]; then
  rm -rf "$OUT/paper-run"
  t0=$(date +%s.%N)
  timeout 300 python -m empirical train --preset paper-fashion-mnist-resnet18 --data-root "$DATA" \
    --out "$OUT/paper-run" --no-progress > "$OUT/paper-run.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  python - "$OUT/paper-run" "$rc" "$t0" "$t1" > "$OUT/paper-run-summary.json" <<'EOF'
import json, sys
from empirical.runs import read_metrics
run, rc, wall = sys.argv[1], int(sys.argv[2]), float(sys.argv[4]) - float(sys.argv[3])
recs = read_metrics(run)
last = recs[-1] if recs else {}
work = (last.get("train_time_s") or 0) + (last.get("measure_time_total_s") or 0)
print(json.dumps({"rc": rc, "finished_in_300_s": rc == 0 and last.get("epoch") == 350, "process_wall_s": wall,
                  "last_measured_epoch": last.get("epoch"), "measurements": len(recs), "time_s": last.get("time_s"),
                  "train_time_s": last.get("train_time_s"), "measure_time_total_s": last.get("measure_time_total_s"),
                  "time_over_train_plus_measure": (last["time_s"] / work) if work else None,
                  "last_epoch_time_s": last.get("epoch_time_s"), "final_train_error": last.get("train_error"),
                  "final_test_error": last.get("test_error")}, indent=2))
EOF
  cat "$OUT/paper-run-summary.json"
fi

if [[ $PART == all || $PART == sweep ]]; then
  python -m benchmarks.bench_sweep --gpu-only --data-root "$DATA" --gpu-epochs 3 --out "$OUT/bench_sweep.json" \
    > "$OUT/bench_sweep.txt" 2>&1
  echo "bench_sweep rc=$?"; tail -20 "$OUT/bench_sweep.txt"
fi

if [[ $PART == all || $PART == tests ]]; then
  python -m pytest -q -p no:cacheprovider tests/empirical/test_sweep_cuda.py tests/empirical/test_monitor.py -k "cuda" \
    > "$OUT/tests.txt" 2>&1
  echo "tests rc=$?"; tail -5 "$OUT/tests.txt"
fi

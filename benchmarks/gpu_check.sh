#!/usr/bin/env bash
# The GPU check, in under 9 minutes on one H100/H200: builds cluttered MNIST from the MNIST idx files,
# runs both published schedules (flags unchanged) and the cross-digit evaluation, the benchmarks
# (ms per step on CUDA, ops per step) and the fast tests with the CUDA tests (`-m "not slow or cuda"`; the
# whole-script runs of tests/e2e/ are the CPU suite's), and writes at most 8 result files to OUT:
#   summary.txt pretrain.log joint.log eval.log cross_digit.md trajectories.png bench.log tests.log
# Usage: benchmarks/gpu_check.sh MNIST_ROOT [OUT]   (MNIST_ROOT holds MNIST/raw/*-ubyte[.gz])
# Environment: PYTHON (default .venv/bin/python when present, else python3), WORK (scratch folder).
set -uo pipefail
cd "$(dirname "$0")/.."
MNIST_ROOT=${1:?usage: benchmarks/gpu_check.sh MNIST_ROOT [OUT]}
OUT=${2:-results/gpu_check}
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$OUT" "$WORK"
export WANDB_MODE=disabled WANDB_SILENT=true PYTHONUNBUFFERED=1 PYTHON="$PY"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }
# stage NAME LIMIT LOG COMMAND...: runs COMMAND with a time limit, output to LOG, and notes exit code and wall time
stage() {
  local name=$1 limit=$2 log=$3; shift 3
  local start=$SECONDS
  timeout "$limit" "$@" >> "$log" 2>&1
  local code=$?
  note "$name: exit $code in $((SECONDS - start)) s$([ $code -eq 124 ] && echo " (stopped at the ${limit} s limit)")"
}

note "gpu_check $(date -u +%FT%TZ) on $(hostname)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$SUMMARY" 2>&1
"$PY" -c "import sys, torch, torchvision; print('python', sys.version.split()[0], '| torch', torch.__version__, '| torchvision', torchvision.__version__, '| cuda', torch.version.cuda, torch.cuda.is_available())" >> "$SUMMARY" 2>&1

DATA="$WORK/data" RUNS="$WORK/runs"
stage "generate cluttered MNIST (all digits, both splits)" 120 "$WORK/generate.log" \
  "$PY" clutter_mnist_scale.py --source torchvision --mnist_root "$MNIST_ROOT" --no_download --datapath "$DATA"
tail -n 3 "$WORK/generate.log" >> "$SUMMARY"

stage "pretrain.sh (published flags)" 150 "$OUT/pretrain.log" env DATAPATH="$DATA" SAVEROOT="$RUNS" ./pretrain.sh
grep -E "^best|early stop" "$OUT/pretrain.log" >> "$SUMMARY"
stage "joint.sh (published flags)" 210 "$OUT/joint.log" env DATAPATH="$DATA" SAVEROOT="$RUNS" ./joint.sh
grep -E "^best|early stop" "$OUT/joint.log" >> "$SUMMARY"
tail -n 1 "$RUNS/cluttermnist_joint/metrics.jsonl" 2>/dev/null | cut -c1-600 >> "$SUMMARY"
stage "evaluation of the best pair, every digit" 60 "$OUT/eval.log" env DATAPATH="$DATA" SAVEROOT="$RUNS" ./joint.sh \
  --evaluate 1 --greedy 1 --eval_digits 0 1 2 3 4 5 6 7 8 9 --visualize 6
grep -E "^Test Loc Acc" "$OUT/eval.log" >> "$SUMMARY"
cp "$RUNS/cluttermnist_joint/cross_digit.md" "$RUNS/cluttermnist_joint/trajectories.png" "$OUT/" 2>/dev/null

BENCH="$OUT/bench.log"
for amp in none bf16; do
  stage "bench_pretrain --amp $amp" 60 "$BENCH" "$PY" benchmarks/bench_pretrain.py --device cuda --datapath "$DATA" --repeats 20 --warmup 3 --amp $amp
  stage "bench_joint --amp $amp" 60 "$BENCH" "$PY" benchmarks/bench_joint.py --device cuda --datapath "$DATA" --repeats 10 --warmup 2 --amp $amp
done
stage "bench_actor" 30 "$BENCH" "$PY" benchmarks/bench_actor.py --device cuda
stage "count_ops" 60 "$BENCH" "$PY" benchmarks/count_ops.py --device cuda --datapath "$DATA"
stage "bench_fixed_cost (per-epoch cost beyond the batches, every script)" 120 "$BENCH" "$PY" benchmarks/bench_fixed_cost.py \
  --device cuda --source torchvision --mnist_root "$MNIST_ROOT"
grep -E "ratio|^project|^original|top-level|fixed" "$BENCH" >> "$SUMMARY"

XDIST=$("$PY" -c "import xdist" 2>/dev/null && echo "-n 8")
stage "fast and CUDA tests" 170 "$OUT/tests.log" "$PY" -m pytest -q -p no:cacheprovider $XDIST -m "not slow or cuda" tests
tail -n 3 "$OUT/tests.log" >> "$SUMMARY"
note "done in ${SECONDS} s; results in $OUT"

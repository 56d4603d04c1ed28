#!/usr/bin/env bash
# The GPU check: one verdict on this checkout; its stage limits add up to 8 minutes (480 s) on one GPU.
#   1. commit, torch, CUDA and device;
#   2. the CUDA tests (`-m cuda`), first;
#   3. cluttered MNIST (digit 4) and the successor's patch / clutter data (digits 2, 3) from MNIST_ROOT;
#   4. side by side with a reference commit, on the same device in the same run, alternating: the
#      2021 published pretraining and joint epochs (pretrain.sh, joint.sh, a few epochs each) and the
#      successor's published agent-training (A) and adaptation (T1) epochs (benchmarks/bench_epochs.py);
#   5. a last line `verdict: PASS|FAIL ...` with what passed, what failed and the speed ratios
#      (reference / this: above 1 is faster). The exit status is non-zero on a failed test or a crashed run.
# Usage: benchmarks/gpu_check.sh MNIST_ROOT [OUT]   (MNIST_ROOT holds MNIST/raw/*-ubyte[.gz])
# Environment: GPU_CHECK_DEVICE (cuda, the default; cpu runs every stage in reduced size, in under 2
#   minutes), REFERENCE (the commit timed beside this one, default 98a4638: before the frozen-encoder
#   component; or REFERENCE_DIR, a checkout of it), PYTHON (default .venv/bin/python when present), WORK.
# OUT gets summary.txt (what this prints) and one log per stage.
set -uo pipefail
cd "$(dirname "$0")/.."
MNIST_ROOT=${1:?usage: benchmarks/gpu_check.sh MNIST_ROOT [OUT]}
OUT=${2:-results/gpu_check}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
REFERENCE=${REFERENCE:-98a4638}
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
PY=$(cd "$(dirname "$PY")" 2>/dev/null && echo "$(pwd)/$(basename "$PY")" || echo "$PY")  # absolute: stages run in other folders
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)
export WANDB_MODE=disabled WANDB_SILENT=true PYTHONUNBUFFERED=1 PYTHON="$PY"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }
FAILED=() PASSED=() RATIOS=()
# stage NAME LIMIT LOG COMMAND...: COMMAND under a time limit, output to LOG; notes exit code and wall time
stage() {
  local name=$1 limit=$2 log=$3; shift 3
  local start=$SECONDS
  timeout "$limit" "$@" > "$log" 2>&1
  local code=$?
  note "$name: exit $code in $((SECONDS - start)) s$([ $code -eq 124 ] && echo " (stopped at the ${limit} s limit)")"
  if [ $code -eq 0 ]; then PASSED+=("$name"); else FAILED+=("$name (exit $code)"); fi
  return $code
}

if [ "$DEVICE" = cpu ]; then  # reduced size: every stage, two small batches an epoch, 200 adaptation images
  EPOCHS=4 MAX_BATCHES=(--max_batches 2) SMALL=(--batch_size 32) BENCH=(--epochs 2 --repeats 1 --max_batches 2 --sample_size 200)
else
  EPOCHS=4 MAX_BATCHES=() SMALL=() BENCH=(--epochs 3 --repeats 1)
fi

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown (no git)")
note "gpu_check $(date -u +%FT%TZ) on $(hostname): commit $COMMIT$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)'), device $DEVICE"
"$PY" -c "import sys, torch, torchvision; cuda = torch.cuda.is_available(); print('python', sys.version.split()[0], '| torch', torch.__version__, '| torchvision', torchvision.__version__, '| cuda', torch.version.cuda, '|', torch.cuda.get_device_name(0) if cuda else 'no CUDA device')" 2>&1 | tee -a "$SUMMARY"

# 4 workers on a GPU machine's cores; on a CPU every CUDA test skips, and starting workers would cost more than the collection
XDIST=$([ "$DEVICE" = cuda ] && "$PY" -c "import xdist" 2>/dev/null && echo "-n 4")
CUDA_TESTS=$(grep -l "mark.cuda" tests/*.py tests/e2e/*.py)  # the files that hold CUDA tests (collecting all costs time)
stage "CUDA tests" 90 "$OUT/tests.log" "$PY" -m pytest -q -p no:cacheprovider $XDIST -m cuda $CUDA_TESTS
tail -n 1 "$OUT/tests.log" | tee -a "$SUMMARY"

DATA="$WORK/data"
SOURCE=(--source torchvision --mnist_root "$MNIST_ROOT" --no_download --seed 0)
stage "data: cluttered digit 4" 20 "$OUT/data_clutter.log" "$PY" clutter_mnist_scale.py "${SOURCE[@]}" --digits 4 --datapath "$DATA/clutter"
for kind in "patch 3" "clutter 2"; do
  set -- $kind
  stage "data: $1 digit $2" 20 "$OUT/data_$1.log" "$PY" clutter_mnist_scale.py "${SOURCE[@]}" --digits "$2" --bg_name "$1" \
    --datapath "$DATA/corrupted"
done

DATA_OK=$(printf '%s\n' ${FAILED[@]+"${FAILED[@]}"} | grep -q '^data:' || echo 1)  # every data stage passed
run_stages() {  # every stage after the data (without data they cannot run)
REF=${REFERENCE_DIR:-$WORK/reference}
if [ -z "${REFERENCE_DIR:-}" ]; then  # a checkout of the reference, removed however the script ends
  git worktree prune > /dev/null 2>&1
  WORKTREE=$REF
  timeout 15 git worktree add --detach "$WORKTREE" "$REFERENCE" > "$OUT/reference.log" 2>&1 &&
    trap 'git worktree remove --force "$WORKTREE" > /dev/null 2>&1' EXIT
fi
[ -f "$REF/train-joint.py" ] || { note "no reference checkout of $REFERENCE at $REF: nothing is timed side by side"; REF=""; }

# the 2021 published epochs (flags unchanged but --epochs), this checkout and then the reference, the same data
ROOTS=("this:$(pwd)")
[ -n "$REF" ] && ROOTS+=("reference:$REF")
for entry in "${ROOTS[@]}"; do
  name=${entry%%:*} root=${entry#*:}
  for script in pretrain joint; do
    stage "2021 $script.sh, $EPOCHS epochs ($name)" 40 "$OUT/${script}_$name.log" bash -c 'cd "$0" && exec "$@"' "$root" \
      env DATAPATH="$DATA/clutter" SAVEROOT="$WORK/runs2021/$name" PYTHON="$PY" "./$script.sh" --epochs "$EPOCHS" --device "$DEVICE" \
      --overwrite 1 ${MAX_BATCHES[@]+"${MAX_BATCHES[@]}"} ${SMALL[@]+"${SMALL[@]}"}
  done
done
# median seconds of the epochs between the first (it builds what a run builds once) and the last (it draws the
# run's figures), from a log's epoch lines ("... | 0.6 s | ETA ...")
epoch_median() { "$PY" -c "import re, statistics, sys; t = [float(x) for x in re.findall(r'\| ([0-9.]+) s \| ETA', open(sys.argv[1]).read())][1:-1]; print(f'{statistics.median(t):.3f}' if t else '')" "$1" 2>/dev/null; }
for script in pretrain joint; do
  this=$(epoch_median "$OUT/${script}_this.log") ref=$([ -n "$REF" ] && epoch_median "$OUT/${script}_reference.log")
  note "2021 $script.sh median epoch: this ${this:-?} s, reference ${ref:--} s"
  [ -n "$this" ] && [ -n "$ref" ] && RATIOS+=("$script $("$PY" -c "print(f'{$ref / $this:.2f}x')")")
done

# the successor: an encoder and an agent (any weights: an epoch's time does not depend on them), then its epochs side by side
SUCC="$WORK/successor"
SUCCESSOR=(--datapath "$DATA/corrupted" --saveroot "$SUCC" --bg_name patch --digit 3 --sample_size 50 --batch_size 50 --epochs 1
           --device "$DEVICE" --wandb_mode disabled ${MAX_BATCHES[@]+"${MAX_BATCHES[@]}"})
stage "successor encoder to time with" 20 "$OUT/successor_encoder.log" "$PY" pretrain_encoder_ordinal.py "${SUCCESSOR[@]}" --savename P \
  --samples_per_class 10
stage "successor agent to time with" 25 "$OUT/successor_agent.log" "$PY" train_agent.py "${SUCCESSOR[@]}" --savename A \
  --pretrained P/best.pth.tar --num_act 10
if [ -n "$REF" ] && [ -f "$SUCC/A/best.pth.tar" ]; then
  stage "successor A and T1 epochs, side by side" 110 "$OUT/bench_epochs.log" "$PY" benchmarks/bench_epochs.py --datapath "$DATA/corrupted" \
    --encoder "$SUCC/P/best.pth.tar" --agent "$SUCC/A/best.pth.tar" --reference "$REF" --device "$DEVICE" "${BENCH[@]}" \
    --saveroot "$WORK/bench_epochs"
  grep -E "reference|this" "$OUT/bench_epochs.log" | tee -a "$SUMMARY"
  for kind in agent adapt; do
    ratio=$(grep -E "^$kind +reference / this:" "$OUT/bench_epochs.log" | grep -oE '[0-9.]+x')
    [ -n "$ratio" ] && RATIOS+=("$([ $kind = agent ] && echo A || echo T1) $ratio")
  done
fi
}
if [ -n "$DATA_OK" ]; then run_stages; else note "no data: the runs and the timings are skipped"; FAILED+=("runs (no data)"); fi

VERDICT=$([ ${#FAILED[@]} -eq 0 ] && echo PASS || echo FAIL)
join() { local IFS=';'; echo "$*" | sed 's/;/; /g'; }
note "done in ${SECONDS} s; logs in $OUT"
note "verdict: $VERDICT on $DEVICE at $COMMIT | passed: $(join ${PASSED[@]+"${PASSED[@]}"}) | failed: $([ ${#FAILED[@]} -eq 0 ] && echo none || join "${FAILED[@]}") | reference $REFERENCE / this: $([ ${#RATIOS[@]} -eq 0 ] && echo "not timed" || join "${RATIOS[@]}")"
[ "$VERDICT" = PASS ]
